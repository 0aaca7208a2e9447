"""Minimal MCP-over-HTTP clients on aiohttp that expose the wire: status codes, headers, every message.

The SDK `Client` hides what the tests must see (HTTP statuses, raw ids, the order of events); these
clients speak the transports directly. Both reuse JSON-RPC ids freely, as real clients do, so a bridge
that mixes clients up is caught.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

ACCEPT_BOTH = "application/json, text/event-stream"
INIT_PARAMS = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "harbor-tests", "version": "1"},
}


def parse_sse(text: str) -> list[dict[str, Any]]:
    """The JSON messages of an SSE body (priming events and comments skipped)."""
    messages = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].lstrip() for line in block.split("\n") if line.startswith("data:")]
        if data and "".join(data).strip():
            messages.append(json.loads("\n".join(data)))
    return messages


class Streamable:
    def __init__(self, http: aiohttp.ClientSession, url: str, accept: str = ACCEPT_BOTH) -> None:
        self.http = http
        self.url = url
        self.accept = accept
        self.session_id: str | None = None
        self.headers: dict[str, str] = {}

    async def initialize(
        self, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params or INIT_PARAMS}
        status, resp_headers, messages = await self.post(body, extra=headers)
        assert status == 200, (status, messages)
        self.session_id = resp_headers["mcp-session-id"]
        await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return messages[-1]

    async def post(
        self, body: Any, extra: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], list[dict[str, Any]]]:
        headers = {"content-type": "application/json", "accept": self.accept, **self.headers, **(extra or {})}
        if self.session_id:
            headers["mcp-session-id"] = self.session_id
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with self.http.post(self.url, data=data, headers=headers) as resp:
            text = await resp.text()
            kind = resp.headers.get("content-type", "")
            if "text/event-stream" in kind:
                messages = parse_sse(text)
            elif text:
                parsed = json.loads(text)
                messages = parsed if isinstance(parsed, list) else [parsed]
            else:
                messages = []
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, messages

    async def call(
        self, request_id: Any, name: str, arguments: dict[str, Any], meta: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        if meta:
            params["_meta"] = meta
        status, _, messages = await self.post(
            {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
        )
        assert status == 200, (status, messages)
        return messages

    async def delete(self) -> int:
        headers = {**self.headers, "mcp-session-id": self.session_id or ""}
        async with self.http.delete(self.url, headers=headers) as resp:
            return resp.status


class LegacySSE:
    """HTTP+SSE: one GET stream for every reply, POSTs to the advertised endpoint."""

    def __init__(self, http: aiohttp.ClientSession, base: str, path: str = "/sse") -> None:
        self.http = http
        self.base = base
        self.path = path
        self.endpoint: str | None = None
        self._waiters: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self.other: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._resp: aiohttp.ClientResponse | None = None
        self._ready = asyncio.Event()

    async def connect(self) -> None:
        self._resp = await self.http.get(self.base + self.path, headers={"accept": "text/event-stream"})
        assert self._resp.status == 200, self._resp.status
        self._task = asyncio.get_running_loop().create_task(self._read())
        await asyncio.wait_for(self._ready.wait(), 10)

    async def _read(self) -> None:
        assert self._resp is not None
        event, data = "message", []
        async for raw in self._resp.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif line == "":
                if data:
                    self._dispatch(event, "\n".join(data))
                event, data = "message", []

    def _dispatch(self, event: str, data: str) -> None:
        if event == "endpoint":
            self.endpoint = data
            self._ready.set()
            return
        message = json.loads(data)
        waiter = self._waiters.pop(message.get("id"), None) if "method" not in message else None
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
        else:
            self.other.append(message)

    async def send(self, body: dict[str, Any]) -> int:
        assert self.endpoint is not None
        async with self.http.post(self.base + self.endpoint, json=body) as resp:
            await resp.read()
            return resp.status

    async def request(self, request_id: Any, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = future
        status = await self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}})
        assert status == 202, status
        return await future

    async def initialize(self) -> dict[str, Any]:
        reply = await self.request(0, "initialize", INIT_PARAMS)
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return reply

    async def call(self, request_id: Any, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return await self.request(request_id, "tools/call", {"name": name, "arguments": arguments})

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._resp is not None:
            self._resp.close()


def text_of(message: dict[str, Any]) -> str:
    """The first text content of a tools/call response."""
    return message["result"]["content"][0]["text"]


MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "harbor-tests", "version": "1"},
}


class Modern:
    """The 2026-07-28 wire: one self-contained POST per request, envelope in `_meta`, routing headers set."""

    def __init__(self, http: aiohttp.ClientSession, url: str, meta: dict[str, Any] | None = None) -> None:
        self.http = http
        self.url = url
        self.meta = meta or MODERN_META

    async def initialize(self) -> None:
        """Nothing to do: the modern era has no handshake (kept so load code treats every client alike)."""

    async def request(self, request_id: Any, method: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": self.meta}}
        headers = {
            "content-type": "application/json",
            "accept": ACCEPT_BOTH,
            "mcp-protocol-version": "2026-07-28",
            "mcp-method": method,
        }
        name = params.get("name") if method in ("tools/call", "prompts/get") else params.get("uri")
        if isinstance(name, str):
            headers["mcp-name"] = name
        async with self.http.post(self.url, data=json.dumps(body).encode(), headers=headers) as resp:
            text = await resp.text()
            if "text/event-stream" in resp.headers.get("content-type", ""):
                return parse_sse(text)
            return [json.loads(text)] if text else []

    async def call(self, request_id: Any, name: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
        return await self.request(request_id, "tools/call", {"name": name, "arguments": arguments})
