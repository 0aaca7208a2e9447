"""Request guards as one pure-ASGI middleware: Host (DNS rebinding), Origin, bearer token.

Stateless and cheap: a few header comparisons per request, nothing allocated on the happy path.
- Host: when the gateway is bound to loopback, only loopback host names are served (421 otherwise), so a
  web page whose DNS name was rebound to 127.0.0.1 cannot reach it. `allowed_hosts` adds names (the public name
  a reverse proxy on this machine passes on with `proxy_set_header Host $http_host`); set, they are checked
  on any bind.
- Origin: a request carrying an Origin that is neither loopback nor in `allowed_origins` gets 403; a
  request without Origin (every non-browser client) is allowed.
- Token: with a token configured, `Authorization: Bearer <token>` is required (401), compared in
  constant time. Health endpoints stay open for probes.
`Authenticate` (the aggregating gateway's) maps the bearer credential to an identity instead.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from typing import Any

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.core import errors
from gateway.transports._asgi import identity_of, send_error

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/_harbor/peer/call"})  # probes; replicas prove a secret


def host_name(value: str) -> str:
    """`host[:port]` → host, keeping IPv6 brackets."""
    if value.startswith("["):
        return value[: value.find("]") + 1]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def is_loopback_origin(origin: str) -> bool:
    scheme, _, rest = origin.partition("://")
    return scheme in ("http", "https") and host_name(rest.split("/", 1)[0]) in LOOPBACK_HOSTS


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        allowed_origins: Iterable[str] = (),
        check_host: bool = True,
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        self.app = app
        self._token = f"Bearer {token}".encode() if token else None
        self._origins = frozenset(o.rstrip("/") for o in allowed_origins)
        self._hosts = LOOPBACK_HOSTS | frozenset(h.lower() for h in allowed_hosts)
        self._check_host = check_host or bool(self._hosts - LOOPBACK_HOSTS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        host = origin = auth = None
        for key, value in scope["headers"]:
            if key == b"host":
                host = value
            elif key == b"origin":
                origin = value
            elif key == b"authorization":
                auth = value
        if self._check_host and host is not None and host_name(host.decode("latin-1").lower()) not in self._hosts:
            await send_error(
                send,
                421,
                errors.INVALID_REQUEST,
                "Misdirected Request: Host is not a loopback name nor in gateway.allowed_hosts "
                "(behind a proxy: pass the client's Host on, e.g. nginx `proxy_set_header Host $http_host`)",
            )
            return
        if origin is not None and not self._origin_ok(origin.decode("latin-1")):
            await send_error(send, 403, errors.INVALID_REQUEST, "Forbidden: Origin not allowed (see --allow-origin)")
            return
        if self._token is not None and (auth is None or not hmac.compare_digest(auth, self._token)):
            await send_error(
                send,
                401,
                errors.INVALID_REQUEST,
                "Unauthorized: send Authorization: Bearer <token>",
                headers=[(b"www-authenticate", b'Bearer realm="harbor"')],
            )
            return
        await self.app(scope, receive, send)

    def _origin_ok(self, origin: str) -> bool:
        origin = origin.rstrip("/")
        return origin in self._origins or "*" in self._origins or is_loopback_origin(origin)


class Authenticate:
    """Pure-ASGI authentication: `Authorization` → an identity in `scope["state"]["identity"]`, or 401/403.

    `authenticate` raises an error carrying `status` and a safe `message` (it never echoes the token).
    Health and metrics endpoints stay open for probes and scrapers.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Callable[[str | None], Any],
        open_paths: Iterable[str],
        open_prefixes: Iterable[str] = (),
        blocking: Callable[[], bool] = lambda: False,
        lookup: Callable[[str | None], Any] | None = None,
    ) -> None:
        self.app = app
        self._authenticate = authenticate
        self._open = frozenset(open_paths)
        self._open_prefixes = tuple(open_prefixes)
        self._blocking = blocking  # true when authenticating may do I/O (a JWKS URL): run it off the loop
        self._lookup = lookup  # answers known credentials without I/O, before a worker thread is considered

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if scope["type"] != "http" or path in self._open or path.startswith(self._open_prefixes) or identity_of(scope):
            await self.app(scope, receive, send)  # open, or an identity already set by `ProtectedResource` (OAuth)
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
        try:
            identity = self._lookup(header) if self._lookup is not None else None
            if identity is not None:
                pass  # answered from memory: no I/O, no worker thread
            elif self._blocking():
                identity = await anyio.to_thread.run_sync(self._authenticate, header)
            else:
                identity = self._authenticate(header)
        except Exception as exc:  # the authenticator's own error type; anything else is a 401 too
            status = getattr(exc, "status", 401)
            message = getattr(exc, "message", "Unauthorized")
            await send_error(
                send,
                status,
                errors.INVALID_REQUEST,
                message,
                headers=[(b"www-authenticate", b'Bearer realm="harbor"')] if status == 401 else None,
            )
            return
        state = scope.setdefault("state", {})
        state["identity"] = identity
        await self.app(scope, receive, send)
