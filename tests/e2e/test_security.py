"""Bearer token, Origin and Host checks, as a browser or a stranger would meet them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.conftest import Translate
from tests.e2e.rawclient import INIT_PARAMS, Streamable

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]
INIT = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT_PARAMS}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_token_is_required_and_checked(translate: type[Translate], http: aiohttp.ClientSession) -> None:
    t = translate(env={"GATEWAY_AUTH_TOKEN": "s3cret-token"})
    client = Streamable(http, t.url + "/mcp")
    status, headers, _ = await client.post(INIT)
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    status, _, _ = await client.post(INIT, extra={"authorization": "Bearer wrong-token"})
    assert status == 401
    async with http.get(t.url + "/sse") as resp:
        assert resp.status == 401
    async with http.get(t.url + "/healthz") as resp:  # probes stay open
        assert resp.status == 200
    client.headers = {"authorization": "Bearer s3cret-token"}
    assert (await client.initialize())["result"]["serverInfo"]["name"] == "harbor-test-everything"
    assert "s3cret-token" not in t.log()


async def test_foreign_origin_is_403_and_loopback_or_allowed_origins_pass(
    translate: type[Translate], http: aiohttp.ClientSession
) -> None:
    t = translate("--allow-origin", "https://app.example.com")
    client = Streamable(http, t.url + "/mcp")
    status, _, body = await client.post(INIT, extra={"origin": "https://evil.example"})
    assert status == 403 and "Origin" in body[0]["error"]["message"]
    for origin in ("http://localhost:6274", "http://127.0.0.1", "https://app.example.com"):
        status, _, _ = await client.post(INIT, extra={"origin": origin})
        assert status == 200, origin


async def test_dns_rebinding_host_is_refused_on_loopback(
    shared_translate: Translate, http: aiohttp.ClientSession
) -> None:
    client = Streamable(http, shared_translate.url + "/mcp")
    status, _, _ = await client.post(INIT, extra={"host": "evil.example:80"})
    assert status == 421
    status, _, _ = await client.post(INIT, extra={"host": f"localhost:{shared_translate.port}"})
    assert status == 200


async def test_cors_is_off_unless_asked_and_exposes_the_session_header_when_on(
    translate: type[Translate], http: aiohttp.ClientSession
) -> None:
    plain = translate()
    async with http.options(
        plain.url + "/mcp", headers={"origin": "http://localhost:3000", "access-control-request-method": "POST"}
    ) as resp:
        assert "access-control-allow-origin" not in resp.headers
    cors = translate("--cors", "http://localhost:3000")
    preflight = {
        "origin": "http://localhost:3000",
        "access-control-request-method": "POST",
        "access-control-request-headers": "mcp-session-id",
    }
    async with http.options(cors.url + "/mcp", headers=preflight) as resp:
        assert resp.status == 200 and resp.headers["access-control-allow-origin"] == "http://localhost:3000"
    client = Streamable(http, cors.url + "/mcp")
    _, headers, _ = await client.post(INIT, extra={"origin": "http://localhost:3000"})
    assert "mcp-session-id" in headers["access-control-expose-headers"].lower()
