"""The merged view: many docked servers behind one MCP session, under policy.

A client of the merged endpoint has one `MergedSession`; inside it, one sub-session per docked server,
attached to that server's shared `Router` — so ids, progress tokens, cancellation and server→client
requests flow exactly as in translate, with no second implementation. The aggregator answers the lists
itself from each server's cache (names made client-valid and unique: `<server>__<tool>`, resource URIs
`harbor://<server>/<uri>`), and routes calls by name to the owning server under the original name.

Policy is applied here, per call: a tool hidden from an identity is absent from its `tools/list` and a
call to it fails exactly like an unknown tool; rate-limited calls get an error whose data carries
`retry_after`; every call is audited and measured when its reply (or failure) goes back. A failed or
restarting server never fails `initialize` or the lists for the others: its entries vanish (with
`list_changed`) and come back when it does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from gateway import __version__
from gateway.core import errors, jsonrpc, shapes
from gateway.core.errors import GatewayError, InvalidParams
from gateway.core.jsonrpc import Message, RequestId
from gateway.core.naming import NameMap, parse_uri, public_template, public_uri
from gateway.hub.docked import LISTS, DockedServer
from gateway.policy.auth import Identity
from gateway.session.client import ClientSession

log = structlog.get_logger("gateway.hub.aggregate")

PAGE_SIZE = 500  # default items per page of a merged list (`gateway.page_size`)
RATE_LIMITED = -32029
CAPABILITIES: Message = {
    "tools": {"listChanged": True},
    "prompts": {"listChanged": True},
    "resources": {"subscribe": True, "listChanged": True},
    "logging": {},
    "completions": {},
}


@dataclass
class Hooks:
    """Policy and observation, as plain callables so the aggregator stays testable without config."""

    allows: Callable[[Identity, str, str], bool] = lambda identity, server, tool: True
    allows_server: Callable[[Identity, str], bool] = lambda identity, server: True
    rate_check: Callable[[str, str], float | None] = lambda identity, tool: None
    on_call_done: Callable[[dict[str, Any]], None] = lambda record: None
    on_refused: Callable[[str, str], None] = lambda identity, reason: None  # a request the transport refused


@dataclass
class _Call:
    server: str
    tool: str
    method: str
    arguments: Any
    started: float = field(default_factory=time.perf_counter)
    outcome_hint: str | None = None  # why a refused call was refused, when the client is told something else
    child: str | None = None  # which child served it ("shared", "identity alice", "session 1a2b3c4d") and its pid


class _SubSession(ClientSession):
    """A merged session's presence on one server's router; hands everything back to the merged session."""

    def __init__(self, parent: MergedSession, server: DockedServer) -> None:
        super().__init__("sub")
        self.parent = parent
        self.server = server
        self.protocol_version = parent.protocol_version
        self.capabilities = parent.capabilities
        self.streams = parent.streams  # replies land on the client's own streams, keyed by its own ids
        self.own_router = False  # True when this session has a child of its own on a per-session server
        self.child_label = "shared"  # which child serves it, for the audit and the status page

    async def release(self) -> None:
        router = self.router
        if router is None:
            return
        router.detach(self)
        if self.own_router and self.server.per_session is not None:
            await self.server.per_session.close(router)
        elif self.server.per_identity is not None:
            self.server.per_identity.release(self.parent.identity.name)

    def deliver(self, message: Message, related: RequestId | None = None) -> None:
        self.parent.aggregator.from_sub(self, message, related)


class MergedSession(ClientSession):
    def __init__(self, kind: str, aggregator: Aggregator, identity: Identity) -> None:
        super().__init__(kind)
        self.aggregator = aggregator
        self.router = aggregator  # the transports call session.router.from_client(...)
        self.identity = identity
        self.subs: dict[str, _SubSession] = {}
        self.calls: dict[RequestId, _Call] = {}
        self.outgoing: dict[int, tuple[_SubSession, RequestId]] = {}
        self.headers: dict[str, str] = {}  # the opening request's headers, for servers' `header_to_env`
        self.home: str | None = None  # with replicas: the replica that initialized it (None: this one)

    @property
    def initialized(self) -> bool:
        return self.protocol_version is not None

    def idle_for(self, now: float) -> float:
        if self.calls:
            return 0.0
        return super().idle_for(now)

    def sub(self, server: DockedServer) -> _SubSession:
        """This session's presence on `server`: on its shared router, or on a child of its own (per-session).

        Raises:
            CapacityExceeded: a per-session server already runs its `max_sessions` children.
        """
        sub = self.subs.get(server.slug)
        if sub is None or sub.server is not server:
            sub = _SubSession(self, server)
            router = server.router
            mapping = getattr(server.settings, "header_to_env", None) or {}
            env = {var: self.headers[h.lower()] for h, var in mapping.items() if h.lower() in self.headers}
            if server.per_session is not None:
                init = {"protocolVersion": self.protocol_version, "capabilities": self.capabilities}
                router = server.per_session.open({**init, "clientInfo": self.client_info}, env)
                sub.own_router, sub.child_label = True, f"session {self.id[:8]}"
            elif server.per_identity is not None:
                router = server.per_identity.open(self.identity.name, env)
                sub.child_label = f"identity {self.identity.name}"
            router.attach(sub)
            self.subs[server.slug] = sub
        return sub

    async def close(self) -> None:
        self.closed = True
        subs, self.subs = list(self.subs.values()), {}
        for sub in subs:
            await sub.release()


class Aggregator:
    """Serves `MergedSession`s over a set of docked servers (`merged=False`: one server, names unchanged)."""

    def __init__(self, servers: dict[str, DockedServer], hooks: Hooks | None = None, *, merged: bool = True) -> None:
        self.servers = servers
        self.hooks = hooks or Hooks()
        self.merged = merged
        self.page_size = PAGE_SIZE
        self.sessions: dict[str, MergedSession] = {}
        self.tool_names = NameMap()
        self.prompt_names = NameMap()
        self._synced: dict[tuple[str, str], tuple[list[Message], frozenset[str]]] = {}  # names per fetched list
        self._warming: set[asyncio.Task[None]] = set()
        self.listens: set[Any] = set()  # modern `subscriptions/listen` streams (`gateway.session.listen.Listen`)
        self._ids = itertools.count(1)  # server→client request ids (with replicas: carrying this one's ordinal)
        self.peers: Any = None  # with replicas: `gateway.hub.peers.Peers`, what this view asks of the others
        for server in servers.values():
            server.listeners.append(self._server_event)
        self._index()

    def add_server(self, server: DockedServer) -> None:
        self.servers[server.slug] = server
        server.listeners.append(self._server_event)
        self._index()
        self._announce_all()

    def remove_server(self, slug: str) -> None:
        server = self.servers.pop(slug, None)
        if server is None:
            return
        if self._server_event in server.listeners:
            server.listeners.remove(self._server_event)
        self._index()
        self.tool_names.remove_server(server.prefix)
        self.prompt_names.remove_server(server.prefix)
        self._synced = {k: v for k, v in self._synced.items() if k[0] != slug}
        for session in self.sessions.values():
            sub = session.subs.pop(slug, None)
            if sub is not None:
                asyncio.get_running_loop().create_task(sub.release())
        self._announce_all()

    def _announce_all(self) -> None:
        for method in dict.fromkeys(note for _, note, _ in LISTS.values()):
            for session in list(self.sessions.values()):
                session.deliver(jsonrpc.notification(method, {}))
            for listen in list(self.listens) if self.merged else ():
                listen.deliver(jsonrpc.notification(method, {}))

    def _index(self) -> None:
        """What every call looks up, kept per server set rather than scanned per call (a gateway may dock many)."""
        self._prefixes = {s.prefix: s for s in self.servers.values()}
        self.request_timeout = max((s.router.request_timeout for s in self.servers.values()), default=300.0)

    # --- lifecycle of merged sessions ------------------------------------------------------------------

    def initialize(self, session: MergedSession, request: Message) -> Message:
        params = request.get("params") or {}
        session.protocol_version = jsonrpc.negotiate(params.get("protocolVersion"), jsonrpc.LATEST_VERSION)
        session.capabilities = params.get("capabilities") or {}
        session.client_info = params.get("clientInfo") or {}
        session.touch()
        result: Message = {
            "protocolVersion": session.protocol_version,
            "capabilities": CAPABILITIES,
            "serverInfo": {"name": "harbor", "title": "Harbor gateway", "version": __version__},
        }
        if not self.merged:
            only = next(iter(self.servers.values()))
            info = (only.router.child.init_result or {}) if only.router.child else {}
            result["serverInfo"] = info.get("serverInfo") or result["serverInfo"]
            if only.state == "ready":
                result["capabilities"] = only.capabilities or CAPABILITIES
        self.sessions[session.id] = session
        return {"jsonrpc": "2.0", "id": request["id"], "result": result}

    async def close(self, session: MergedSession) -> None:
        self.sessions.pop(session.id, None)
        await session.close()

    # --- client → servers --------------------------------------------------------------------------------

    async def from_client(self, session: ClientSession, message: Message, kind: str) -> None:
        assert isinstance(session, MergedSession)
        session.touch()
        try:
            if kind == "request":
                await self._request(session, message)
            elif kind == "notification":
                await self._notify(session, message)
            else:
                await self._response(session, message)
        except GatewayError as exc:
            if kind == "request":
                session.deliver(jsonrpc.error_from(message["id"], exc), message["id"])

    async def _request(self, session: MergedSession, message: Message) -> None:
        method = message["method"]
        request_id = message["id"]
        if method == "tools/call":
            await self._tool_call(session, message)
            return
        if request_id in session.calls:
            raise _Duplicate(request_id)
        shapes.check_request(message)
        params = message.get("params") or {}
        if method == "ping":
            session.deliver({"jsonrpc": "2.0", "id": request_id, "result": {}}, request_id)
        elif method in LISTS:
            result = await self._list(session, method, params.get("cursor"))
            session.deliver({"jsonrpc": "2.0", "id": request_id, "result": result}, request_id)
        elif method == "prompts/get":
            await self._named_call(session, message)
        elif method in ("resources/read", "resources/subscribe", "resources/unsubscribe"):
            await self._resource_call(session, message)
        elif method == "completion/complete":
            await self._complete(session, message)
        elif method == "logging/setLevel":
            for server in self._visible(session.identity):  # shared children: the level is everyone's
                if server.state == "ready" and "logging" in server.capabilities:
                    with contextlib.suppress(GatewayError):
                        await server.request("logging/setLevel", params, timeout=5.0)
            session.deliver({"jsonrpc": "2.0", "id": request_id, "result": {}}, request_id)
        elif not self.merged:  # one server alone: whatever else it speaks goes to it as it is
            await self._forward(session, next(iter(self.servers.values())), message)
        else:
            raise _MethodNotFound(method)

    async def _tool_call(self, session: MergedSession, message: Message) -> None:
        """A `tools/call`: every one is audited, also those refused before reaching a server (`outcome` says why:
        invalid, unknown_tool, denied, rate_limited); a hidden tool is answered exactly like an unknown one."""
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        public = params.get("name")
        arguments = params.get("arguments")
        call = _Call("", str(public), "tools/call", arguments)
        try:
            if message["id"] in session.calls:
                raise _Duplicate(message["id"])
            target = await self._target(public, tools=True) if isinstance(public, str) else None
            if target is not None:
                call.server, call.tool = target[0].slug, target[1]
            shapes.check_request(message)
            if target is None:
                raise _Unknown("tool", public)
            if not self._allowed(session.identity, target[0], target[1], True):
                call.outcome_hint = "denied"
                raise _Unknown("tool", public)
            retry_after = self.hooks.rate_check(session.identity.name, str(public))
            if retry_after is not None and not isinstance(retry_after, (int, float)):  # Redis buckets: awaited
                retry_after = await retry_after
            if retry_after is not None:
                call.outcome_hint = "rate_limited"
                raise _RateLimited(retry_after)
        except GatewayError as exc:
            outcome = call.outcome_hint or ("unknown_tool" if isinstance(exc, _Unknown) else "invalid")
            self._done(session, call, outcome, None, exc.message)
            raise
        server, original = target
        session.calls[message["id"]] = call
        try:
            await self._forward(session, server, {**message, "params": {**params, "name": original}})
        except GatewayError as exc:
            self._done(session, call, f"error:{exc.code}", None, exc.message)
            raise

    async def _target(self, public: Any, tools: bool) -> tuple[DockedServer, str] | None:
        target = self._resolve(public, tools)
        if target is None and self.merged:  # a name from an earlier session: learn the current names first
            await self._learn_names("tools/list" if tools else "prompts/list")
            target = self._resolve(public, tools)
        return target

    async def _named_call(self, session: MergedSession, message: Message) -> None:
        params = dict(message.get("params") or {})
        public = params.get("name")
        target = await self._target(public, tools=False)
        if target is None or not self._allowed(session.identity, target[0], target[1], False):
            raise _Unknown("prompt", public)
        server, original = target
        session.calls[message["id"]] = _Call(server.slug, original, message["method"], params.get("arguments"))
        params["name"] = original
        await self._forward(session, server, {**message, "params": params})

    async def _resource_call(self, session: MergedSession, message: Message) -> None:
        params = dict(message.get("params") or {})
        uri = params.get("uri")
        target = self._resolve_uri(uri)
        if target is None or not self.hooks.allows_server(session.identity, target[0].slug):
            raise _ResourceNotFound(uri)
        server, original = target
        params["uri"] = original
        session.calls[message["id"]] = _Call(server.slug, original, message["method"], None)
        await self._forward(session, server, {**message, "params": params})
        shared = not (server.per_session or server.per_identity)  # else its one child (on one replica) has it
        if self.peers is not None and shared and message["method"] != "resources/read":
            await self.peers.subscription(session, str(uri), message["method"] == "resources/subscribe")

    def apply_subscription(self, session: MergedSession, uri: str, on: bool) -> None:
        """Another replica (un)subscribed this session to a shared server's resource: do the same with the child
        here, whose `resources/updated` this replica's copy of the session must pass on."""
        target = self._resolve_uri(uri)
        if target is None or target[0].per_session or target[0].per_identity:
            return
        server, original = target
        try:
            sub = session.sub(server)
        except GatewayError:
            return
        if on:
            sub.router.subscribe_for(sub, original)
        else:
            sub.router.unsubscribe_for(sub, original)

    async def _complete(self, session: MergedSession, message: Message) -> None:
        params = dict(message.get("params") or {})
        ref = dict(params.get("ref") or {})
        if ref.get("type") == "ref/prompt":
            target = self._resolve(ref.get("name"), tools=False)
            key = "name"
        else:
            target = self._resolve_uri(ref.get("uri"))
            key = "uri"
        if target is None:
            session.deliver(
                {"jsonrpc": "2.0", "id": message["id"], "result": {"completion": {"values": []}}}, message["id"]
            )
            return
        server, original = target
        ref[key] = original
        session.calls[message["id"]] = _Call(server.slug, original, "completion/complete", None)
        await self._forward(session, server, {**message, "params": {**params, "ref": ref}})

    async def _forward(
        self, session: MergedSession, server: DockedServer, message: Message, *, here: bool = False
    ) -> None:
        if self.peers is not None and not here and (server.per_session or server.per_identity):
            try:
                address = await self.peers.placement(session, server)
            except GatewayError:
                session.calls.pop(message["id"], None)
                raise
            if address is not None:  # its child lives on another replica: the call runs there
                await self.peers.call(address, session, server, message, session.calls.get(message["id"]))
                return
        try:
            sub = session.sub(server)
        except GatewayError:
            session.calls.pop(message["id"], None)
            raise
        call = session.calls.get(message["id"])
        if call is not None:
            child = sub.router.child
            pid = child.pid if child is not None else None
            call.child = f"{sub.child_label} (pid {pid})" if pid else sub.child_label
        await sub.router.from_client(sub, message, "request")

    async def serve_for_peer(self, session: MergedSession, slug: str, message: Message, call: Message | None) -> None:
        """Run a call another replica forwarded (its child lives here), past the policy that replica applied;
        audited here, where it runs. Raises: GatewayError (the server is not docked here, or cannot take it)."""
        server = self.servers.get(slug)
        if server is None:
            raise errors.UpstreamError(f"server {slug!r} is not docked on this replica (a reload in progress?)")
        if call is not None:
            session.calls[message["id"]] = _Call(call["server"], call["tool"], call["method"], call["arguments"])
        await self._forward(session, server, message, here=True)

    async def _notify(self, session: MergedSession, message: Message) -> None:
        try:
            shapes.check_notification(message)
        except InvalidParams as exc:
            log.info("client_notification_invalid", session=session.id, reason=exc.message)
            return
        await self._notification(session, message)

    async def _notification(self, session: MergedSession, message: Message, *, from_peer: bool = False) -> None:
        method = message["method"]
        if method == "notifications/initialized":
            return
        if self.peers is not None and not from_peer:
            await self.peers.notify(session, message)  # the call it names may run on another replica
        if method == "notifications/cancelled":
            request_id = (message.get("params") or {}).get("requestId")
            if self.peers is not None and self.peers.cancel(session, request_id):
                return  # a call forwarded from here: closing its stream cancels it where it runs
            call = session.calls.get(request_id) if isinstance(request_id, (int, str)) else None
            server = self.servers.get(call.server) if call else None
            sub = session.subs.get(server.slug) if server is not None else None
            if sub is not None:
                await sub.router.from_client(sub, message, "notification")
            return
        for sub in list(session.subs.values()):  # roots/list_changed and the like: every server this client uses
            await sub.router.from_client(sub, message, "notification")

    async def _response(self, session: MergedSession, message: Message) -> None:
        route = session.outgoing.pop(message["id"], None) if isinstance(message["id"], int) else None
        if route is None:
            if self.peers is not None:
                await self.peers.answer(session, message)  # another replica asked: it gets the answer
            return
        sub, original = route
        await sub.router.from_client(sub, {**message, "id": original}, "response")

    # --- servers → client ---------------------------------------------------------------------------------

    def from_sub(self, sub: _SubSession, message: Message, related: RequestId | None) -> None:
        session = sub.parent
        if "method" in message:
            method = message["method"]
            if method.endswith("/list_changed"):
                return  # the aggregator announces its own merged list changes
            if "id" in message:  # a server→client request: give it an id unique across servers
                client_facing = next(self._ids)
                session.outgoing[client_facing] = (sub, message["id"])
                message = {**message, "id": client_facing}
            elif method == "notifications/resources/updated":
                params = message.get("params") or {}
                message = {**message, "params": {**params, "uri": self._uri_out(sub.server, params.get("uri", ""))}}
            session.deliver(message, related)
            return
        call = session.calls.pop(message["id"], None)
        if call is None:
            session.deliver(message, related)
            return
        message = self._result_out(sub.server, call, message)
        session.deliver(message, related)  # the reply first; the accounting after it, off the caller's latency
        if call.method == "tools/call":
            self._done(session, call, _outcome(message), message)

    def _result_out(self, server: DockedServer, call: _Call, message: Message) -> Message:
        result = message.get("result")
        if call.method == "resources/read" and isinstance(result, dict):
            contents = [
                {**c, "uri": self._uri_out(server, c.get("uri", ""))} if isinstance(c, dict) else c
                for c in result.get("contents") or []
            ]
            return {**message, "result": {**result, "contents": contents}}
        return message

    def _done(
        self, session: MergedSession, call: _Call, outcome: str, response: Message | None, reason: str | None = None
    ) -> None:
        """Report a finished (or refused: `reason` says why, `response` is None) tools/call to the hooks."""
        self.hooks.on_call_done(
            {
                "identity": session.identity.name,
                "session": session.id,
                "server": call.server,
                "tool": call.tool,
                "arguments": call.arguments,
                "duration_ms": (time.perf_counter() - call.started) * 1000,
                "outcome": outcome,
                "child": call.child,
                "reason": reason,
                "response": response,  # measured only by whoever needs its size (the audit)
            }
        )

    # --- lists ------------------------------------------------------------------------------------------

    async def _list(self, session: MergedSession, method: str, cursor: Any) -> Message:
        key = LISTS[method][0]
        items: list[Message] = []
        for server in self._visible(session.identity):
            try:
                upstream = await server.items(method)
            except GatewayError as exc:
                log.warning("list_failed", server=server.slug, method=method, reason=exc.message)
                continue
            left_out = self._sync_names(server, method, upstream)
            for item in upstream:
                if left_out and item.get("name") in left_out:
                    continue
                out = self._item_out(session.identity, server, method, item)
                if out is not None:
                    items.append(out)
        start = _decode_cursor(cursor)
        end = start + self.page_size
        result: Message = {key: items[start:end]}
        if end < len(items):
            result["nextCursor"] = _encode_cursor(end)
        return result

    def _item_out(self, identity: Identity, server: DockedServer, method: str, item: Message) -> Message | None:
        if method == "tools/list":
            if not self.hooks.allows(identity, server.slug, item.get("name", "")):
                return None
            return {**item, "name": self._public(self.tool_names, server, item["name"])}
        if method == "prompts/list":
            return {**item, "name": self._public(self.prompt_names, server, item["name"])}
        if method == "resources/list":
            return {**item, "uri": self._uri_out(server, item.get("uri", ""))}
        template = item.get("uriTemplate", "")
        return {**item, "uriTemplate": public_template(server.prefix, template) if self.merged else template}

    async def _learn_names(self, method: str) -> None:
        for server in list(self.servers.values()):
            try:
                items = await server.items(method)
            except GatewayError:
                continue
            self._sync_names(server, method, items)

    def _sync_names(self, server: DockedServer, method: str, items: list[Message]) -> frozenset[str]:
        """Register a freshly fetched list's names (once per fetch); return the originals left out as clashes.

        Only a list the server really returned counts (not the empty answer of a server that is restarting),
        so a call during a restart is told the server is unavailable, not that the tool is unknown."""
        if not self.merged or method not in ("tools/list", "prompts/list") or items is not server.cached(method):
            return frozenset()
        key = (server.slug, method)
        synced = self._synced.get(key)
        if synced is not None and synced[0] is items:
            return synced[1]
        names = self.tool_names if method == "tools/list" else self.prompt_names
        clashes = names.sync(server.prefix, [i["name"] for i in items if isinstance(i.get("name"), str)])
        left_out = frozenset(name for group in clashes.values() for name in group)
        self._synced[key] = (items, left_out)
        server.report_clashes("tools" if method == "tools/list" else "prompts", clashes)
        return left_out

    async def warm(self, server: DockedServer) -> None:
        """Fetch a (re)started server's tools and prompts now, so counts and name clashes are known before any
        client lists them."""
        for method in ("tools/list", "prompts/list"):
            try:
                self._sync_names(server, method, await server.items(method))
            except GatewayError as exc:
                log.info("warm_failed", server=server.slug, method=method, reason=exc.message)

    def _visible(self, identity: Identity) -> Iterable[DockedServer]:
        return [s for s in self.servers.values() if self.hooks.allows_server(identity, s.slug)]

    def _allowed(self, identity: Identity, server: DockedServer, name: str, tool: bool) -> bool:
        if not self.hooks.allows_server(identity, server.slug):
            return False
        return self.hooks.allows(identity, server.slug, name) if tool else True

    # --- names ------------------------------------------------------------------------------------------

    def _public(self, names: NameMap, server: DockedServer, name: str) -> str:
        return names.add(server.prefix, name) if self.merged else name

    def _resolve(self, public: Any, tools: bool) -> tuple[DockedServer, str] | None:
        if not isinstance(public, str):
            return None
        if not self.merged:
            return next(iter(self.servers.values())), public
        found = (self.tool_names if tools else self.prompt_names).resolve(public)
        if found is None:
            return None
        server = self._by_prefix(found[0])
        return (server, found[1]) if server is not None else None

    def _resolve_uri(self, uri: Any) -> tuple[DockedServer, str] | None:
        if not isinstance(uri, str):
            return None
        if not self.merged:
            return next(iter(self.servers.values())), uri
        found = parse_uri(uri)
        if found is None:
            return None
        server = self._by_prefix(found[0])
        return (server, found[1]) if server is not None else None

    def _uri_out(self, server: DockedServer, uri: str) -> str:
        return public_uri(server.prefix, uri) if self.merged else uri

    def _by_prefix(self, prefix: str) -> DockedServer | None:
        return self._prefixes.get(prefix)

    # --- change announcements -----------------------------------------------------------------------------

    def _server_event(self, server: DockedServer, what: str) -> None:
        if self.merged and (what == "ready" or what.endswith("/list_changed")):
            task = asyncio.get_running_loop().create_task(self.warm(server))
            self._warming.add(task)
            task.add_done_callback(self._warming.discard)
        if not self.merged and what in ("ready", "down"):
            return  # one server alone: its own notifications are forwarded as they are
        if what in ("ready", "down"):
            self._announce_all()
            return
        for session in list(self.sessions.values()):
            session.deliver(jsonrpc.notification(what, {}))
        for listen in list(self.listens) if self.merged else ():
            listen.deliver(jsonrpc.notification(what, {}))


