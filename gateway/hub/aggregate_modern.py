"""The merged (and one-server) view for 2026-07-28 requests: the same names, policy and audit as the handshake era.

`ModernView` answers what the aggregator knows itself — `server/discover` (the union of capabilities the
merged view serves; for one server alone, that server's), the lists (built exactly as for a handshake session,
per identity, stamped `ttlMs: 0`/`cacheScope: private`), `subscriptions/listen` — and routes the rest by public
name or URI to the owning server's `ModernServer` under the original name, translating URIs back on the reply.
Every `tools/call` is audited as in the handshake era; an input round is audited as `input_required`. Removed
handshake-era methods and unknown ones are -32601 (HTTP 404). Nothing here knows about HTTP.
"""

from __future__ import annotations

from typing import Any

from gateway import __version__
from gateway.core import era, shapes
from gateway.core.errors import GatewayError, HeaderMismatch, MethodNotFound
from gateway.core.jsonrpc import Message
from gateway.hub.aggregate import CAPABILITIES, Aggregator, _Call, _outcome, _RateLimited, _ResourceNotFound, _Unknown
from gateway.hub.docked import LISTS, DockedServer
from gateway.policy.auth import ANONYMOUS, Identity
from gateway.session import stateless
from gateway.session.client import ClientSession, Outbox
from gateway.session.listen import Listen, honoured


