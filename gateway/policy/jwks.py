"""The signing keys of one authorization server: discovered, cached, re-read on rotation, never fetched in a loop.

`IssuerKeys.key(kid)` answers from memory. The keys are read (through the injected async `fetch`, which does
the HTTP) on first use, again in the background once `cache_seconds` have passed, and at once when a token
names a `kid` the cache does not know — at most once per `min_refresh_seconds`, and one read at a time
however many requests wait for it, so a flood of tokens with made-up `kid`s costs the issuer one request per
interval. A read that fails keeps the keys already known (an issuer briefly down does not lock everyone out).

Where the keys live: `jwks_url` when configured, else the `jwks_uri` of the issuer's metadata, looked up as
RFC 8414 §3.1 and OpenID Connect Discovery §4 say (path-aware forms first, as the MCP authorization spec
lists them); the metadata's `issuer` must equal the configured issuer exactly (RFC 8414 §3.3), or it is
not used. Only signing keys (`use` absent or `sig`) of asymmetric types are kept. No HTTP here: `fetch`
is given by the caller, who bounds its time and size.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
import structlog

log = structlog.get_logger("gateway.policy.jwks")

Fetch = Callable[[str], Awaitable[bytes]]  # GET a URL, return the body of a 200; raise OSError or ValueError


@dataclass(frozen=True)
class SigningKey:
    """A public key and the one algorithm its JWK pins (`alg`), if it pins one."""

    key: Any
    algorithm: str | None


class KeysUnavailable(Exception):
    """The issuer's keys could not be read (and none are known yet); the message says why, without secrets."""


def metadata_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may be, in the order the MCP authorization spec has clients try them."""
    parts = urlsplit(issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    if not path:
        return [f"{origin}/.well-known/oauth-authorization-server", f"{origin}/.well-known/openid-configuration"]
    return [
        f"{origin}/.well-known/oauth-authorization-server{path}",
        f"{origin}/.well-known/openid-configuration{path}",
        f"{origin}{path}/.well-known/openid-configuration",
    ]


def parse_jwks(body: bytes) -> dict[str | None, SigningKey]:
    """Signing keys by `kid` from a JWKS document.

    Raises:
        ValueError: the document is not a JWKS.
    """
    document = json.loads(body)
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("not a JWKS document (no `keys` list)")
    keys: dict[str | None, SigningKey] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or entry.get("kty") == "oct":
            continue
        try:
            alg = entry.get("alg")
            keys[entry.get("kid")] = SigningKey(jwt.PyJWK(entry).key, alg if isinstance(alg, str) else None)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
            log.warning("jwks_key_skipped", kid=entry.get("kid"), error=type(exc).__name__)
    return keys


class IssuerKeys:
    def __init__(
        self,
        issuer: str,
        fetch: Fetch,
        *,
        jwks_url: str | None = None,
        cache_seconds: float = 300.0,
        min_refresh_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self._fetch = fetch
        self._jwks_url = jwks_url
        self._discovered: str | None = None
        self._cache_seconds = cache_seconds
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._keys: dict[str | None, SigningKey] = {}
        self._read_at: float | None = None  # when the last read (successful or not) started
        self._loaded = False
        self._reading: asyncio.Task[None] | None = None

    def key(self, kid: str | None) -> SigningKey | None:
        """The key a token names (or the only key, for a token that names none); None when unknown."""
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    @property
    def stale(self) -> bool:
        return self._read_at is not None and self._clock() - self._read_at >= self._cache_seconds

    async def refresh(self) -> None:
        """Re-read the keys now unless a read happened less than `min_refresh_seconds` ago; waits for it.

        Raises:
            KeysUnavailable: no keys could ever be read.
        """
        if self._read_at is None or self._clock() - self._read_at >= self._min_refresh or self._reading:
            await asyncio.shield(self._start_read())
        if not self._loaded:
            raise KeysUnavailable(f"the signing keys of {self.issuer} could not be read")

    def refresh_in_background(self) -> None:
        """Start a re-read of stale keys without waiting; requests keep using the keys already known."""
        if self._reading is None:
            self._start_read()

    def _start_read(self) -> asyncio.Task[None]:
        if self._reading is None:
            self._read_at = self._clock()
            self._reading = asyncio.get_running_loop().create_task(self._read())
            self._reading.add_done_callback(self._read_done)
        return self._reading

    def _read_done(self, task: asyncio.Task[None]) -> None:
        self._reading = None

    async def _read(self) -> None:
        try:
            url = self._jwks_url or self._discovered or await self._discover()
            keys = parse_jwks(await self._fetch(url))
        except (OSError, ValueError, KeysUnavailable) as exc:
            self._discovered = None  # look the metadata up again next time: its jwks_uri may have moved
            log.warning("jwks_unavailable", issuer=self.issuer, error=str(exc)[:300])
            return
        added = sorted(str(k) for k in keys.keys() - self._keys.keys())
        self._keys, self._loaded = keys, True
        log.info("jwks_loaded", issuer=self.issuer, keys=len(keys), new=added)

    async def _discover(self) -> str:
        """The `jwks_uri` of the issuer's metadata. Raises: KeysUnavailable when no valid metadata names one."""
        reasons = []
        for url in metadata_urls(self.issuer):
            try:
                metadata = json.loads(await self._fetch(url))
            except (OSError, ValueError) as exc:
                reasons.append(f"{url}: {str(exc)[:120]}")
                continue
            if not isinstance(metadata, dict) or metadata.get("issuer") != self.issuer:
                reasons.append(f"{url}: its `issuer` is not {self.issuer!r} (RFC 8414 section 3.3)")
                continue
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme not in ("http", "https"):
                reasons.append(f"{url}: no http(s) `jwks_uri`")
                continue
            self._discovered = jwks_uri
            return jwks_uri
        raise KeysUnavailable("no usable authorization server metadata: " + "; ".join(reasons))


def token_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A JWT's header and claims, NOT verified: only for choosing the issuer and key to verify it with.

    Raises:
        ValueError: not a JWT.
    """
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(claims, dict):
        raise ValueError("the JWT payload is not an object")
    return header, claims
