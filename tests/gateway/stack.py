"""An in-process gateway stack over memory upstreams, for unit tests of the layers between HTTP and a child.

`Stack` docks each responder as a server (a supervised `Router` over a `MemoryUpstream`), merges them in an
`Aggregator` behind a `MergedManager`, and serves that with the real Streamable HTTP and SSE transports as an
ASGI app that tests drive with httpx's `ASGITransport` — no sockets, no processes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Route

from gateway.core.jsonrpc import Message
from gateway.hub.aggregate import Aggregator, Hooks
from gateway.hub.docked import DockedServer
from gateway.hub.merged import MergedManager
from gateway.session.table import shared_init_params, supervised_router
from gateway.transports.sse import SSEMessages, SSEStream
from gateway.transports.streamable_http import StreamableHTTP
from gateway.upstream.memory import MemoryUpstream, echo_server

ACCEPT = "application/json, text/event-stream"
INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "unit", "version": "1"}}


class Stack:
    def __init__(self, servers: dict[str, Callable[[Message], Any]] | None = None, hooks: Hooks | None = None) -> None:
        self.upstreams: dict[str, list[MemoryUpstream]] = {}
        self.records: list[dict[str, Any]] = []
        self.refusals: list[tuple[str, str]] = []
        docked = {}
        for slug, respond in (servers or {"mem": echo_server}).items():
            docked[slug] = DockedServer(
                slug, supervised_router(slug, self._spawner(slug, respond), shared_init_params(), 5.0, 1 << 20)
            )
        self.hooks = hooks or Hooks(
            on_call_done=lambda record: self.records.append({k: v for k, v in record.items() if k != "response"}),
            on_refused=lambda identity, reason: self.refusals.append((identity, reason)),
        )
        self.aggregator = Aggregator(docked, self.hooks, merged=True)
        self.manager = MergedManager(self.aggregator)
        self.app = Starlette(
            routes=[
                Route("/mcp", StreamableHTTP(self.manager, 15.0, 1 << 20)),
                Route("/sse", SSEStream(self.manager, "/message", 15.0)),
                Route("/message", SSEMessages(self.manager, 1 << 20)),
            ]
        )
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://127.0.0.1")

    def _spawner(self, slug: str, respond: Callable[[Message], Any]) -> Callable[[], MemoryUpstream]:
        def spawn() -> MemoryUpstream:
            upstream = MemoryUpstream(respond, name=slug)
            self.upstreams.setdefault(slug, []).append(upstream)
            return upstream

        return spawn

    async def ready(self) -> None:
        for server in self.aggregator.servers.values():
            assert server.router.child is not None
            await server.router.child.wait_ready(5)

    async def session(self) -> str:
        reply = await self.client.post(
            "/mcp", json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT}, headers={"accept": ACCEPT}
        )
        assert reply.status_code == 200, reply.text
        return reply.headers["mcp-session-id"]

    async def post(self, session: str | None, body: Any, accept: str = ACCEPT) -> httpx.Response:
        headers = {"accept": accept, "content-type": "application/json"}
        if session:
            headers["mcp-session-id"] = session
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.client.post("/mcp", content=content, headers=headers)

    def received(self, slug: str = "mem") -> list[Message]:
        return [m for upstream in self.upstreams.get(slug, []) for m in upstream.received]

    async def close(self) -> None:
        await self.client.aclose()
        await self.manager.stop()
        for server in self.aggregator.servers.values():
            if server.router.child is not None:
                await server.router.child.stop()


def messages(response: httpx.Response) -> list[Message]:
    """The JSON-RPC messages of a JSON or SSE response body."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        found = []
        for block in response.text.replace("\r\n", "\n").split("\n\n"):
            data = "\n".join(line[5:].lstrip() for line in block.split("\n") if line.startswith("data:"))
            if data.strip():
                found.append(json.loads(data))
        return found
    parsed = json.loads(response.text) if response.text else []
    return parsed if isinstance(parsed, list) else [parsed]
