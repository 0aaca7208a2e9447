"""Pure-ASGI OAuth resource-server middleware: protected-resource metadata, access tokens, challenges on 401.

Installed in the aggregating gateway's middleware list between `Guard` and `Authenticate`; with no
`gateway.auth.oauth` configured it passes every request through untouched (one attribute read). With it:
- `GET /.well-known/oauth-protected-resource[/<endpoint path>]` answers the RFC 9728 document, to anyone
  (clients read it before they have a token);
- a bearer JWT whose `iss` is one of the configured authorization servers is judged here: a valid one puts
  its identity in `scope["state"]["identity"]` (which `Authenticate` then leaves as it is), an invalid one
  gets 401 — or 403 `insufficient_scope` — with its challenge;
- any other credential (static tokens, the legacy `jwt` settings) goes on to `Authenticate`, and every 401
  that comes back gets `WWW-Authenticate: Bearer resource_metadata="…"` so the client can start discovery;
- on the open paths (probes) nothing is refused: a valid OAuth token only says who asks.

Keys are fetched with httpx, asynchronously, bounded by `FETCH_TIMEOUT` and `FETCH_MAX_BYTES`, without
following redirects. The `ResourceServer` is rebuilt only when the OAuth settings change (a reload that
leaves them equal keeps the cached keys and verified tokens).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.config import OAuthConfig
from gateway.core import errors
from gateway.policy.oauth import WELL_KNOWN, OAuthError, ResourceServer
from gateway.transports._asgi import send_error, send_json

FETCH_TIMEOUT = 5.0
FETCH_MAX_BYTES = 1024 * 1024


async def fetch(url: str) -> bytes:
    """GET `url` and return its body.

    Raises:
        OSError: the request failed, timed out, or answered other than 200.
        ValueError: the body is larger than `FETCH_MAX_BYTES`.
    """
    try:
        async with (
            httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as client,
            client.stream("GET", url, headers={"accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise OSError(f"HTTP {response.status_code}")
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > FETCH_MAX_BYTES:
                    raise ValueError(f"larger than {FETCH_MAX_BYTES} bytes")
            return body
    except httpx.HTTPError as exc:
        raise OSError(f"{type(exc).__name__}: {exc}") from None


class ProtectedResource:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Callable[[], OAuthConfig | None],
        open_paths: Iterable[str],
    ) -> None:
        self.app = app
        self._settings = settings
        self._open = frozenset(open_paths)
        self._server: ResourceServer | None = None

    def _current(self) -> ResourceServer | None:
        config = self._settings()
        if config is None:
            return None
        server = self._server
        if server is None or (server.config is not config and server.config != config):
            server = self._server = ResourceServer(config, fetch)
        return server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = self._current() if scope["type"] == "http" else None
        if server is None:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == WELL_KNOWN or path.startswith(WELL_KNOWN + "/"):
            await self._metadata(server, scope, send)
            return
        raw = scope.get("raw_path")
        endpoint = raw.decode("latin-1").partition("?")[0] if isinstance(raw, bytes) else path
        token = _bearer(scope)
        if path in self._open:  # probes never refuse; a valid token only tells who asks (an admin sees details)
            if token is not None and server.is_ours(token):
                with contextlib.suppress(OAuthError):
                    scope.setdefault("state", {})["identity"] = await server.authenticate(token, endpoint)
            await self.app(scope, receive, send)
            return
        if token is not None and server.is_ours(token):
            try:
                identity = await server.authenticate(token, endpoint)
            except OAuthError as exc:
                header = [(b"www-authenticate", exc.challenge.encode())]
                await send_error(send, exc.status, errors.INVALID_REQUEST, exc.message, headers=header)
                return
            scope.setdefault("state", {})["identity"] = identity
            await self.app(scope, receive, send)
            return
        challenge = server.challenge(endpoint, "invalid_token" if token is not None else None).encode()
        await self.app(scope, receive, _with_challenge(send, challenge))

    async def _metadata(self, server: ResourceServer, scope: Scope, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await send_error(send, 405, errors.INVALID_REQUEST, "use GET", headers=[(b"allow", b"GET")])
            return
        document = server.metadata(scope["path"][len(WELL_KNOWN) :])
        if document is None:
            await send_error(send, 404, errors.INVALID_REQUEST, "no protected resource at this path")
            return
        await send_json(send, 200, document)


def _bearer(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            return (token.strip() or None) if scheme.lower() == "bearer" else None
    return None


def _with_challenge(send: Send, challenge: bytes) -> Send:
    """`send`, with a 401's `WWW-Authenticate` replaced by the OAuth challenge."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 401:
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"www-authenticate"]
            message = {**message, "headers": [*headers, (b"www-authenticate", challenge)]}
        await send(message)

    return wrapped
