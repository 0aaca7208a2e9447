"""Browser sessions of the status console: a token typed into the login form becomes an opaque cookie.

The cookie carries a random session key, never the token: the key maps (in memory) to the identity and an
expiry (`LIFETIME`). It is `HttpOnly` (no script reads it), `SameSite=Strict` (never sent on a cross-site
request), `Path=/` and `Secure` on https. Only the console pages read it — the MCP endpoints authenticate with
bearer tokens alone, so a cookie grants nothing there. Each session has its own CSRF token for the logout form;
the login form is protected by the same-origin check in `gateway.app` and by SameSite. At most `MAX` sessions.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.policy.auth import Identity

COOKIE = "harbor_console"
LIFETIME = 8 * 3600.0
MAX = 10_000


@dataclass(frozen=True)
class Login:
    identity: Identity
    csrf: str
    expires: float


class Logins:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._sessions: dict[str, Login] = {}

    def open(self, identity: Identity) -> tuple[str, Login]:
        """A new session for `identity`: its cookie value and the session."""
        if len(self._sessions) >= MAX:
            self._sessions.pop(next(iter(self._sessions)))
        key = secrets.token_urlsafe(32)
        login = Login(identity, secrets.token_urlsafe(16), self._clock() + LIFETIME)
        self._sessions[key] = login
        return key, login

    def find(self, key: str | None) -> Login | None:
        login = self._sessions.get(key or "")
        if login is None:
            return None
        if self._clock() > login.expires:
            del self._sessions[key or ""]
            return None
        return login

    def close(self, key: str | None, csrf: str) -> bool:
        """End a session when `csrf` is its token (constant-time); False when it is not."""
        login = self.find(key)
        if login is None or not hmac.compare_digest(login.csrf.encode(), csrf.encode()):
            return False
        del self._sessions[key or ""]
        return True


def cookie(key: str, secure: bool, max_age: int = int(LIFETIME)) -> str:
    """The Set-Cookie value for a session key (an empty key with max_age 0 clears it)."""
    flags = f"{COOKIE}={key}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}"
    return flags + ("; Secure" if secure else "")
