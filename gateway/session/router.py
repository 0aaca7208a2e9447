"""One upstream shared by client sessions without cross-talk: id rewriting, routing, timeouts.

Every client request gets an upstream id unique for this router; its reply goes back to the one session
that sent it, under the client's own id. Progress tokens and `notifications/cancelled` are rewritten the
same way. From the upstream: progress goes to the owner of its token; `resources/updated` to the
sessions subscribed to that URI; list_changed, log messages and other notifications to every session.
A server→client request (sampling, elicitation, roots) goes to the single session with calls in flight;
when that is ambiguous the upstream gets a JSON-RPC error saying to run the server per session.

Each request has a deadline (`request_timeout`), pushed back by each progress notification; on expiry the
upstream gets `notifications/cancelled` and the client an error. When the upstream dies, every call in
flight fails at once. Messages in, messages out: no HTTP, no processes (see `Child`, `Upstream`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import structlog

from gateway.core import era, errors, jsonrpc, shapes, tracing
from gateway.core.errors import GatewayError, InvalidParams, MissingCapability, NoRoute, UpstreamError
from gateway.core.jsonrpc import Message, RequestId
from gateway.session.client import ClientSession
from gateway.upstream.child import Child

log = structlog.get_logger("gateway.session.router")

_NOT_ASKED = frozenset({"internal", "listen"})  # sessions that never answer a server's request
# Which client capability a server→client request needs.
_CAPABILITY = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}


class _Pending:
    __slots__ = ("client_id", "session", "subscribe_uri", "timer", "token", "upstream_id")

    def __init__(self, session: ClientSession, client_id: RequestId, upstream_id: int, token: Any) -> None:
        self.session = session
        self.client_id = client_id
        self.upstream_id = upstream_id
        self.token = token  # the client's progress token, or None
        self.timer: asyncio.TimerHandle | None = None
        self.subscribe_uri: str | None = None  # set for resources/subscribe, undone if it fails


class Router:
    def __init__(self, name: str, request_timeout: float, max_message_bytes: int) -> None:
        self.name = name
        self.request_timeout = request_timeout
        self.max_message_bytes = max_message_bytes
        self.child: Child | None = None
        self.sessions: set[ClientSession] = set()
        self._pending: dict[int, _Pending] = {}
        self._outgoing: dict[int, tuple[ClientSession, RequestId]] = {}  # client-facing id → (session, upstream id)
        self._subscribers: dict[str, set[ClientSession]] = {}
        self._listen_id: str | None = None  # the gateway's own subscriptions/listen on a 2026-07-28 child
        self._ids = itertools.count(1)
        self._loop = asyncio.get_event_loop()
        self.refusing: str | None = None  # why new requests are refused (the gateway is stopping), else None
        # Told of what changes the upstream's lists: ("changed", notification), ("ready", None), ("down", None).
        self.on_event: Callable[[str, Message | None], None] | None = None

    # --- sessions ------------------------------------------------------------------------------------------

    def attach(self, session: ClientSession) -> None:
        self.sessions.add(session)
        session.router = self

    def detach(self, session: ClientSession) -> None:
        """Forget a session: cancel its calls upstream, drop its subscriptions."""
        self.sessions.discard(session)
        for upstream_id in list(session.inflight.values()):
            pending = self._pending.pop(upstream_id, None)
            if pending is not None:
                self._stop_timer(pending)
                self._send_quietly(_cancelled(upstream_id, "client session closed"))
        session.inflight.clear()
        for uri in list(session.subscriptions):
            self._unsubscribe(session, uri, notify_upstream=True)
        if self._outgoing:
            self._outgoing = {k: v for k, v in self._outgoing.items() if v[0] is not session}

    def initialize_result(self, session: ClientSession, params: Message) -> Message:
        """The cached upstream handshake, answered with the version negotiated for this client."""
        assert self.child is not None and self.child.init_result is not None
        result = dict(self.child.init_result)
        upstream_version = result.get("protocolVersion", jsonrpc.LATEST_VERSION)
        session.protocol_version = jsonrpc.negotiate(params.get("protocolVersion"), upstream_version)
        session.capabilities = params.get("capabilities") or {}
        session.client_info = params.get("clientInfo") or {}
        result["protocolVersion"] = session.protocol_version
        return result

    # --- client → upstream ----------------------------------------------------------------------------------

    async def from_client(self, session: ClientSession, message: Message, kind: str) -> None:
        """Forward one client message; failures reach the client as JSON-RPC errors, never as exceptions.

        A message whose params do not have the spec's shape never reaches the child (it is shared)."""
        session.touch()
        try:
            if kind == "request":
                shapes.check_request(message)
            elif kind == "notification":
                shapes.check_notification(message)
        except InvalidParams as exc:
            if kind == "request":
                session.deliver(jsonrpc.error_from(message["id"], exc), message["id"])
            else:
                log.info("client_notification_invalid", server=self.name, session=session.id, reason=exc.message)
            return
        child = self.child
        assert child is not None
        if kind == "request" and self.refusing is not None:
            session.deliver(jsonrpc.error_from(message["id"], errors.ShuttingDown(self.refusing)), message["id"])
            return
        if child.state != "ready":
            try:
                await child.wait_ready(self.request_timeout)
            except UpstreamError as exc:
                if kind == "request":
                    session.deliver(jsonrpc.error_from(message["id"], exc), message["id"])
                return
        if kind == "request":
            self._request(session, message)
        elif kind == "notification":
            self._notification(session, message)
        else:
            self._response(session, message)

    def _request(self, session: ClientSession, message: Message) -> None:
        client_id = message["id"]
        if self.refusing is not None:
            session.deliver(jsonrpc.error_from(client_id, errors.ShuttingDown(self.refusing)), client_id)
            return
        if client_id in session.inflight:
            error = jsonrpc.error_response(
                client_id, errors.INVALID_REQUEST, f"request id {client_id!r} is already in flight"
            )
            session.deliver(error, client_id)
            return
        method = message["method"]
        if method == "resources/unsubscribe" and self._shared_subscription(session, message):
            return
        upstream_id = next(self._ids)
        token = jsonrpc.progress_token(message)
        pending = _Pending(session, client_id, upstream_id, token)
        forwarded = {**message, "id": upstream_id}
        if token is not None:
            forwarded = jsonrpc.with_progress_token(forwarded, upstream_id)
        if tracing.enabled:  # harbor tracing hook: the upstream call's span, its context in params._meta
            forwarded = tracing.forwarding(session, client_id, forwarded, self.name)
        self._pending[upstream_id] = pending
        session.inflight[client_id] = upstream_id
        pending.timer = self._loop.call_later(self.request_timeout, self._expire, upstream_id)
        if method == "resources/subscribe":
            pending.subscribe_uri = self._subscribe(session, (message.get("params") or {}).get("uri"))
        try:
            self.child.send(forwarded)  # type: ignore[union-attr]
        except GatewayError as exc:
            self._fail(pending, exc)

    def _notification(self, session: ClientSession, message: Message) -> None:
        method = message["method"]
        if method == "notifications/initialized":
            return  # the gateway did the upstream handshake itself
        if method == "notifications/cancelled":
            params = message.get("params") or {}
            cancelled = params.get("requestId")
            upstream_id = session.inflight.get(cancelled) if isinstance(cancelled, (int, str)) else None
            pending = self._pending.pop(upstream_id, None) if upstream_id is not None else None
            if pending is None:
                return
            self._finish(pending)
            pending.session.deliver(
                jsonrpc.error_response(pending.client_id, errors.REQUEST_CANCELLED, "Request cancelled by the client"),
                pending.client_id,
            )
            message = {**message, "params": {**params, "requestId": upstream_id}}
        self._send_quietly(message)

    def _response(self, session: ClientSession, message: Message) -> None:
        route = self._outgoing.get(message["id"]) if isinstance(message["id"], int) else None
        if route is None or route[0] is not session:
            log.info("client_response_unmatched", server=self.name, session=session.id, id=message["id"])
            return
        del self._outgoing[message["id"]]
        try:
            shapes.check_response(message)
        except InvalidParams as exc:  # the server still gets an answer, one it can parse
            log.info("client_response_invalid", server=self.name, session=session.id, reason=exc.message)
            message = jsonrpc.error_response(
                message["id"], errors.INTERNAL_ERROR, f"the client answered: {exc.message}"
            )
        self._send_quietly({**message, "id": route[1]})

    # --- upstream → clients -------------------------------------------------------------------------------

    def from_upstream(self, message: Message) -> None:
        if "method" not in message:
            self._reply(message)
        elif "id" in message:
            self._server_request(message)
        else:
            self._server_notification(message)

    def _reply(self, message: Message) -> None:
        if not isinstance(message["id"], int):
            return  # a reply to the gateway's own bookkeeping requests
        pending = self._pending.pop(message["id"], None)
        if pending is None:
            log.info("late_reply_dropped", server=self.name, id=message["id"])
            return
        self._finish(pending)
        if "error" in message and pending.subscribe_uri is not None:
            self._unsubscribe(pending.session, pending.subscribe_uri, notify_upstream=False)
        pending.session.deliver({**message, "id": pending.client_id}, pending.client_id)

    def _server_request(self, message: Message) -> None:
        method = message["method"]
        if method == "ping":
            self._send_quietly({"jsonrpc": "2.0", "id": message["id"], "result": {}})
            return
        try:
            session = self._route_server_request(method)
        except (NoRoute, MissingCapability) as exc:
            self._send_quietly(jsonrpc.error_from(message["id"], exc))
            return
        client_facing = next(self._ids)
        self._outgoing[client_facing] = (session, message["id"])
        related = next(reversed(session.inflight), None)
        session.deliver({**message, "id": client_facing}, related)

    def _route_server_request(self, method: str) -> ClientSession:
        clients = [s for s in self.sessions if s.kind not in _NOT_ASKED]  # never the gateway's own sessions
        # a modern call parked in an input round is blocked on the client: it cannot be the one asking now
        busy = [s for s in clients if s.inflight and not getattr(s, "awaiting_client", False)]
        if len(busy) != 1:
            candidates = busy or clients
            if len(candidates) == 1:
                busy = candidates
            else:
                raise NoRoute(
                    f"cannot tell which of {len(candidates)} clients {method} is for; dock servers that send "
                    "requests to clients with session_mode per-session or per-identity (translate: --session-mode)"
                )
        session = busy[0]
        needed = _CAPABILITY.get(method)
        if needed is not None and needed not in session.capabilities:
            if getattr(session, "modern", False):
                raise MissingCapability(
                    f"the client did not declare the {needed!r} capability needed for {method}",
                    data={"requiredCapabilities": {needed: {}}},
                )
            raise NoRoute(f"the client did not declare the {needed!r} capability needed for {method}")
        return session

    def _server_notification(self, message: Message) -> None:
        method = message["method"]
        params = message.get("params") or {}
        if method.endswith("/list_changed") and self.on_event is not None:
            self.on_event("changed", message)
        if method == "notifications/progress":
            token = params.get("progressToken")
            pending = self._pending.get(token) if isinstance(token, int) else None
            if pending is None or pending.token is None:
                return
            self._restart_timer(pending)
            forwarded = {**message, "params": {**params, "progressToken": pending.token}}
            pending.session.deliver(forwarded, pending.client_id)
        elif method == "notifications/cancelled":
            route = self._outgoing.pop(params.get("requestId"), None)  # type: ignore[arg-type]
            if route is not None:
                session, _ = route
                session.deliver(message)
        elif method == "notifications/subscriptions/acknowledged":
            return  # the answer to the gateway's own listen on a 2026-07-28 child: for nobody else
        elif method == "notifications/resources/updated":
            for session in list(self._subscribers.get(params.get("uri", ""), ())):
                session.deliver(message)
        elif method == "notifications/message":
            # A log line most likely belongs to the one call a client has running: keep it on that stream.
            for session in list(self.sessions):
                related = next(iter(session.inflight), None) if len(session.inflight) == 1 else None
                session.deliver(message, related)
        else:
            for session in list(self.sessions):
                session.deliver(message)

    # --- failures and timeouts ----------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def shut(self, reason: str) -> None:
        """Refuse new requests and fail every call still in flight with `ShuttingDown(reason)`."""
        self.refusing = reason
        failed, self._pending = self._pending, {}
        for pending in failed.values():
            self._fail(pending, errors.ShuttingDown(reason), pop=False)

    def upstream_down(self, reason: str) -> None:
        """Fail every call in flight at once; the Child restarts the upstream."""
        failed, self._pending = self._pending, {}
        self._outgoing.clear()
        error = errors.UpstreamExited(f"the {self.name} server stopped while handling this request: {reason}")
        for pending in failed.values():
            self._fail(pending, error, pop=False)
        if self.on_event is not None:
            self.on_event("down", None)

    def upstream_ready(self, first: bool) -> None:
        if self.on_event is not None:
            self.on_event("ready", None)
        if first:
            return
        if self._modern_child:  # a new process knows nothing of earlier subscriptions
            if self._subscribers:
                self._listen_id = None
                self._upstream_subscriptions_changed("", subscribe=True)
            return
        for uri in self._subscribers:
            self._send_quietly(_internal(next(self._ids), "resources/subscribe", uri))

    def frame_too_large(self, upstream_id: RequestId | None, size: int) -> None:
        pending = self._pending.get(upstream_id) if isinstance(upstream_id, int) else None
        log.warning("upstream_frame_too_large", server=self.name, size=size, id=upstream_id, owner=pending is not None)
        if pending is not None:
            self._fail(
                pending,
                errors.MessageTooLarge(
                    f"the server's reply is {size} bytes, over the gateway's limit of {self.max_message_bytes} bytes"
                    " (raise --max-message-bytes, or ask for less)"
                ),
            )

    def frame_invalid(self, upstream_id: RequestId | None, reason: str) -> None:
        """A reply the upstream wrote but the gateway cannot use: its caller gets an error now, not a timeout."""
        pending = self._pending.get(upstream_id) if isinstance(upstream_id, int) else None
        if pending is not None:
            self._fail(pending, UpstreamError(f"the {self.name} server's reply is not valid JSON-RPC: {reason}"))

    def _expire(self, upstream_id: int) -> None:
        pending = self._pending.get(upstream_id)
        if pending is None:
            return
        pending.timer = None
        self._send_quietly(_cancelled(upstream_id, f"timed out after {self.request_timeout:g} s"))
        self._fail(
            pending,
            errors.RequestTimeout(
                f"no reply from the {self.name} server within {self.request_timeout:g} s (nor any progress);"
                " the call was cancelled"
            ),
        )

    def _fail(self, pending: _Pending, exc: GatewayError, *, pop: bool = True) -> None:
        if pop:
            self._pending.pop(pending.upstream_id, None)
        self._finish(pending)
        pending.session.deliver(jsonrpc.error_from(pending.client_id, exc), pending.client_id)

    def _finish(self, pending: _Pending) -> None:
        self._stop_timer(pending)
        inflight = pending.session.inflight
        if inflight.get(pending.client_id) == pending.upstream_id:
            del inflight[pending.client_id]

    def _restart_timer(self, pending: _Pending) -> None:
        self._stop_timer(pending)
        pending.timer = self._loop.call_later(self.request_timeout, self._expire, pending.upstream_id)

    @staticmethod
    def _stop_timer(pending: _Pending) -> None:
        if pending.timer is not None:
            pending.timer.cancel()
            pending.timer = None

    def _send_quietly(self, message: Message) -> None:
        try:
            self.child.send(message)  # type: ignore[union-attr]
        except GatewayError as exc:
            log.info("upstream_send_dropped", server=self.name, method=message.get("method"), reason=exc.message)

    # --- resource subscriptions (one upstream subscription per URI, however many clients) ------------------

    def subscribe_for(self, session: ClientSession, uri: str) -> None:
        """Subscribe `session` to a URI on the gateway's behalf (a modern listen stream): the upstream is asked
        on the first subscriber only, and let go when the last one detaches."""
        first = uri not in self._subscribers
        self._subscribe(session, uri)
        if first:
            self._upstream_subscriptions_changed(uri, subscribe=True)

    def unsubscribe_for(self, session: ClientSession, uri: str) -> None:
        """Undo `subscribe_for`: the upstream is let go when no subscriber is left."""
        self._unsubscribe(session, uri, notify_upstream=True)

    def _subscribe(self, session: ClientSession, uri: Any) -> str | None:
        if not isinstance(uri, str):
            return None
        self._subscribers.setdefault(uri, set()).add(session)
        session.subscriptions.add(uri)
        return uri

    def _shared_subscription(self, session: ClientSession, message: Message) -> bool:
        """Answer an unsubscribe locally while other sessions still want the URI."""
        uri = (message.get("params") or {}).get("uri")
        others = self._subscribers.get(uri, set()) - {session} if isinstance(uri, str) else set()
        if not others:
            self._unsubscribe(session, uri, notify_upstream=False)
            return False
        self._unsubscribe(session, uri, notify_upstream=False)
        session.deliver({"jsonrpc": "2.0", "id": message["id"], "result": {}}, message["id"])
        return True

    def _unsubscribe(self, session: ClientSession, uri: Any, *, notify_upstream: bool) -> None:
        session.subscriptions.discard(uri)
        subscribers = self._subscribers.get(uri)
        if subscribers is None:
            return
        subscribers.discard(session)
        if not subscribers:
            del self._subscribers[uri]
            if notify_upstream:
                self._upstream_subscriptions_changed(uri, subscribe=False)

    @property
    def _modern_child(self) -> bool:
        return self.child is not None and getattr(self.child, "era", None) == "modern"

    def _upstream_subscriptions_changed(self, uri: str, *, subscribe: bool) -> None:
        """Tell the child which URIs the gateway follows: `resources/(un)subscribe` for a handshake-era child; a
        2026-07-28 child has no such methods, so the gateway's own `subscriptions/listen` carries every URI
        followed here (and list changes), re-opened whenever the set changes."""
        if not self._modern_child:
            method = "resources/subscribe" if subscribe else "resources/unsubscribe"
            self._send_quietly(_internal(next(self._ids), method, uri))
            return
        if self._listen_id is not None:
            self._send_quietly(
                jsonrpc.notification("notifications/cancelled", {"requestId": self._listen_id, "reason": "replaced"})
            )
            self._listen_id = None
        if not self._subscribers:
            return
        self._listen_id = f"harbor-{next(self._ids)}"
        wanted = {"toolsListChanged": True, "promptsListChanged": True, "resourcesListChanged": True}
        wanted["resourceSubscriptions"] = sorted(self._subscribers)  # type: ignore[assignment]
        init = getattr(self.child, "init_params", None) or {}
        params = era.with_envelope({"notifications": wanted}, {}, init.get("clientInfo"), None)
        listen = {"jsonrpc": "2.0", "id": self._listen_id, "method": "subscriptions/listen", "params": params}
        self._send_quietly(listen)


def _cancelled(upstream_id: int, reason: str) -> Message:
    return jsonrpc.notification("notifications/cancelled", {"requestId": upstream_id, "reason": reason})


def _internal(n: int, method: str, uri: str) -> Message:
    """A request the gateway makes on its own behalf; its string id keeps the reply out of client routing."""
    return {"jsonrpc": "2.0", "id": f"harbor-{n}", "method": method, "params": {"uri": uri}}
