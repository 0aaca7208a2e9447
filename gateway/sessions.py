"""Client sessions over one stdio server: create, find, cap, reap, and pick the child that serves each.

`shared` mode: one supervised child for every session, started with the bridge and initialized once by the
gateway; each client's `initialize` is answered from that handshake. `per-session` mode: each session gets
its own child, spawned at the client's `initialize` with the client's own parameters and with the
session's `--header-to-env` values in its environment (never a shared child restarted for one user), and
stopped when the session ends: DELETE, SSE disconnect, or the idle timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from gateway import __version__, jsonrpc
from gateway.child import Child, describe
from gateway.errors import CapacityExceeded, GatewayError, ProtocolError, SessionNotFound
from gateway.jsonrpc import Message
from gateway.router import Router
from gateway.session import ClientSession
from gateway.upstream.base import Upstream
from gateway.upstream.stdio import StdioUpstream

log = structlog.get_logger("gateway.sessions")

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

    @property
    def session_cap(self) -> int:
        if self.max_sessions is not None:
            return self.max_sessions
        return 32 if self.session_mode == "per-session" else 10_000


def shared_init_params() -> Message:
    """What the gateway says when it initializes a child that many clients will share."""
    return {
        "protocolVersion": jsonrpc.LATEST_VERSION,
        "capabilities": GATEWAY_CAPABILITIES,
        "clientInfo": {"name": "harbor-gateway", "version": __version__},
    }


def supervised_router(
    name: str, spawn: Callable[[], Upstream], init_params: Message, request_timeout: float, max_message_bytes: int
) -> Router:
    """A router over a supervised child, already starting."""
    router = Router(name, request_timeout, max_message_bytes)
    router.child = Child(
        name,
        spawn,
        init_params,
        on_message=router.from_upstream,
        on_down=router.upstream_down,
        on_ready=router.upstream_ready,
        on_frame_too_large=router.frame_too_large,
    )
    router.child.start()
    return router


class Sessions(Protocol):
    """What the HTTP transports need from a session table (translate's, or a merged view's)."""

    sessions: dict[str, ClientSession]

    def open(self, kind: str, headers: dict[str, str] | None = None, identity: Any = None) -> ClientSession: ...

    def get(self, session_id: str, identity: Any = None) -> ClientSession: ...

    async def initialize(self, session: ClientSession, request: Message) -> Message: ...

    async def close(self, session_id: str, reason: str) -> None: ...


class SessionTable:
    """Sessions by id with a cap and idle reaping; subclasses say what opening and closing mean."""

    def __init__(self, cap: int, idle_timeout: float) -> None:
        self.cap = cap
        self.idle_timeout = idle_timeout
        self.sessions: dict[str, ClientSession] = {}
        self._reaper: asyncio.Task[None] | None = None

    def _add(self, session: ClientSession) -> None:
        """Raises: CapacityExceeded when the session cap is reached."""
        if len(self.sessions) >= self.cap:
            raise CapacityExceeded(
                f"the gateway already serves {self.cap} sessions (--max-sessions); close one (DELETE) or try later"
            )
        self.sessions[session.id] = session

    def get(self, session_id: str, identity: Any = None) -> ClientSession:
        """Raises: SessionNotFound for unknown or terminated sessions, and for another identity's session."""
        session = self.sessions.get(session_id)
        if session is None or (identity is not None and session.owner not in (None, getattr(identity, "name", None))):
            raise SessionNotFound("Session not found: it was terminated or never existed; initialize a new one")
        return session

    async def close(self, session_id: str, reason: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return
        session.closed = True
        await self._closed(session)
        log.info("session_end", session=session_id, reason=reason, seconds=round(time.monotonic() - session.created, 3))

    async def _closed(self, session: ClientSession) -> None:
        """What ending a session releases (routers, children)."""

    def start_reaper(self) -> None:
        self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def close_all(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        await asyncio.gather(*(self.close(s, "gateway stopping") for s in list(self.sessions)))

    async def _reap(self) -> None:
        period = max(0.05, min(30.0, self.idle_timeout / 4))
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            idle = [s.id for s in self.sessions.values() if s.idle_for(now) > self.idle_timeout]
            for session_id in idle:
                try:
                    await self.close(session_id, "idle timeout")
                except Exception:
                    log.exception("reap_failed", session=session_id)


class SessionManager(SessionTable):
    """translate's sessions over one stdio server, shared or per session."""

    def __init__(self, server: StdioServer) -> None:
        super().__init__(server.session_cap, server.idle_timeout)
        self.server = server
        self.shared: Router | None = None

    async def start(self) -> None:
        if self.server.session_mode == "shared":
            self.shared = self._router(shared_init_params(), env={})
        self.start_reaper()

    async def stop(self) -> None:
        await self.close_all()
        if self.shared is not None and self.shared.child is not None:
            await self.shared.child.stop()

    def _router(self, init_params: Message, env: dict[str, str]) -> Router:
        server = self.server

        def spawn() -> StdioUpstream:
            return StdioUpstream(
                server.argv,
                name=server.name,
                env={**server.env, **env},
                cwd=server.cwd,
                max_message_bytes=server.max_message_bytes,
            )

        return supervised_router(server.name, spawn, init_params, server.request_timeout, server.max_message_bytes)

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
        try:
            await router.child.wait_ready(self.server.request_timeout)
        except GatewayError as exc:
            if router is not self.shared:
                await router.child.stop()
            return jsonrpc.error_from(request["id"], exc)
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
                await router.child.stop()

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
