"""translate's sessions over one stdio server: create, find, cap, reap, and pick the child that serves each.

`shared` mode: one supervised child for every session, started with the bridge and initialized once by the
gateway; each client's `initialize` is answered from that handshake. `per-session` mode: each session gets
its own child, spawned at the client's `initialize` with the client's own parameters and with the
session's `--header-to-env` values in its environment (never a shared child restarted for one user), and
stopped when the session ends: DELETE, SSE disconnect, or the idle timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from gateway.core import era, jsonrpc
from gateway.core.environment import child_environment
from gateway.core.errors import (
    GatewayError,
    HeaderMismatch,
    MethodNotFound,
    ProtocolError,
    ShuttingDown,
)
from gateway.core.jsonrpc import Message
from gateway.session import bridge, stateless
from gateway.session.client import ClientSession, Outbox
from gateway.session.instances import PerIdentity
from gateway.session.listen import Listen
from gateway.session.listen import honoured as listen_filter
from gateway.session.modern import ModernServer, Pool
from gateway.session.router import Router
from gateway.session.table import SessionTable, drain, shared_init_params, supervised_router
from gateway.upstream.child import describe
from gateway.upstream.stdio import StdioUpstream

log = structlog.get_logger("gateway.translate")

# What the gateway declares to a shared child: it can route each of these to the client that needs it.
GATEWAY_CAPABILITIES: Message = {"sampling": {}, "elicitation": {}, "roots": {"listChanged": True}}


@dataclass(frozen=True)
class StdioServer:
    """How to run one stdio MCP server and how to share it."""

    name: str
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    session_mode: str = "shared"  # or "per-session"
    max_sessions: int | None = None  # None: 10,000 shared, 32 per-session
    idle_timeout: float = 600.0
    request_timeout: float = 300.0
    max_message_bytes: int = 16 * 1024 * 1024
    header_to_env: dict[str, str] = field(default_factory=dict)  # lower-case header → env var (per-session)
    env_passthrough: tuple[str, ...] = ()  # variables of translate's own environment the child may see
    startup_timeout: float = 30.0  # seconds for the child to answer initialize

    @property
    def session_cap(self) -> int:
        if self.max_sessions is not None:
            return self.max_sessions
        return 32 if self.session_mode == "per-session" else 10_000


class SessionManager(SessionTable):
    """translate's sessions over one stdio server, shared or per session."""

    def __init__(self, server: StdioServer) -> None:
        super().__init__(server.session_cap, server.idle_timeout)
        self.server = server
        self.shared: Router | None = None
        self.calls = bridge.Calls()
        self.listens: set[Listen] = set()
        self.catalog: Any = None  # the shared child's cached lists (tool schemas for Mcp-Param-* checks)
        self.modern_server: ModernServer | None = None

    async def start(self) -> None:
        from gateway.hub.docked import DockedServer  # (the catalog's list cache; no other hub piece)

        server = self.server
        if server.session_mode == "shared":
            self.shared = self._router(shared_init_params(), env={})
            self.catalog = DockedServer(server.name, self.shared)
            handshake = Pool(shared=self.shared)
            per_identity = None
        else:  # no session in the modern era: a child per modern caller identity, under the same cap and reaping
            per_identity = (server.session_cap, server.idle_timeout)
            handshake = Pool(
                per_identity=PerIdentity(lambda _who, _env: self._router(shared_init_params(), {}), *per_identity)
            )
        self.modern_server = ModernServer(
            server.name,
            handshake,
            lambda _who: self._router(shared_init_params(), {}, probe=True),
            self.calls,
            per_identity=per_identity,
            startup_timeout=server.startup_timeout,
        )
        self.start_reaper()

    async def stop(self) -> None:
        await self.close_all()
        if self.modern_server is not None:
            await self.modern_server.close()
            await self.modern_server.handshake.close()
        if self.shared is not None and self.shared.child is not None:
            await self.shared.child.stop(quick=True)

    def routers(self) -> list[Router]:
        """Every router serving this table: the shared one, each session's own, the modern callers'."""
        found = {id(s.router): s.router for s in self.sessions.values() if isinstance(s.router, Router)}
        if self.shared is not None:
            found[id(self.shared)] = self.shared
        if self.modern_server is not None:
            for router in (*self.modern_server.routers(), *self.modern_server.handshake.routers()):
                found[id(router)] = router
        return list(found.values())

    def close_streams(self) -> None:
        super().close_streams()
        for listen in list(self.listens):
            listen.end()

    # --- the 2026-07-28 era --------------------------------------------------------------------------------

    async def modern(
        self, identity: Any, envelope: era.Envelope, request: Message, outbox: Outbox, raw_headers: Any
    ) -> Any:
        """Serve one modern request (its messages go to `outbox`); returns what the transport may cancel.

        Raises:
            GatewayError: a method this era does not have, a bad Mcp-Param-* header, the child not ready, …
        """
        assert self.modern_server is not None
        who = getattr(identity, "name", None) or "anonymous"
        method = request["method"]
        if method in era.REMOVED_METHODS:
            raise MethodNotFound(method, " (not part of protocol 2026-07-28)")
        if method == "server/discover":
            router = self.modern_server.handshake.open(who)
            try:
                assert router.child is not None
                await router.child.wait_ready(self.server.startup_timeout)
                result = stateless.discover(router.child.init_result, self.server.name)
            finally:
                self.modern_server.handshake.release(who)
            return stateless.answer(outbox, request["id"], result, cacheable=True)
        if method == "subscriptions/listen":
            return await self._listen(who, request, outbox)
        if method == "tools/call" and self.catalog is not None:
            await self._check_param_headers(request, raw_headers)
        if self.stopping is not None:
            raise ShuttingDown(self.stopping)
        return await self.modern_server.serve(who, envelope, request, outbox)

    async def _check_param_headers(self, request: Message, raw_headers: Any) -> None:
        """Raises: ProtocolError-coded -32020 when Mcp-Param-* headers disagree with the arguments."""
        params = request.get("params") or {}
        if self.catalog.cached("tools/list") is None:
            await self.catalog.items("tools/list")
        schema = self.catalog.input_schema(params.get("name"))
        if schema is None:
            return
        rejected = era.param_header_rejection(schema, params.get("arguments"), raw_headers)
        if rejected is not None:
            raise HeaderMismatch(rejected.message)

    async def _listen(self, who: str, request: Message, outbox: Outbox) -> Listen:
        modern = await self.modern_server.listen_router(who) if self.modern_server is not None else None
        router = modern or self.shared
        capabilities = ((router.child.init_result or {}).get("capabilities") or {}) if router and router.child else {}
        wanted = (request.get("params") or {}).get("notifications")
        listen = Listen(request["id"], listen_filter(wanted, capabilities), outbox)
        listen.acknowledge()
        self.listens.add(listen)
        if router is not None:
            router.attach(listen)
            for uri in listen.filter.get("resourceSubscriptions", []):
                router.subscribe_for(listen, uri)

        def finished() -> None:
            self.listens.discard(listen)
            if router is not None:
                router.detach(listen)
            if modern is not None and self.modern_server is not None:
                self.modern_server.release_listen(who)

        listen.on_finish = finished
        return listen

    async def drain(self, grace: float, forced: Callable[[], bool]) -> None:
        await drain([self], self.routers, grace, forced)

    def _router(self, init_params: Message, env: dict[str, str], probe: bool = False) -> Router:
        server = self.server

        def spawn() -> StdioUpstream:
            return StdioUpstream(
                server.argv,
                name=server.name,
                env=child_environment({**server.env, **env}, server.env_passthrough),
                cwd=server.cwd,
                max_message_bytes=server.max_message_bytes,
            )

        return supervised_router(
            server.name,
            spawn,
            init_params,
            server.request_timeout,
            server.max_message_bytes,
            startup_timeout=server.startup_timeout,
            probe=probe,
        )

    def open(self, kind: str, headers: dict[str, str] | None = None, identity: Any = None) -> ClientSession:
        """Raises: CapacityExceeded when the session cap is reached."""
        env = {}
        if self.server.session_mode == "per-session" and headers:
            env = {var: headers[h] for h, var in self.server.header_to_env.items() if h in headers}
        session = ClientSession(kind, env)
        session.owner = getattr(identity, "name", None)
        self._add(session)
        log.info("session_start", session=session.id, transport=kind, mode=self.server.session_mode)
        return session

    async def initialize(self, session: ClientSession, request: Message) -> Message:
        """Answer a client's initialize (the whole JSON-RPC response), starting its child if it needs one."""
        params = request.get("params") or {}
        if session.initialized:
            return jsonrpc.error_response(request["id"], -32600, "this session is already initialized")
        if not isinstance(params.get("protocolVersion"), str):
            raise ProtocolError('initialize needs params.protocolVersion (a string), e.g. "2025-11-25"')
        router = self.shared
        if router is None:
            router = self._router(params, session.env)
        assert router.child is not None
        session.opening = True  # a slow start is not idleness: the reaper must not end the session meanwhile
        try:
            await router.child.wait_ready(self.server.request_timeout)
        except GatewayError as exc:
            if router is not self.shared:
                await router.child.stop()
            return jsonrpc.error_from(request["id"], exc)
        finally:
            session.opening = False
        if session.closed:  # ended meanwhile (the gateway stops): its child must not outlive it
            if router is not self.shared:
                await router.child.stop()
            return jsonrpc.error_response(request["id"], -32600, "the session ended while it was being initialized")
        router.attach(session)
        session.touch()  # idleness counts from a usable session, not from the start of a slow spawn
        result = router.initialize_result(session, params)
        log.info(
            "session_initialized",
            session=session.id,
            version=session.protocol_version,
            client=session.client_info.get("name"),
        )
        return {"jsonrpc": "2.0", "id": request["id"], "result": result}

    async def _closed(self, session: ClientSession) -> None:
        router: Router | None = session.router
        if router is not None:
            router.detach(session)
            if router is not self.shared and router.child is not None:
                await router.child.stop(quick=self.stopping is not None)

    # --- health --------------------------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        body: dict[str, Any] = {
            "server": self.server.name,
            "mode": self.server.session_mode,
            "sessions": len(self.sessions),
        }
        if self.shared is None:
            return True, body
        assert self.shared.child is not None
        body["child"] = describe(self.shared.child)
        return self.shared.child.state == "ready", body
