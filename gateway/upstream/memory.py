"""An MCP server inside the test process, as an upstream: the double for unit tests of the layers above.

`MemoryUpstream(respond)` keeps the `Upstream` contract exactly — `send` never blocks and refuses what it
cannot take, replies reach the `Listener` from the event loop, `close` is idempotent — but instead of a child
process it calls `respond(message)` and delivers whatever messages that returns (after a JSON round trip, so
a test sees the bytes a real child would have parsed). `received` keeps every message sent to it, so a test
can assert what did or did not reach the upstream. `echo_server` is a small server that answers initialize,
tools/list and an `echo` tool, and answers every other request with -32601.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.core import jsonrpc
from gateway.core.errors import METHOD_NOT_FOUND, UpstreamError
from gateway.core.jsonrpc import Message
from gateway.upstream.base import Listener

Responder = Callable[[Message], "list[Message] | Awaitable[list[Message]]"]


class MemoryUpstream:
    def __init__(self, respond: Responder, *, name: str = "memory") -> None:
        self.respond = respond
        self.name = name
        self.received: list[Message] = []
        self.pid = None
        self._listener: Listener | None = None
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, listener: Listener) -> None:
        self._listener = listener

    def send(self, message: Message) -> None:
        """Raises: UpstreamError once closed; ProtocolError for a message that cannot be encoded."""
        if self._closed or self._listener is None:
            raise UpstreamError(f"the {self.name} server is not running")
        data = jsonrpc.encode(message)  # a real child gets these bytes: refuse what could not be written
        self.received.append(jsonrpc.decode(data))
        task = asyncio.get_running_loop().create_task(self._answer(self.received[-1]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, message: Message) -> None:
        replies = self.respond(message)
        if inspect.isawaitable(replies):
            replies = await replies
        for reply in replies:
            if self._listener is not None and not self._closed:
                self._listener.message_received(jsonrpc.decode(jsonrpc.encode(reply)))

    def die(self, reason: str = "the process exited with code 1") -> None:
        """Behave like a child that crashed."""
        if not self._closed and self._listener is not None:
            self._closed = True
            self._listener.upstream_closed(reason)

    async def close(self, quick: bool = False) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()


ECHO_TOOL: Message = {
    "name": "echo",
    "description": "Echoes its text.",
    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
}


def echo_server(message: Message, tools: list[Message] | None = None) -> list[Message]:
    """A minimal MCP server: initialize, tools/list (`tools`, default the echo tool), tools/call of any listed
    tool (answers with the `text` argument), ping; -32601 for other requests; notifications are ignored."""
    if "method" not in message or "id" not in message:
        return []
    method, request_id = message["method"], message["id"]
    listed = tools if tools is not None else [ECHO_TOOL]
    result: Any
    if method == "initialize":
        result = {
            "protocolVersion": (message.get("params") or {}).get("protocolVersion", jsonrpc.LATEST_VERSION),
            "capabilities": {"tools": {"listChanged": True}},
            "serverInfo": {"name": "memory-echo", "version": "1"},
        }
    elif method == "tools/list":
        result = {"tools": listed}
    elif method == "tools/call" and (message.get("params") or {}).get("name") in {t["name"] for t in listed}:
        text = ((message.get("params") or {}).get("arguments") or {}).get("text", "")
        result = {"content": [{"type": "text", "text": str(text)}], "isError": False}
    elif method == "ping":
        result = {}
    else:
        return [jsonrpc.error_response(request_id, METHOD_NOT_FOUND, f"Method not found: {method}")]
    return [{"jsonrpc": "2.0", "id": request_id, "result": result}]
