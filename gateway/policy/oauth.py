"""The gateway as an OAuth 2.1 resource server: its metadata, its challenges, and its access-token checks.

Resources (RFC 8707 / RFC 9728). `gateway.auth.oauth.resource` is the gateway's public origin R. Each MCP
endpoint is a protected resource of its own, named by its URL: `/mcp` is `R/mcp`, `/servers/<name>/mcp` is
`R/servers/<name>/mcp`, the legacy `/sse` (and its `/message`) is `R/sse`; everything else (the status
page) is R itself. Its metadata is served at the RFC 9728 §3.1 well-known path of that URL
(`/.well-known/oauth-protected-resource/mcp`, …), with `resource` equal to that URL (§3.3), and every 401
points there: `WWW-Authenticate: Bearer resource_metadata="…"`.

Access tokens are JWTs (RFC 9068) from one of `authorization_servers`. A token is accepted when:
- its header `alg` is one of `algorithms` (asymmetric only: `none` and HMAC never are) and it is signed by a
  key of its issuer's JWKS (see `jwks.py`);
- `iss` is one of `authorization_servers`, compared as strings (RFC 9207 / RFC 8414 §3.3): tokens of any
  other issuer are refused before any key is fetched;
- `aud` names this endpoint's resource or R (a token for another endpoint or another server is refused),
  or, when `audience` is configured, one of those values instead;
- `exp` (required), `nbf` and `iat` hold, with `leeway` seconds of clock skew.
Its identity is the `identity_claim` (`sub`), its scopes the `scopes_claim` (`scope`, space-separated, or a
list as some issuers write `scp`); the gateway's policies then apply to it like to any identity. Missing
`required_scopes` give 403 with `error="insufficient_scope"` and the scopes needed (RFC 6750 §3.1, MCP scope
challenges). Verified tokens are remembered (by SHA-256, until their `exp`, at most `MAX_CACHED`) so a
client's next request skips the signature check; the audience and expiry are checked on every request.

Pure: the only I/O is the injected `fetch` the key sets use. Error messages never echo the token.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jwt
import structlog

from gateway.config import OAuthConfig
from gateway.policy.auth import AuthError, Identity
from gateway.policy.jwks import Fetch, IssuerKeys, KeysUnavailable, SigningKey, token_parts

log = structlog.get_logger("gateway.policy.oauth")

WELL_KNOWN = "/.well-known/oauth-protected-resource"
MAX_CACHED = 4096  # verified tokens remembered


class OAuthError(AuthError):
    """An `AuthError` with the `WWW-Authenticate` value to send with it."""

    def __init__(self, status: int, message: str, challenge: str) -> None:
        super().__init__(status, message)
        self.challenge = challenge


@dataclass(frozen=True)
class _Verified:
    identity: Identity
    audiences: frozenset[str]
    expires: float


def endpoint_path(path: str) -> str:
    """The endpoint a request path belongs to, as its resource names it ("" for the gateway as a whole)."""
    if path in ("/mcp", "/sse"):
        return path
    if path == "/message":
        return "/sse"
    parts = path.split("/")
    if len(parts) == 4 and parts[1] == "servers" and parts[2] and parts[3] in ("mcp", "sse", "message"):
        return f"/servers/{parts[2]}/{'mcp' if parts[3] == 'mcp' else 'sse'}"
    return ""


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class ResourceServer:
    def __init__(
        self,
        config: OAuthConfig,
        fetch: Fetch,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.origin = config.resource
        self._clock = clock
        self._issuers = {
            issuer: IssuerKeys(
                issuer,
                fetch,
                jwks_url=config.jwks_url,
                cache_seconds=config.jwks_cache_seconds,
                min_refresh_seconds=config.jwks_min_refresh_seconds,
                clock=monotonic,
            )
            for issuer in config.authorization_servers
        }
        self._algorithms = frozenset(config.algorithms)
        self._required = frozenset(config.required_scopes)
        self._verified: dict[bytes, _Verified] = {}

    # --- metadata and challenges ---------------------------------------------------------------------------

    def resource(self, path: str) -> str:
        """The resource identifier of the endpoint `path` (a request's raw path) belongs to."""
        return self.origin + endpoint_path(path)

    def metadata_url(self, path: str) -> str:
        return f"{self.origin}{WELL_KNOWN}{endpoint_path(path)}"

    def metadata(self, suffix: str) -> dict[str, Any] | None:
        """The RFC 9728 document served at `WELL_KNOWN + suffix`; None when no endpoint has that suffix.

        Any `/servers/<name>/…` suffix gets one (the document does not depend on the server), so the
        metadata never tells which servers exist.
        """
        if suffix != endpoint_path(suffix) or (suffix and suffix.endswith("/message")):
            return None
        document: dict[str, Any] = {
            "resource": self.origin + suffix,
            "authorization_servers": list(self.config.authorization_servers),
            "bearer_methods_supported": ["header"],
        }
        if self.config.scopes_supported:
            document["scopes_supported"] = list(self.config.scopes_supported)
        if self.config.resource_name:
            document["resource_name"] = self.config.resource_name
        if self.config.resource_documentation:
            document["resource_documentation"] = self.config.resource_documentation
        return document

    def challenge(self, path: str, error: str | None = None, description: str | None = None) -> str:
        """A `WWW-Authenticate` value for a request to `path`: where the metadata is, what scope to ask for,
        and, when a token was presented, why it was refused (no error code when none was, RFC 6750 §3)."""
        params = [f'resource_metadata="{_quoted(self.metadata_url(path))}"']
        if self.config.required_scopes:
            params.append(f'scope="{_quoted(" ".join(self.config.required_scopes))}"')
        if error is not None:
            params.append(f'error="{error}"')
            if description:
                params.append(f'error_description="{_quoted(description)}"')
        return "Bearer " + ", ".join(params)

    def _refuse(self, path: str, message: str) -> OAuthError:
        return OAuthError(401, message, self.challenge(path, "invalid_token", message))

    # --- tokens -----------------------------------------------------------------------------------------------

    def is_ours(self, token: str) -> bool:
        """True for a JWT whose (unverified) `iss` is one of our authorization servers: this server judges it."""
        if token.count(".") != 2:
            return False
        if _digest(token) in self._verified:
            return True  # verified before: no need to read it again
        try:
            return token_parts(token)[1].get("iss") in self._issuers
        except ValueError:
            return False

    async def authenticate(self, token: str, path: str) -> Identity:
        """The identity an access token stands for at the endpoint of `path`.

        Raises:
            OAuthError: 401 for a token that is malformed, from another issuer, signed by an unknown key,
                expired or not yet valid, or meant for another resource; 403 when it lacks required scopes.
        """
        digest = _digest(token)
        verified = self._verified.get(digest)
        if verified is None or self._clock() > verified.expires + self.config.leeway:
            verified = await self._verify(token, path)
            self._remember(digest, verified)
        if not self._audience_ok(verified.audiences, path):
            raise self._refuse(path, f"invalid token: its audience is not {self.resource(path)}")
        missing = self._required - verified.identity.scopes
        if missing:
            message = f"insufficient scope: this resource needs {' '.join(sorted(self._required))}"
            raise OAuthError(403, message, self.challenge(path, "insufficient_scope", message))
        return verified.identity

    def _audience_ok(self, audiences: Iterable[str], path: str) -> bool:
        accepted = set(self.config.audience) or {self.origin, self.origin + "/", self.resource(path)}
        return not accepted.isdisjoint(audiences)

    async def _verify(self, token: str, path: str) -> _Verified:
        try:
            header, unverified = token_parts(token)
        except ValueError:
            raise self._refuse(path, "invalid token: not a JWT") from None
        algorithm, kid, issuer = header.get("alg"), header.get("kid"), unverified.get("iss")
        if algorithm not in self._algorithms:
            raise self._refuse(path, "invalid token: signing algorithm not accepted")
        keys = self._issuers.get(issuer) if isinstance(issuer, str) else None
        if keys is None or not isinstance(issuer, str):
            raise self._refuse(path, "invalid token: issuer not accepted here")
        key = await self._key(keys, kid if isinstance(kid, str) else None, path)
        if key.algorithm is not None and key.algorithm != algorithm:
            raise self._refuse(path, "invalid token: the key is not for this signing algorithm")
        claims = self._decode(token, key, algorithm, issuer, path)
        return _Verified(self._identity(claims, path), _audiences(claims.get("aud")), float(claims["exp"]))

    async def _key(self, keys: IssuerKeys, kid: str | None, path: str) -> SigningKey:
        if keys.stale:
            keys.refresh_in_background()
        key = keys.key(kid)
        if key is None:
            try:
                await keys.refresh()  # a new kid: the issuer may have rotated its keys
            except KeysUnavailable as exc:
                log.warning("oauth_keys_unavailable", issuer=keys.issuer, error=str(exc)[:300])
                raise self._refuse(path, "invalid token: the issuer's signing keys are unavailable") from None
            key = keys.key(kid)
        if key is None:
            raise self._refuse(path, "invalid token: unknown signing key")
        return key

    def _decode(self, token: str, key: SigningKey, algorithm: str, issuer: str, path: str) -> dict[str, Any]:
        options: Any = {
            "require": ["exp", "iss", "aud"],
            "verify_aud": False,  # per endpoint, in `authenticate`
            "verify_exp": False,  # against the injected clock, in `_check_times`
            "verify_nbf": False,
            "verify_iat": False,
        }
        try:
            claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=[algorithm], issuer=issuer, options=options)
        except jwt.InvalidIssuerError:
            raise self._refuse(path, "invalid token: wrong issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise self._refuse(path, f"invalid token: missing claim {exc.claim!r}") from None
        except jwt.InvalidSignatureError:
            raise self._refuse(path, "invalid token: bad signature") from None
        except (jwt.InvalidTokenError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
            log.info("oauth_token_refused", error=type(exc).__name__)
            raise self._refuse(path, "invalid token") from None
        self._check_times(claims, path)
        return claims

    def _check_times(self, claims: dict[str, Any], path: str) -> None:
        now, leeway = self._clock(), self.config.leeway
        times = {name: claims.get(name) for name in ("exp", "nbf", "iat")}
        for name, value in times.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise self._refuse(path, f"invalid token: claim {name!r} must be a number")
        if now > times["exp"] + leeway:  # type: ignore[operator]  # required, and a number
            raise self._refuse(path, "invalid token: expired")
        if times["nbf"] is not None and now < times["nbf"] - leeway:
            raise self._refuse(path, "invalid token: not valid yet")
        if times["iat"] is not None and times["iat"] > now + leeway:
            raise self._refuse(path, "invalid token: issued in the future")

    def _identity(self, claims: dict[str, Any], path: str) -> Identity:
        name = claims.get(self.config.identity_claim)
        if isinstance(name, bool) or not isinstance(name, str | int) or name == "":
            raise self._refuse(path, f"invalid token: claim {self.config.identity_claim!r} must name the caller")
        value = claims.get(self.config.scopes_claim)
        if isinstance(value, str):
            scopes = frozenset(value.split())
        elif isinstance(value, list):
            scopes = frozenset(item for item in value if isinstance(item, str))
        else:
            scopes = frozenset()
        return Identity(str(name), scopes)

    def _remember(self, digest: bytes, verified: _Verified) -> None:
        if len(self._verified) >= MAX_CACHED:
            now = self._clock()
            self._verified = {d: v for d, v in self._verified.items() if v.expires > now}
            while len(self._verified) >= MAX_CACHED:
                del self._verified[next(iter(self._verified))]
        self._verified[digest] = verified


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _audiences(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset((value,))
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()