class _Viewer:
    """What the list and audit code needs of a caller: who it is, and a session id for the audit line."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.id = "modern"


class _ListenSub(ClientSession):
    """A listen stream's presence on one server's router: its resource updates, URIs made public."""

    def __init__(self, listen: Listen, view: Aggregator, server: DockedServer) -> None:
        super().__init__("listen")
        self.listen, self.view, self.server = listen, view, server

    def deliver(self, message: Message, related: Any = None) -> None:
        if message.get("method") == "notifications/resources/updated":
            params = message.get("params") or {}
            uri = self.view._uri_out(self.server, params.get("uri", ""))
            self.listen.deliver({**message, "params": {**params, "uri": uri}})
        elif not self.view.merged:
            self.listen.deliver(message)  # one server alone: its own list changes, as they are


class ModernView:
    def __init__(self, aggregator: Aggregator) -> None:
        self.view = aggregator

    async def serve(
        self, identity: Any, envelope: era.Envelope, request: Message, outbox: Outbox, raw_headers: Any
    ) -> Any:
        """Answer or route one modern request. Raises: GatewayError for refusals (the transport says why)."""
        who = identity if isinstance(identity, Identity) else ANONYMOUS
        method, request_id = request["method"], request["id"]
        params = request.get("params") or {}
        if method in era.REMOVED_METHODS:
            raise MethodNotFound(method, " (not part of protocol 2026-07-28)")
        shapes.check_request(request)  # the envelope's keys are not of the shapes it checks: no copy without them
        if method == "server/discover":
            return stateless.answer(outbox, request_id, self._discover(), cacheable=True)
        if method in LISTS:
            result = await self.view._list(_Viewer(who), method, params.get("cursor"))  # type: ignore[arg-type]
            return stateless.answer(outbox, request_id, result, cacheable=True)
        if method == "subscriptions/listen":
            return await self._listen(who, request, outbox)
        if method == "tools/call":
            return await self._tool(who, envelope, request, outbox, raw_headers)
        if method == "prompts/get":
            target = await self.view._target(params.get("name"), tools=False)
            if target is None or not self.view._allowed(who, target[0], target[1], False):
                raise _Unknown("prompt", params.get("name"))
            return await self._route(who, envelope, request, outbox, target[0], {**params, "name": target[1]})
        if method == "resources/read":
            found = self.view._resolve_uri(params.get("uri"))
            if found is None or not self.view.hooks.allows_server(who, found[0].slug):
                raise _ResourceNotFound(params.get("uri"))
            server, original = found
            read = _Call(server.slug, original, method, None)
            relay = stateless.Relay(outbox, lambda m: self.view._result_out(server, read, m))
            return await self._route(who, envelope, request, relay, server, {**params, "uri": original})
        if method == "completion/complete":
            return await self._complete(who, envelope, request, outbox)
        if not self.view.merged:  # one server alone: whatever else it speaks goes to it as it is
            return await self._route(who, envelope, request, outbox, self._only(), params)
        raise MethodNotFound(method)

    def _only(self) -> DockedServer:
        return next(iter(self.view.servers.values()))

    def _discover(self) -> Message:
        if not self.view.merged:
            only = self._only()
            init = only.router.child.init_result if only.router.child else None
            return stateless.discover(init, only.slug)
        info = {"name": "harbor", "title": "Harbor gateway", "version": __version__}
        return stateless.discover({"capabilities": CAPABILITIES, "serverInfo": info}, "harbor")

    async def _route(
        self,
        who: Identity,
        envelope: era.Envelope,
        request: Message,
        outbox: Any,
        server: DockedServer,
        params: Message,
    ) -> Any:
        modern = server.modern
        if modern is None:
            raise MethodNotFound(request["method"], f" (the {server.slug} server serves no modern requests)")
        return await modern.serve(who.name, envelope, {**request, "params": params}, outbox)

    async def _tool(
        self, who: Identity, envelope: era.Envelope, request: Message, outbox: Outbox, raw_headers: Any
    ) -> Any:
        params = request.get("params") or {}
        public = params.get("name")
        call = _Call("", str(public), "tools/call", params.get("arguments"))
        viewer = _Viewer(who)
        try:
            target = await self.view._target(public, tools=True) if isinstance(public, str) else None
            if target is None:
                raise _Unknown("tool", public)
            server, original = target
            call.server, call.tool = server.slug, original
            if not self.view._allowed(who, server, original, True):
                call.outcome_hint = "denied"
                raise _Unknown("tool", public)
            schema = server.input_schema(original)
            rejected = era.param_header_rejection(schema, params.get("arguments"), raw_headers)
            if rejected is not None:
                raise HeaderMismatch(rejected.message)
            retry_after = self.view.hooks.rate_check(who.name, str(public))
            if retry_after is not None and not isinstance(retry_after, (int, float)):  # Redis buckets: awaited
                retry_after = await retry_after
            if retry_after is not None:
                call.outcome_hint = "rate_limited"
                raise _RateLimited(retry_after)
        except GatewayError as exc:
            outcome = call.outcome_hint or ("unknown_tool" if isinstance(exc, _Unknown) else "invalid")
            self.view._done(viewer, call, outcome, None, exc.message)  # type: ignore[arg-type]
            raise

        def audited(reply: Message) -> Message:
            result = reply.get("result")
            rounds = isinstance(result, dict) and result.get("resultType") == "input_required"
            self.view._done(viewer, call, "input_required" if rounds else _outcome(reply), reply)  # type: ignore[arg-type]
            return reply

        relay = stateless.Relay(outbox, audited)
        return await self._route(who, envelope, request, relay, server, {**params, "name": original})

    async def _complete(self, who: Identity, envelope: era.Envelope, request: Message, outbox: Outbox) -> Any:
        params = dict(request.get("params") or {})
        ref = dict(params.get("ref") or {})
        if ref.get("type") == "ref/prompt":
            target, key = self.view._resolve(ref.get("name"), tools=False), "name"
        else:
            target, key = self.view._resolve_uri(ref.get("uri")), "uri"
        if target is None or not self.view.hooks.allows_server(who, target[0].slug):
            return stateless.answer(outbox, request["id"], {"completion": {"values": []}})
        server, original = target
        ref[key] = original
        return await self._route(who, envelope, request, outbox, server, {**params, "ref": ref})

    async def _listen(self, who: Identity, request: Message, outbox: Outbox) -> Listen:
        capabilities = CAPABILITIES if self.view.merged else (self._only().capabilities or {})
        wanted = (request.get("params") or {}).get("notifications")
        listen = Listen(request["id"], honoured(wanted, capabilities), outbox)
        listen.acknowledge()
        subs: dict[str, tuple[_ListenSub, Any]] = {}  # one presence per server it listens to
        held: list[DockedServer] = []  # servers speaking 2026-07-28 whose process for `who` the stream follows

        async def presence(server: DockedServer) -> tuple[_ListenSub, Any]:
            if server.slug not in subs:
                modern = await server.modern.listen_router(who.name) if server.modern is not None else None
                if modern is not None:
                    held.append(server)
                router = modern or server.router
                subs[server.slug] = (_ListenSub(listen, self.view, server), router)
                router.attach(subs[server.slug][0])
            return subs[server.slug]

        def finished() -> None:
            self.view.listens.discard(listen)
            for sub, router in subs.values():
                router.detach(sub)
            for server in held:
                server.modern.release_listen(who.name)

        try:
            if not self.view.merged:  # one server alone: its own announcements reach the stream through its router
                await presence(self._only())
            for uri in listen.filter.get("resourceSubscriptions", []):
                found = self.view._resolve_uri(uri)
                if found is None or not self.view.hooks.allows_server(who, found[0].slug):
                    continue
                server, original = found
                sub, router = await presence(server)
                router.subscribe_for(sub, original)
        except BaseException:  # a server that cannot take the listen (not ready, at capacity): undo the others
            finished()
            raise
        self.view.listens.add(listen)  # the merged view's own list changes, and the end of the stream
        listen.on_finish = finished
        return listen
