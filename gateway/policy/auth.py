"""Authentication: an `Authorization` header value in, an `Identity` out, or an `AuthError`.

Order: no auth configured → `ANONYMOUS` when the caller allows it (loopback), else 401. Otherwise the
header must be `Bearer <token>`; the token is compared in constant time with every static token (SHA-256
digests compared with `hmac.compare_digest`, so neither content nor length short-circuits), then, if JWT
is configured, verified as a JWT with PyJWT.

JWT rules: the header's `alg` must be one of the configured algorithms (so `none` and HS256-vs-RS256
confusion are refused before any key is chosen), and the key is chosen by algorithm: HS256 only ever uses
`secret`, RS256 only ever uses the PEM key or the JWKS. `exp` is required; `exp`, `nbf` and `iat` are
checked against the injected clock with `leeway`; `aud` and `iss` are checked when configured (a token
with an `aud` is refused when no audience is configured). A JWKS is read lazily (file, or URL through
`jwks_fetch`), cached, and re-read at most once a minute when a token names an unknown `kid`.

Verified JWTs are remembered (by the SHA-256 of the token, never the token itself) until their `exp`, at most
`CACHE_SIZE` of them, so a client presenting the same token on every request pays for one signature check:
`lookup` answers from that memory without I/O, which lets callers on an event loop skip the worker thread.

`AuthError.message` is safe to send to clients: it never contains the token or key material. Details
go to the structured log (never the token either). This module does no HTTP serving; the only I/O is
reading the JWKS file or calling `jwks_fetch` (by default a 5-second urllib GET), which callers on an
event loop should run in a worker thread or replace.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import structlog
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gateway.config import AuthConfig, JWTConfig

logger = structlog.get_logger(__name__)

ADMIN_SCOPE = "harbor:admin"  # sees every server, call and error (status console, detailed probes)
JWKS_REFRESH_SECONDS = 60.0
JWKS_FETCH_TIMEOUT = 5.0
CACHE_SIZE = 4096  # verified JWTs remembered until their expiry


@dataclass(frozen=True)
class Identity:
    """Who is calling: a name (static token identity or JWT claim), its scopes, and whether anonymous."""

    name: str
    scopes: frozenset[str] = frozenset()
    anonymous: bool = False


ANONYMOUS = Identity("anonymous", anonymous=True)


class AuthError(Exception):
    """Authentication failed: `status` is the HTTP status (401 or 403), `message` is safe for clients."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _fetch_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=JWKS_FETCH_TIMEOUT) as response:
        data: bytes = response.read()
    return data


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class _KeySet:
    """An RS256 JWKS read from a file or URL, cached, refreshed at most once per `JWKS_REFRESH_SECONDS`."""

    def __init__(
        self, load: Callable[[], bytes], clock: Callable[[], float], on_refresh: Callable[[], None] = lambda: None
    ) -> None:
        self._load = load
        self._clock = clock
        self._on_refresh = on_refresh  # a key may have been withdrawn: what was verified with it must be again
        self._keys: dict[str | None, Any] = {}
        self._loaded_at: float | None = None

    def key(self, kid: str | None) -> Any:
        """Return the public key for `kid` (or the only key when the token names none), else None."""
        found = self._find(kid)
        if found is None and self._may_refresh():
            self._refresh()
            found = self._find(kid)
        return found

    def _find(self, kid: str | None) -> Any:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid) if kid is not None else None

    def _may_refresh(self) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at >= JWKS_REFRESH_SECONDS

    def _refresh(self) -> None:
        self._loaded_at = self._clock()
        try:
            document = json.loads(self._load())
            entries = document["keys"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("jwks unavailable; RS256 tokens are refused until it loads", error=repr(exc))
            return
        keys: dict[str | None, Any] = {}
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or entry.get("alg", "RS256") != "RS256":
                continue
            try:
                keys[entry.get("kid")] = jwt.PyJWK(entry, algorithm="RS256").key
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
                logger.warning("jwks key skipped", kid=entry.get("kid"), error=type(exc).__name__)
        self._keys = keys
        self._on_refresh()


class Authenticator:
    """Turns `Authorization` header values into identities according to `AuthConfig`."""

    def __init__(
        self,
        config: AuthConfig | None,
        *,
        allow_anonymous: bool,
        jwks_fetch: Callable[[str], bytes] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Prepare token digests and keys.

        Raises:
            ValueError: `public_key` is not a PEM-encoded RSA public key.
        """
        self._allow_anonymous = allow_anonymous
        self._clock = clock
        self._tokens = [
            (_digest(entry.token.get_secret_value()), Identity(entry.identity, frozenset(entry.scopes)))
            for entry in (config.tokens if config else [])
        ]
        self._jwt = config.jwt if config else None
        self._oauth = config is not None and config.oauth is not None  # judged by `ProtectedResource`
        self._verified: dict[bytes, tuple[Identity, float]] = {}  # sha256(token) → (identity, exp + leeway)
        self._public_key: Any = None
        self._keyset: _KeySet | None = None
        if self._jwt is not None:
            self._prepare_rsa(self._jwt, jwks_fetch or _fetch_url)

    def _prepare_rsa(self, config: JWTConfig, fetch: Callable[[str], bytes]) -> None:
        if config.public_key is not None:
            try:
                self._public_key = load_pem_public_key(config.public_key.encode())
            except ValueError:
                raise ValueError("gateway.auth.jwt.public_key: not a PEM-encoded public key") from None
        elif config.jwks_file is not None:
            self._keyset = _KeySet(Path(config.jwks_file).read_bytes, self._clock, self._verified.clear)
        elif config.jwks_url is not None:
            url = config.jwks_url
            self._keyset = _KeySet(lambda: fetch(url), self._clock, self._verified.clear)

    @property
    def enabled(self) -> bool:
        """True when some credential (static tokens, JWT or OAuth access tokens) is configured."""
        return bool(self._tokens) or self._jwt is not None or self._oauth

    def authenticate(self, authorization: str | None) -> Identity:
        """Return the caller's identity for an `Authorization` header value (None when absent).

        Raises:
            AuthError: 401 when credentials are missing, malformed, unknown, expired or not valid here.
        """
        if not self.enabled:
            if self._allow_anonymous:
                return ANONYMOUS
            raise AuthError(401, "authentication is required but none is configured on this gateway")
        token = _bearer(authorization)
        presented = _digest(token)
        identity = self._static(presented)
        if identity is not None:
            return identity
        if self._jwt is not None and token.count(".") == 2:
            remembered = self._remembered(presented)
            if remembered is not None:
                return remembered
            identity, expires = self._verify_jwt(token, self._jwt)
            if len(self._verified) >= CACHE_SIZE:
                self._verified.pop(next(iter(self._verified)))
            self._verified[presented] = (identity, expires)
            return identity
        raise AuthError(401, "invalid token")

    def lookup(self, authorization: str | None) -> Identity | None:
        """The identity for a header whose answer needs no I/O (a static token, or a JWT verified before and not
        expired); None when `authenticate` must do the work (which may fetch a JWKS)."""
        if not self.enabled or not authorization:
            return None
        try:
            token = _bearer(authorization)
        except AuthError:
            return None
        presented = _digest(token)
        return self._static(presented) or (self._remembered(presented) if self._verified else None)

    def _remembered(self, digest: bytes) -> Identity | None:
        found = self._verified.get(digest)
        if found is None:
            return None
        if self._clock() > found[1]:
            del self._verified[digest]
            return None
        return found[0]

    def _static(self, presented: bytes) -> Identity | None:
        """The static token whose digest is `presented` (the SHA-256 of the token the caller sent)."""
        found: Identity | None = None
        for digest, identity in self._tokens:  # no early exit: time does not depend on which token matched
            if hmac.compare_digest(presented, digest) and found is None:
                found = identity
        return found

    def _verify_jwt(self, token: str, config: JWTConfig) -> tuple[Identity, float]:
        """The token's identity and the time until which that answer holds (exp + leeway)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise AuthError(401, "invalid token: malformed JWT") from None
        algorithm = header.get("alg")
        if algorithm not in config.algorithms:
            raise AuthError(401, "invalid token: signing algorithm not accepted")
        key = self._key_for(algorithm, header.get("kid"), config)
        claims = self._decode(token, key, algorithm, config)
        self._check_times(claims, config.leeway)
        identity = Identity(_identity(claims, config.identity_claim), _scopes(claims, config.scopes_claim))
        return identity, float(claims["exp"]) + config.leeway

    def _key_for(self, algorithm: str, kid: Any, config: JWTConfig) -> Any:
        if algorithm == "HS256":
            assert config.secret is not None  # JWTConfig validation guarantees it
            return config.secret.get_secret_value()
        if self._keyset is None:
            return self._public_key
        key = self._keyset.key(kid if isinstance(kid, str) else None)
        if key is None:
            raise AuthError(401, "invalid token: unknown signing key")
        return key

    def _decode(self, token: str, key: Any, algorithm: str, config: JWTConfig) -> dict[str, Any]:
        options: Any = {"require": ["exp"], "verify_exp": False, "verify_nbf": False, "verify_iat": False}
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[algorithm], options=options, audience=config.audience, issuer=config.issuer
            )
        except jwt.InvalidAudienceError:
            raise AuthError(401, "invalid token: wrong audience") from None
        except jwt.InvalidIssuerError:
            raise AuthError(401, "invalid token: wrong issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(401, f"invalid token: missing claim {exc.claim!r}") from None
        except jwt.InvalidSignatureError:
            raise AuthError(401, "invalid token: bad signature") from None
        except (jwt.InvalidTokenError, jwt.InvalidKeyError) as exc:
            logger.info("jwt refused", error=type(exc).__name__)
            raise AuthError(401, "invalid token") from None
        return claims

    def _check_times(self, claims: Mapping[str, Any], leeway: float) -> None:
        now = self._clock()
        times = {name: claims.get(name) for name in ("exp", "nbf", "iat")}
        for name, value in times.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise AuthError(401, f"invalid token: claim {name!r} must be a number")
        if now > times["exp"] + leeway:  # type: ignore[operator]  # exp is required and numeric
            raise AuthError(401, "invalid token: expired")
        if times["nbf"] is not None and now < times["nbf"] - leeway:
            raise AuthError(401, "invalid token: not valid yet")
        if times["iat"] is not None and times["iat"] > now + leeway:
            raise AuthError(401, "invalid token: issued in the future")


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise AuthError(401, "missing credentials: send Authorization: Bearer <token>")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError(401, "unsupported credentials: send Authorization: Bearer <token>")
    return token


def _identity(claims: Mapping[str, Any], claim: str) -> str:
    value = claims.get(claim)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise AuthError(401, f"invalid token: claim {claim!r} must name the caller")
    return str(value)


def _scopes(claims: Mapping[str, Any], claim: str) -> frozenset[str]:
    value = claims.get(claim)
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()