class _MethodNotFound(GatewayError):
    code = errors.METHOD_NOT_FOUND

    def __init__(self, method: str) -> None:
        super().__init__(f"Method not found: {method}")


class _Duplicate(GatewayError):
    code = errors.INVALID_REQUEST

    def __init__(self, request_id: RequestId) -> None:
        super().__init__(f"request id {request_id!r} is already in flight; use a new id")


class _Unknown(GatewayError):
    code = errors.INVALID_PARAMS

    def __init__(self, kind: str, name: Any) -> None:
        super().__init__(f"Unknown {kind}: {name}")


class _ResourceNotFound(GatewayError):
    code = errors.INVALID_PARAMS

    def __init__(self, uri: Any) -> None:
        super().__init__("Resource not found", data={"uri": uri})


class _RateLimited(GatewayError):
    code = RATE_LIMITED

    def __init__(self, retry_after: float) -> None:
        wait = max(1, math.ceil(retry_after * 1000)) / 1000  # rounded up: a retry after `wait` finds the token
        super().__init__(f"Rate limit exceeded; retry in {wait:.3f} s", data={"retry_after": wait})


def _outcome(message: Message) -> str:
    if "error" in message:
        return f"error:{message['error'].get('code')}"
    result = message.get("result") or {}
    return "tool_error" if isinstance(result, dict) and result.get("isError") else "ok"


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"o": offset})).decode()


def _decode_cursor(cursor: Any) -> int:
    """Raises: ProtocolError-coded error for a cursor the gateway did not issue."""
    if not cursor:
        return 0
    try:
        offset = orjson.loads(base64.urlsafe_b64decode(str(cursor)))["o"]
        if isinstance(offset, int) and offset >= 0:
            return offset
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        pass
    raise _InvalidCursor()


class _InvalidCursor(GatewayError):
    code = errors.INVALID_PARAMS

    def __init__(self) -> None:
        super().__init__("Invalid cursor: pass a nextCursor from a previous list result")
