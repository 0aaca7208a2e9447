"""An SSE stream as a session `Outbox`: a bounded queue drained by sse-starlette.

`put` never blocks the router. A reader too slow to keep `limit` messages drained is cut off at once:
the response is cancelled (even mid-write), the overflow is logged, and the session's later messages take
another path (see `ClientSession.deliver`); a legacy SSE session ends with its stream. Only messages the
client did not ask for (notifications, server requests) count towards `limit`: the replies to its own
requests are bounded by what it sent (a batch is capped), so a prompt reader is never cut off by its own
answers; a hard cap of `REPLY_FACTOR × limit` replies still bounds a client that never reads. Keep-alive
comments and the per-write send timeout come from sse-starlette.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import orjson
import structlog
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from gateway.core import tracing
from gateway.core.jsonrpc import Message

log = structlog.get_logger("gateway.sse")

SEND_TIMEOUT = 30.0  # seconds a single write may block before the reader is dropped
REPLY_FACTOR = 16  # replies to the client's own requests that may queue, as a multiple of `limit`
_END = object()


SHUTDOWN_HOLD = 3600.0  # seconds a stream may outlive the stop signal: the drain, not this, decides


class SSEOutbox:
    def __init__(self, session_id: str, limit: int = 1024, first_event_id: Callable[[], str] | None = None) -> None:
        self.session_id = session_id
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._limit = limit
        self._next_id = first_event_id
        self._head: list[Any] = []  # items taken by `get` and handed back with `unget`
        self._overflow = asyncio.Event()
        self._unsolicited = 0  # queued messages that are not replies (what a slow reader is judged by)
        self.closed = False

    async def get(self) -> Any:
        """The next queued message (for callers that look before deciding how to answer)."""
        if self._head:
            return self._head.pop()
        item = await self._queue.get()
        if isinstance(item, dict) and "method" in item:
            self._unsolicited -= 1
        return item

    async def next_message(self) -> Message | None:
        """The next message, or None once the stream is closed or overflowed."""
        item = await self.get()
        return None if item is _END else item

    @property
    def overflowed(self) -> bool:
        return self._overflow.is_set()

    def unget(self, item: Any) -> None:
        self._head.append(item)

    def drain(self) -> list[Message]:
        """Messages queued but never written (the reader went away first), for delivery elsewhere."""
        left = [m for m in reversed(self._head) if isinstance(m, dict)]
        self._head.clear()
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, dict):
                left.append(item)
        self.closed = True
        return left

    def put(self, message: Message) -> bool:
        if self.closed:
            return False
        unsolicited = "method" in message
        if (self._unsolicited if unsolicited else self._queue.qsize()) >= self._limit * (
            1 if unsolicited else REPLY_FACTOR
        ):
            self.closed = True
            self._queue.put_nowait(_END)
            self._overflow.set()
            log.warning("sse_reader_too_slow", session=self.session_id, queued=self._queue.qsize())
            return False
        self._unsolicited += unsolicited
        self._queue.put_nowait(message)
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(_END)

    async def events(self, until: Callable[[Message], bool] | None = None) -> AsyncIterator[ServerSentEvent]:
        """Messages as SSE events; stops after one for which `until` is true, or when closed."""
        try:
            while True:
                item = await self.get()
                if item is _END:
                    return
                event_id = self._next_id() if self._next_id else None
                yield ServerSentEvent(orjson.dumps(item).decode(), event="message", id=event_id)
                if tracing.enabled:  # harbor tracing hook: written to the client
                    tracing.written(self.session_id, (item,))
                if until is not None and until(item):
                    return
        finally:
            self.closed = True

    def response(
        self,
        events: AsyncIterator[ServerSentEvent],
        keep_alive: float,
        headers: dict[str, str] | None = None,
    ) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        """The stream as an ASGI app; a reader cut off for falling behind is disconnected at once.

        Ending the event iterator is not enough when the write to that reader is itself blocked (its TCP
        window is full), so the response is cancelled outright when the outbox overflows.
        """

        async def closed(_: Any) -> None:
            self.closed = True

        response = EventSourceResponse(
            events,
            headers={"Cache-Control": "no-cache", **(headers or {})},
            ping=keep_alive,
            ping_message_factory=lambda: ServerSentEvent(comment="keep-alive"),
            send_timeout=SEND_TIMEOUT,
            client_close_handler_callable=closed,
            # On SIGTERM sse-starlette would cancel every stream at once, cutting calls in flight and ending GET
            # streams mid-chunk; the gateway's drain ends them instead (cleanly, once their calls are done), and
            # uvicorn's own shutdown timeout bounds the wait.
            shutdown_grace_period=SHUTDOWN_HOLD,
        )

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            async with anyio.create_task_group() as group:

                async def serve() -> None:
                    await response(scope, receive, send)
                    group.cancel_scope.cancel()

                group.start_soon(serve)
                await self._overflow.wait()
                group.cancel_scope.cancel()

        return app
