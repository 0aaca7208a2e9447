"""Streamable HTTP (MCP 2025-03-26 … 2025-11-25): one endpoint, POST / GET / DELETE.

POST carries one JSON-RPC message (or, for 2025-03-26 sessions, a batch). Notifications and responses get
202. Requests are answered as `application/json` when the reply comes before anything else for them and the
client accepts JSON; the moment a related message comes first (progress, a sampling request) or
`--keep-alive` seconds pass, the answer becomes an SSE stream instead, which starts with a priming event
and carries keep-alive comments. GET opens the session's stream for server-initiated messages (one at a
time: a second is 409); a GET with the `Last-Event-ID` of a dropped POST stream resumes that stream
instead (`_resumable.py`). DELETE ends the session. `Mcp-Session-Id` missing → 400, unknown → 404; an
unsupported `MCP-Protocol-Version` → 400.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from typing import Any

import orjson
from sse_starlette import ServerSentEvent
from starlette.types import Receive, Scope, Send

from gateway.core import era, errors, jsonrpc, tracing
from gateway.core.errors import Elsewhere, GatewayError, MessageTooLarge, SessionNotFound, StateDown
from gateway.core.jsonrpc import Message, RequestId
from gateway.session.client import ClientSession
from gateway.session.table import Sessions
from gateway.transports._asgi import headers_of, identity_of, read_body, send_empty, send_error, send_json
from gateway.transports._outbox import SSEOutbox
from gateway.transports._resumable import RETRY_MS, ResumableStream, find
from gateway.transports.modern import ModernHTTP, method_not_allowed

SESSION_HEADER = "mcp-session-id"
SHARED_BACKLOG = 1024  # events queued for a slow reader of a shared GET stream before it is cut off
SAFETY_MARGIN = 30.0  # seconds past the router's own deadline before the transport gives up waiting


class StreamableHTTP:
    """The ASGI app mounted at the Streamable HTTP path (e.g. /mcp)."""

    def __init__(self, manager: Sessions, keep_alive: float, max_message_bytes: int) -> None:
        self.manager = manager
        self.keep_alive = keep_alive
        self.max_message_bytes = max_message_bytes
        self._event_ids = itertools.count(1)
        self.modern = ModernHTTP(manager, keep_alive)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method != "POST" and headers_of(scope).get(era.VERSION_HEADER) in era.MODERN_VERSIONS:
            await method_not_allowed(send)
        elif method == "POST":
            await self._post(scope, receive, send)
        elif method == "GET":
            await self._get(scope, receive, send)
        elif method == "DELETE":
            await self._delete(scope, send)
        else:
            await send_error(
                send,
                405,
                errors.INVALID_REQUEST,
                f"Method {method} not allowed",
                headers=[(b"allow", b"GET, POST, DELETE")],
            )

    # --- POST --------------------------------------------------------------------------------------------

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = headers_of(scope)
        accept = headers.get("accept", "")
        wants_sse = "text/event-stream" in accept
        wants_json = not accept or "application/json" in accept or "*/*" in accept
        if not (wants_sse or wants_json):
            await send_error(
                send,
                406,
                errors.INVALID_REQUEST,
                "Not Acceptable: Accept must include application/json or text/event-stream",
            )
            return
        if not headers.get("content-type", "application/json").startswith("application/json"):
            await send_error(
                send, 415, errors.INVALID_REQUEST, "Unsupported Media Type: send Content-Type: application/json"
            )
            return
        body: Any = None
        raw = b""
        modern = False
        try:
            raw = await read_body(scope, receive, self.max_message_bytes)
            body = jsonrpc.decode(raw)
            messages: list[Message] = []
            kinds: list[str] = []
            modern = era.is_modern(body, headers)
            if not modern:
                messages, kinds = _validate(body)
        except MessageTooLarge as exc:
            self.manager.refused(identity_of(scope), exc.message)
            await send_error(send, 413, exc.code, exc.message)
            return
        except GatewayError as exc:
            self.manager.refused(identity_of(scope), exc.message)
            await send_error(send, 400, exc.code, exc.message, jsonrpc.refused_id(body, raw, exc))
            return
        if modern:  # the stateless 2026-07-28 path; everything else is as it was
            peering = getattr(self.manager, "peering", None)
            if peering is not None and isinstance(body, dict):
                state = (body.get("params") or {}).get("requestState") if isinstance(body.get("params"), dict) else None
                address = await peering.locate_state(state) if state is not None else None
                if address is not None and await peering.relay(scope, receive, send, address, raw):
                    return  # an input round of a call parked on another replica: answered there
            await self.modern.post(scope, receive, send, body, wants_json, wants_sse, headers)
            return

        if kinds[0] == "request" and messages[0]["method"] == "initialize":
            if len(messages) > 1:
                await send_error(send, 400, errors.INVALID_REQUEST, "initialize must not be part of a batch")
                return
            await self._initialize(messages[0], headers, wants_json, scope, receive, send)
            return

        session = await self._session(scope, headers, send, jsonrpc.id_of(body), receive, raw)
        if session is None:
            return
        if isinstance(body, list) and session.protocol_version not in jsonrpc.BATCH_VERSIONS:
            await send_error(
                send,
                400,
                errors.INVALID_REQUEST,
                f"JSON-RPC batches are not part of protocol {session.protocol_version}",
            )
            return
        router = session.router
        requests = [m["id"] for m, k in zip(messages, kinds, strict=True) if k == "request"]
        duplicate = _duplicate(session, requests)
        if duplicate is not None:  # refused before anything is registered: the original keeps its stream
            error = jsonrpc.error_response(
                duplicate, errors.INVALID_REQUEST, f"request id {duplicate!r} is already in flight; use a new id"
            )
            await self._reply_now(
                session, [error] if isinstance(body, list) else error, wants_json, scope, receive, send
            )
            return
        if not requests:
            for message, kind in zip(messages, kinds, strict=True):
                await router.from_client(session, message, kind)
            await send_empty(send, 202)
            return

        outbox = SSEOutbox(session.id, limit=10_000)
        for request_id in requests:
            session.streams[request_id] = outbox
        stream = ResumableStream(
            session, outbox, functools.partial(_release, session, outbox, requests), prefix=self._stream_prefix()
        )
        stream.waiting.update(requests)
        if tracing.enabled:  # harbor tracing hook: a span per request (gateway/core/tracing.py)
            tracing.received(session, messages, kinds, scope)
        try:
            for message, kind in zip(messages, kinds, strict=True):
                await router.from_client(session, message, kind)
            await self._answer(session, stream, isinstance(body, list), wants_json, wants_sse, scope, receive, send)
        finally:
            stream.after_response()  # parked for a GET with Last-Event-ID, or its leftovers handed back

    async def _initialize(
        self, request: Message, headers: dict[str, str], wants_json: bool, scope: Scope, receive: Receive, send: Send
    ) -> None:
        version = headers.get("mcp-protocol-version")
        if version is not None and version not in jsonrpc.PROTOCOL_VERSIONS:
            await send_error(
                send, 400, errors.INVALID_REQUEST, f"Unsupported MCP-Protocol-Version: {version}", request["id"]
            )
            return
        try:
            session = self.manager.open("streamable-http", headers, identity_of(scope))
        except GatewayError as exc:
            await send_error(send, 503, exc.code, exc.message, request["id"])
            return
        if tracing.enabled:  # harbor tracing hook
            tracing.received(session, [request], ["request"], scope)
        try:
            reply = await self.manager.initialize(session, request)
        except GatewayError as exc:
            await self.manager.close(session.id, "initialize failed")
            await send_error(send, 400, exc.code, exc.message, request["id"])
            return
        if "error" in reply:
            await self.manager.close(session.id, "initialize failed")
            await send_json(send, 200, reply)
            return
        session_header = [(SESSION_HEADER.encode(), session.id.encode())]
        if wants_json:
            await send_json(send, 200, reply, session_header)
            if tracing.enabled:  # harbor tracing hook: the reply is written
                tracing.written(session.id, [reply])
        else:
            outbox = SSEOutbox(session.id, first_event_id=self._event_id)
            outbox.put(reply)
            outbox.close()
            await outbox.response(outbox.events(), self.keep_alive, {SESSION_HEADER: session.id})(scope, receive, send)

    async def _answer(
        self,
        session: ClientSession,
        stream: ResumableStream,
        batch: bool,
        wants_json: bool,
        wants_sse: bool,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """Reply as JSON when nothing but responses comes first; switch to SSE otherwise."""
        outbox, waiting = stream.outbox, stream.waiting
        deadline = session.router.request_timeout + SAFETY_MARGIN
        first_wait = self.keep_alive if wants_sse else deadline
        responses: list[Message] = []
        while wants_json:  # a client that accepts only SSE gets its stream (headers first) at once
            try:
                async with asyncio.timeout(first_wait):  # no extra task per call, unlike wait_for on 3.11
                    item = await outbox.get()
            except TimeoutError:
                if wants_sse:
                    break  # a slow call: stream, so keep-alives flow
                await send_error(send, 504, errors.REQUEST_TIMEOUT, "no reply in time", next(iter(waiting)))
                return
            if _is_response(item) and item["id"] in waiting:
                waiting.discard(item["id"])
                responses.append(item)
                if not waiting and (wants_json or not wants_sse):
                    await send_json(send, 200, responses if batch else responses[0])
                    if tracing.enabled:  # harbor tracing hook: the replies are written
                        tracing.written(session.id, responses)
                    return
                continue
            if wants_sse:
                outbox.unget(item)  # it leads the stream
                break
            if session.default is not None:
                session.default.put(item)  # a JSON-only client gets side messages on its GET stream
        for response in responses:
            stream.record(response)
        if tracing.enabled and responses:  # harbor tracing hook: these lead the stream, written first
            tracing.written(session.id, responses)
        await self._stream(stream, None, scope, receive, send)

    async def _reply_now(
        self, session: ClientSession, reply: Any, wants_json: bool, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Answer a POST with messages known already, in the form the client accepts."""
        if wants_json:
            await send_json(send, 200, reply)
            return
        outbox = SSEOutbox(session.id, first_event_id=self._event_id)
        for message in reply if isinstance(reply, list) else [reply]:
            outbox.put(message)
        outbox.close()
        await outbox.response(outbox.events(), self.keep_alive, {SESSION_HEADER: session.id})(scope, receive, send)

    async def _stream(
        self, stream: ResumableStream, after: int | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Serve a POST's SSE answer: from the start (after=None) or resumed after event `after`."""
        headers = {SESSION_HEADER: stream.session.id}
        await stream.outbox.response(stream.events(after), self.keep_alive, headers)(scope, receive, send)

    # --- GET and DELETE ----------------------------------------------------------------------------------

    async def _get(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = headers_of(scope)
        if "text/event-stream" not in headers.get("accept", ""):
            await send_error(send, 406, errors.INVALID_REQUEST, "Not Acceptable: GET needs Accept: text/event-stream")
            return
        session = await self._session(scope, headers, send, None, receive)
        if session is None:
            return
        last_event_id = headers.get("last-event-id", "")
        resume = find(session, last_event_id)
        if resume is not None:
            await self._resume(*resume, scope, receive, send)
            return
        peering = getattr(self.manager, "peering", None)
        if peering is not None and last_event_id:
            address = await peering.locate_event(last_event_id)
            if address is not None and await peering.relay(scope, receive, send, address, b""):
                return  # the POST stream it resumes was served by another replica: resumed there
        if getattr(session.default, "shared", False):
            await self._shared_get(session, last_event_id or None, scope, receive, send)
            return
        if session.default is not None and not getattr(session.default, "closed", False):
            await send_error(send, 409, errors.INVALID_REQUEST, "Conflict: this session already has an open GET stream")
            return
        outbox = SSEOutbox(session.id, first_event_id=self._event_id)
        session.attach_default(outbox)

        async def events() -> Any:
            yield ServerSentEvent(data="", id=self._event_id(), retry=RETRY_MS)
            async for event in outbox.events():
                yield event

        try:
            await outbox.response(events(), self.keep_alive, {SESSION_HEADER: session.id})(scope, receive, send)
        finally:
            outbox.closed = True
            session.detach_default(outbox)

    async def _shared_get(
        self, session: ClientSession, last_event_id: str | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """The GET stream of a session shared between replicas: its events are kept in Redis, whichever replica
        wrote them; replay what came after `Last-Event-ID`, then follow live. Event ids are the shared ones, so a
        reconnect to any replica resumes exactly."""
        shared: Any = session.default
        try:
            missed, lost = await shared.replay(last_event_id)
        except GatewayError as exc:
            await send_error(send, 503, exc.code, exc.message)
            return
        outbox = SSEOutbox(session.id, limit=1024)  # its response machinery; the events come from `live`
        live: asyncio.Queue[tuple[str, Message] | None] = asyncio.Queue()

        def deliver(event_id: str, message: Message) -> bool:
            if outbox.closed:
                return False
            if live.qsize() >= SHARED_BACKLOG:  # too slow a reader: cut off; it resumes with Last-Event-ID
                outbox.closed = True
                live.put_nowait(None)
                return False
            live.put_nowait((event_id, message))
            return True

        after = missed[-1][0] if missed else (last_event_id or None)
        holder = shared.follow(after, deliver, _Ending(outbox, live))

        async def events() -> Any:
            yield ServerSentEvent(data="", id=after or shared.origin, retry=RETRY_MS)
            if lost:
                yield _event(lost, None)
            for event_id, message in missed:
                yield _event(message, event_id)
            while not outbox.closed:
                item = await live.get()
                if item is None:
                    return
                yield _event(item[1], item[0])

        try:
            await outbox.response(events(), self.keep_alive, {SESSION_HEADER: session.id})(scope, receive, send)
        finally:
            outbox.closed = True
            shared.unfollow(holder)

    async def _resume(self, stream: ResumableStream, after: int, scope: Scope, receive: Receive, send: Send) -> None:
        """GET with the `Last-Event-ID` of a dropped POST stream: replay what came after it, then go on live."""
        if stream.attached:
            await send_error(send, 409, errors.INVALID_REQUEST, "Conflict: that stream is still connected")
            return
        try:
            await self._stream(stream, after, scope, receive, send)
        finally:
            stream.after_response()

    async def _delete(self, scope: Scope, send: Send) -> None:
        session = await self._session(scope, headers_of(scope), send)
        if session is None:
            return
        await self.manager.close(session.id, "client sent DELETE")
        await send_empty(send, 200)

    async def _session(
        self,
        scope: Scope,
        headers: dict[str, str],
        send: Send,
        request_id: RequestId | None = None,
        receive: Receive | None = None,
        body: bytes | None = None,
    ) -> ClientSession | None:
        """The session a request names, or None after answering for it: 400/404 (naming `request_id`), 503 while
        shared state is down, or relayed whole to the replica that must serve it."""
        session_id = headers.get(SESSION_HEADER)
        if not session_id:
            message = "Bad Request: Mcp-Session-Id header is required (initialize first)"
            await send_error(send, 400, errors.INVALID_REQUEST, message, request_id)
            return None
        version = headers.get("mcp-protocol-version")
        if version is not None and version not in jsonrpc.PROTOCOL_VERSIONS:
            message = f"Bad Request: unsupported MCP-Protocol-Version {version!r}"
            await send_error(send, 400, errors.INVALID_REQUEST, message, request_id)
            return None
        try:
            session = await self.manager.find(session_id, identity_of(scope))
        except SessionNotFound as exc:
            await send_error(send, 404, exc.code, exc.message, request_id)
            return None
        except StateDown as exc:
            await send_error(send, 503, exc.code, exc.message, request_id)
            return None
        except Elsewhere as exc:
            peering = getattr(self.manager, "peering", None)
            if (
                receive is not None
                and peering is not None
                and await peering.relay(scope, receive, send, exc.address, body)
            ):
                return None
            message = f"Session not found: the replica holding it ({exc.replica}) cannot be reached; initialize again"
            await send_error(send, 404, errors.INVALID_REQUEST, message, request_id)
            return None
        if not session.initialized:
            message = "Bad Request: the session is not initialized yet"
            await send_error(send, 400, errors.INVALID_REQUEST, message, request_id)
            return None
        return session

    def _event_id(self) -> str:
        return str(next(self._event_ids))

    def _stream_prefix(self) -> str:
        """POST stream keys name the replica that serves them, so a resume landing elsewhere is relayed."""
        peering = getattr(self.manager, "peering", None)
        return peering.stream_prefix if peering is not None else ""


def _event(message: Message, event_id: str | None) -> ServerSentEvent:
    return ServerSentEvent(orjson.dumps(message).decode(), event="message", id=event_id)


def _validate(body: Any) -> tuple[list[Message], list[str]]:
    """Raises: ProtocolError for an empty or oversized batch, or a message of the wrong shape."""
    messages = body if isinstance(body, list) else [body]
    if not messages:
        raise errors.ProtocolError("Invalid Request: empty batch")
    if len(messages) > jsonrpc.MAX_BATCH:
        raise errors.ProtocolError(
            f"Invalid Request: a batch of {len(messages)} messages exceeds the limit of {jsonrpc.MAX_BATCH}; split it"
        )
    return messages, [jsonrpc.classify(m) for m in messages]


def _duplicate(session: ClientSession, requests: list[RequestId]) -> RequestId | None:
    """A request id of this POST that is already pending on the session (or repeated within the batch)."""
    seen: set[RequestId] = set()
    for request_id in requests:
        if request_id in seen or request_id in session.streams or request_id in session.inflight:
            return request_id
        seen.add(request_id)
    return None


def _is_response(message: Message) -> bool:
    return "method" not in message and "id" in message


def _release(session: ClientSession, outbox: SSEOutbox, requests: list[RequestId]) -> None:
    """A POST's stream is over: unregister it and hand what it never wrote to the session's other streams."""
    for request_id in requests:
        if session.streams.get(request_id) is outbox:
            del session.streams[request_id]
    for message in outbox.drain():
        session.deliver(message)


class _Ending:
    """What a shared GET stream registers with its session: `close` (the replica is stopping) ends the stream
    now, cleanly, so the client reconnects — to another replica — with its Last-Event-ID."""

    def __init__(self, outbox: SSEOutbox, live: asyncio.Queue[Any]) -> None:
        self._outbox, self._live = outbox, live

    def close(self) -> None:
        if not self._outbox.closed:
            self._outbox.closed = True
            self._live.put_nowait(None)
