"""The OAuth middleware in process (httpx's ASGI transport): metadata, challenges added to every 401, the
pass-through when OAuth is not configured, and a resource server rebuilt only when its settings change."""

from __future__ import annotations

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from gateway.config import OAuthConfig
from gateway.transports._asgi import send_error
from gateway.transports.oauth import ProtectedResource

pytestmark = pytest.mark.anyio

ISSUER = "https://auth.example.com"


async def _inner(scope: Scope, receive: Receive, send: Send) -> None:
    """Stands for `Authenticate`: 401 with its own challenge unless the request carries `ok`."""
    if (b"authorization", b"Bearer ok") in scope["headers"]:
        await send_error(send, 200, 0, "fine")
        return
    await send_error(send, 401, -32600, "missing credentials", headers=[(b"www-authenticate", b'Bearer realm="x"')])


async def test_metadata_is_open_and_every_401_names_it() -> None:
    settings: list[OAuthConfig | None] = [
        OAuthConfig(resource="https://h.example.com", authorization_servers=[ISSUER], required_scopes=["mcp"])
    ]
    app = ProtectedResource(_inner, settings=lambda: settings[0], open_paths=["/healthz"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as client:
        document = (await client.get("/.well-known/oauth-protected-resource/servers/db/mcp")).json()
        assert document["resource"] == "https://h.example.com/servers/db/mcp"
        assert (await client.post("/.well-known/oauth-protected-resource")).status_code == 405
        assert (await client.get("/.well-known/oauth-protected-resource/other")).status_code == 404
        refused = await client.post("/servers/db/mcp", headers={"authorization": "Bearer static-but-wrong"})
        assert refused.status_code == 401
        assert refused.headers.get_list("www-authenticate") == [
            'Bearer resource_metadata="https://h.example.com/.well-known/oauth-protected-resource/servers/db/mcp",'
            ' scope="mcp", error="invalid_token"'
        ]
        anonymous = await client.get("/")
        assert (
            anonymous.headers["www-authenticate"].startswith(
                'Bearer resource_metadata="https://h.example.com/.well-known/oauth-protected-resource", '
            )
            and "error=" not in anonymous.headers["www-authenticate"]
        )
        assert (await client.get("/mcp", headers={"authorization": "Bearer ok"})).status_code == 200
        first = app._current()
        settings[0] = OAuthConfig(
            resource="https://h.example.com", authorization_servers=[ISSUER], required_scopes=["mcp"]
        )
        assert app._current() is first  # an equal config (a reload that changed nothing) keeps keys and tokens
        settings[0] = None
        assert (await client.get("/.well-known/oauth-protected-resource")).status_code == 401  # off: passed through
        assert (await client.get("/x")).headers["www-authenticate"] == 'Bearer realm="x"'
