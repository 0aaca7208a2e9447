"""The Host check behind a reverse proxy: loopback names always, `gateway.allowed_hosts` names too."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.transports.guard import Guard

pytestmark = pytest.mark.anyio


async def _status(guard: Guard, host: str, path: str = "/mcp") -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "method": "POST", "headers": [(b"host", host.encode())]}
    await guard(scope, receive, send)
    return int(sent[0]["status"])


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def test_a_proxy_public_name_is_refused_on_loopback_unless_allowed() -> None:
    plain = Guard(_ok, token=None, check_host=True)
    assert await _status(plain, "127.0.0.1:8080") == 200
    assert await _status(plain, "mcp.example.com") == 421  # nginx passing `Host $http_host` for a public name
    allowed = Guard(_ok, token=None, check_host=True, allowed_hosts=["MCP.example.com"])
    assert await _status(allowed, "mcp.example.com:443") == 200
    assert await _status(allowed, "localhost:4444") == 200
    assert await _status(allowed, "evil.example") == 421


async def test_allowed_hosts_are_enforced_on_a_network_bind_too() -> None:
    open_bind = Guard(_ok, token=None, check_host=False)
    assert await _status(open_bind, "anything.example") == 200  # 0.0.0.0 without allowed_hosts: names unknown
    named = Guard(_ok, token=None, check_host=False, allowed_hosts=["mcp.example.com"])
    assert await _status(named, "mcp.example.com") == 200
    assert await _status(named, "rebound.example") == 421
    assert await _status(named, "rebound.example", path="/healthz") == 200  # probes stay open
