"""Legacy HTTP+SSE (MCP 2024-11-05): GET the stream, POST messages to the endpoint it names.

GET `/sse` opens a session and its stream; the first event is `endpoint`, whose data is the POST URI
(`/message?session_id=…`, as the Python SDK does; `sessionId=` as the TypeScript SDK does is accepted
too). A POST gets 202 and its replies travel on the stream as `message` events. Closing the stream ends
the session (and, per session, its child).
"""

from __future__ import annotations

from typing import Any

from sse_starlette import ServerSentEvent
from starlette.types import Receive, Scope, Send

from gateway import errors, jsonrpc
from gateway.errors import GatewayError, MessageTooLarge, SessionNotFound
from gateway.sessions import Sessions
from gateway.transports._asgi import headers_of, identity_of, query_param, read_body, send_empty, send_error
from gateway.transports._outbox import SSEOutbox


class SSEStream:
    """The ASGI app at the SSE path (GET)."""

    def __init__(self, manager: Sessions, message_path: str, keep_alive: float) -> None:
        self.manager = manager
        self.message_path = message_path
        self.keep_alive = keep_alive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "GET":
            await send_error(
                send, 405, errors.INVALID_REQUEST, "use GET to open the SSE stream", headers=[(b"allow", b"GET")]
            )
            return
        try:
            session = self.manager.open("sse", headers_of(scope), identity_of(scope))
        except GatewayError as exc:
            await send_error(send, 503, exc.code, exc.message)
            return
        outbox = SSEOutbox(session.id)
        session.attach_default(outbox)
        root = scope.get("root_path", "")
        endpoint = f"{root}{self.message_path}?session_id={session.id}"

        async def events() -> Any:
            yield ServerSentEvent(endpoint, event="endpoint")
            async for event in outbox.events():
                yield event

        try:
            await outbox.response(events(), self.keep_alive)(scope, receive, send)
        finally:
            outbox.closed = True
            await self.manager.close(session.id, "SSE stream closed")


class SSEMessages:
    """The ASGI app at the message path (POST)."""

    def __init__(self, manager: Sessions, max_message_bytes: int) -> None:
        self.manager = manager
        self.max_message_bytes = max_message_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await send_error(
                send, 405, errors.INVALID_REQUEST, "POST JSON-RPC messages here", headers=[(b"allow", b"POST")]
            )
            return
        session_id = query_param(scope, "session_id") or query_param(scope, "sessionId")
        if not session_id:
            await send_error(
                send,
                400,
                errors.INVALID_REQUEST,
                "session_id query parameter is required (use the URI from the endpoint event)",
            )
            return
        try:
            session = self.manager.get(session_id, identity_of(scope))
            body = jsonrpc.decode(await read_body(scope, receive, self.max_message_bytes))
            messages = body if isinstance(body, list) and body else [body]
            kinds = [jsonrpc.classify(m) for m in messages]
        except SessionNotFound as exc:
            await send_error(send, 404, exc.code, exc.message)
            return
        except MessageTooLarge as exc:
            await send_error(send, 413, exc.code, exc.message)
            return
        except GatewayError as exc:
            await send_error(send, 400, exc.code, exc.message)
            return
        for message, kind in zip(messages, kinds, strict=True):
            if kind == "request" and message["method"] == "initialize":
                try:
                    session.deliver(await self.manager.initialize(session, message))
                except GatewayError as exc:
                    session.deliver(jsonrpc.error_from(message["id"], exc))
            elif session.router is None:
                await send_error(send, 400, errors.INVALID_REQUEST, "send initialize first", message.get("id"))
                return
            else:
                await session.router.from_client(session, message, kind)
        await send_empty(send, 202)
