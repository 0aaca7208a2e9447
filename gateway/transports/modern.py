"""Streamable HTTP for the 2026-07-28 era: one self-contained POST per request, on the same endpoint.

`StreamableHTTP` hands a POST here when `era.is_modern` says so; everything else stays the handshake era. The
request is checked as the spec orders it — a single request or notification (batches and responses are
-32600), the routing headers once each, the envelope ladder (`era.envelope`: -32602, -32020, -32022 with
`data.supported`), the `Mcp-Param-*` headers of a `tools/call` against the tool's schema — and every error
reply carries the request's id with the status `era.HTTP_STATUS` gives its code (404 for -32601). A
notification is acknowledged 202 and dropped (the core protocol defines none on this wire). The answer is JSON
when the reply comes first and the client accepts JSON; the moment a notification of the request comes first
(progress, a log line it asked for) or the keep-alive passes, it is an SSE stream that carries only the
request's own notifications, keep-alive comments, then its response (`X-Accel-Buffering: no`).
`subscriptions/listen` is always a stream. No `Mcp-Session-Id` is read or set. A client that disconnects
cancels its request (a call parked between input rounds waits for its retry instead).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive, Scope, Send

from gateway.core import era, errors, jsonrpc
from gateway.core.errors import GatewayError
from gateway.core.jsonrpc import Message
from gateway.transports._asgi import headers_of, identity_of, send_empty, send_json
from gateway.transports._outbox import SSEOutbox

SSE_HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}


async def send_rejection(send: Send, code: int, message: str, request_id: Any, data: Any = None) -> None:
    """A JSON-RPC error with the HTTP status the spec gives its code."""
    status = era.HTTP_STATUS.get(code, 200)
    await send_json(send, status, jsonrpc.error_response(request_id, code, message, data))


class ModernHTTP:
    def __init__(self, manager: Any, keep_alive: float, deadline: float = 3600.0) -> None:
        self.manager = manager
        self.keep_alive = keep_alive
        self.deadline = deadline

    async def post(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        body: Any,
        wants_json: bool,
        wants_sse: bool,
        headers: dict[str, str] | None = None,
    ) -> None:
        """`headers`: the request's headers as `headers_of` gives them, when the caller has read them already."""
        headers = headers if headers is not None else headers_of(scope)
        if not isinstance(body, dict) or ("method" not in body and "id" in body):
            await send_rejection(
                send, errors.INVALID_REQUEST, "Body must be a single JSON-RPC request or notification object", None
            )
            return
        request_id = jsonrpc.id_of(body)
        try:
            kind = jsonrpc.classify(body)
        except GatewayError as exc:
            await send_rejection(send, exc.code, exc.message, request_id)
            return
        if kind == "notification":
            version = headers.get(era.VERSION_HEADER)
            if version is not None and version not in era.MODERN_VERSIONS:
                rejected = era.unsupported(version)
                await send_rejection(send, rejected.code, rejected.message, None, rejected.data)
                return
            await send_empty(send, 202)
            return
        duplicated = era.duplicated_header(scope["headers"])
        if duplicated is not None:
            await send_rejection(send, era.HEADER_MISMATCH, f"{duplicated} header appears more than once", request_id)
            return
        checked = era.envelope(body, headers)
        if isinstance(checked, era.Rejection):
            await send_rejection(send, checked.code, checked.message, request_id, checked.data)
            return
        if body["method"] == "subscriptions/listen" and not wants_sse:
            message = "subscriptions/listen answers with a stream: send Accept: text/event-stream"
            await send_rejection(send, errors.INVALID_REQUEST, message, request_id)
            return
        outbox = SSEOutbox("modern", limit=10_000)
        try:
            call = await self.manager.modern(identity_of(scope), checked, body, outbox, scope["headers"])
        except GatewayError as exc:
            await send_rejection(send, exc.code, exc.message, request_id, exc.data)
            return
        try:
            await self._answer(call, outbox, request_id, wants_json, wants_sse, body["method"], scope, receive, send)
        finally:
            outbox.close()

    async def _answer(
        self,
        call: Any,
        outbox: SSEOutbox,
        request_id: Any,
        wants_json: bool,
        wants_sse: bool,
        method: str,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        listen = method == "subscriptions/listen"
        first_wait = self.keep_alive if wants_sse else self.deadline
        while wants_json and not listen:
            try:
                async with asyncio.timeout(first_wait):
                    item = await outbox.get()
            except TimeoutError:
                if wants_sse:
                    break
                _abandon(call)
                await send_rejection(send, errors.REQUEST_TIMEOUT, "no reply in time", request_id)
                return
            if isinstance(item, dict) and "method" not in item:
                error = item.get("error")
                code = error.get("code") if isinstance(error, dict) else None
                status = era.HTTP_STATUS.get(code, 200) if isinstance(code, int) else 200
                await send_json(send, status, item)
                return
            outbox.unget(item)  # a notification came first: stream
            break

        def last(message: Message) -> bool:
            return "method" not in message

        async def events() -> Any:
            async for event in outbox.events(until=last):
                yield event

        response = outbox.response(events(), self.keep_alive, SSE_HEADERS)
        try:
            await response(scope, receive, send)
        finally:
            if not getattr(call, "finished", True):
                _abandon(call)


def _abandon(call: Any) -> None:
    """The client went away (or gave up): stop writing to it; a call not parked for a retry is cancelled."""
    abandon = getattr(call, "abandon", None)
    if abandon is not None:
        abandon()


async def method_not_allowed(send: Send) -> None:
    """GET and DELETE do not exist in the modern era (no stream to open, no session to end)."""
    await send_json(
        send,
        405,
        jsonrpc.error_response(None, errors.INVALID_REQUEST, "Method not allowed for protocol 2026-07-28: POST only"),
        [(b"allow", b"POST")],
    )
