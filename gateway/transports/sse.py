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

from gateway.core import errors, jsonrpc, tracing
from gateway.core.errors import Elsewhere, GatewayError, MessageTooLarge, SessionNotFound, StateDown
from gateway.session.table import Sessions
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
        announce = getattr(self.manager, "announce", None)
        if announce is not None:  # shared between replicas: recorded, so /message POSTs elsewhere reach it here
            try:
                await announce(session)
            except GatewayError as exc:
                await self.manager.close(session.id, "could not be recorded")
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
        body: Any = None
        raw = b""
        try:
            session = await self.manager.find(session_id, identity_of(scope))
        except Elsewhere as exc:  # its stream is held by another replica: the POST goes there
            peering = getattr(self.manager, "peering", None)
            if peering is None or not await peering.relay(scope, receive, send, exc.address):
                message = f"Session not found: the replica holding its stream ({exc.replica}) cannot be reached"
                await send_error(send, 404, errors.INVALID_REQUEST, message)
            return
        except StateDown as exc:
            await send_error(send, 503, exc.code, exc.message)
            return
        except SessionNotFound as exc:
            await send_error(send, 404, exc.code, exc.message)
            return
        try:
            raw = await read_body(scope, receive, self.max_message_bytes)
            body = jsonrpc.decode(raw)
            messages = body if isinstance(body, list) and body else [body]
            _check_batch(body, session.protocol_version)
            kinds = [jsonrpc.classify(m) for m in messages]
        except SessionNotFound as exc:
            await send_error(send, 404, exc.code, exc.message)
            return
        except MessageTooLarge as exc:
            self.manager.refused(identity_of(scope), exc.message)
            await send_error(send, 413, exc.code, exc.message)
            return
        except GatewayError as exc:
            self.manager.refused(identity_of(scope), exc.message)
            await send_error(send, 400, exc.code, exc.message, jsonrpc.refused_id(body, raw, exc))
            return
        if tracing.enabled:  # harbor tracing hook: a span per request (gateway/core/tracing.py)
            tracing.received(session, messages, kinds, scope)
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


def _check_batch(body: Any, version: str | None) -> None:
    """Batches follow the session's negotiated version (as on Streamable HTTP) and the gateway's size cap.

    Raises:
        ProtocolError: a batch the session's protocol does not have, or one over `jsonrpc.MAX_BATCH`.
    """
    if not isinstance(body, list):
        return
    if version not in jsonrpc.BATCH_VERSIONS:
        where = f"protocol {version}" if version else "a session before initialize"
        raise errors.ProtocolError(f"Invalid Request: JSON-RPC batches are not part of {where}")
    if len(body) > jsonrpc.MAX_BATCH:
        raise errors.ProtocolError(
            f"Invalid Request: a batch of {len(body)} messages exceeds the limit of {jsonrpc.MAX_BATCH}; split it"
        )
