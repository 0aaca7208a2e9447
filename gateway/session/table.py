"""The session table both fronts stand on: sessions by id, capped and reaped, and how a shared child starts.

`SessionTable` holds client sessions by id with a cap and idle reaping (translate's `SessionManager` and the
gateway's `MergedManager` say what opening and closing mean). `supervised_router` starts a child shared by
many sessions, initialized once with `shared_init_params`; `drain` is the first half of a graceful stop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import structlog

from gateway import __version__
from gateway.core import jsonrpc, tracing
from gateway.core.errors import (
    CapacityExceeded,
    SessionNotFound,
    ShuttingDown,
)
from gateway.core.jsonrpc import Message
from gateway.session.client import ClientSession
from gateway.session.router import Router
from gateway.upstream.base import Upstream
from gateway.upstream.child import Child

log = structlog.get_logger("gateway.session.table")

# What the gateway declares to a shared child: it can route each of these to the client that needs it.
GATEWAY_CAPABILITIES: Message = {"sampling": {}, "elicitation": {}, "roots": {"listChanged": True}}


def shared_init_params() -> Message:
    """What the gateway says when it initializes a child that many clients will share."""
    return {
        "protocolVersion": jsonrpc.LATEST_VERSION,
        "capabilities": GATEWAY_CAPABILITIES,
        "clientInfo": {"name": "harbor-gateway", "version": __version__},
    }


def supervised_router(
    name: str,
    spawn: Callable[[], Upstream],
    init_params: Message,
    request_timeout: float,
    max_message_bytes: int,
    *,
    startup_timeout: float = 30.0,
    probe: bool = False,
) -> Router:
    """A router over a supervised child, already starting (`probe`: asked `server/discover` first)."""
    router = Router(name, request_timeout, max_message_bytes)
    router.child = Child(
        name,
        spawn,
        init_params,
        startup_timeout=startup_timeout,
        probe=probe,
        on_message=router.from_upstream,
        on_down=router.upstream_down,
        on_ready=router.upstream_ready,
        on_frame_too_large=router.frame_too_large,
        on_frame_invalid=router.frame_invalid,
    )
    router.child.start()
    return router


class Sessions(Protocol):
    """What the HTTP transports need from a session table (translate's, or a merged view's)."""

    sessions: dict[str, ClientSession]

    def open(self, kind: str, headers: dict[str, str] | None = None, identity: Any = None) -> ClientSession: ...

    def get(self, session_id: str, identity: Any = None) -> ClientSession: ...

    async def find(self, session_id: str, identity: Any = None) -> ClientSession: ...

    async def initialize(self, session: ClientSession, request: Message) -> Message: ...

    async def close(self, session_id: str, reason: str) -> None: ...

    def refused(self, identity: Any, reason: str) -> None: ...


class SessionTable:
    """Sessions by id with a cap and idle reaping; subclasses say what opening and closing mean."""

    def __init__(self, cap: int, idle_timeout: float) -> None:
        self.cap = cap
        self.idle_timeout = idle_timeout
        self.sessions: dict[str, ClientSession] = {}
        self.stopping: str | None = None  # set when the process stops: no new session from then on
        self._reaper: asyncio.Task[None] | None = None

    def _add(self, session: ClientSession) -> None:
        """Raises: ShuttingDown while stopping, CapacityExceeded when the session cap is reached."""
        if self.stopping is not None:
            raise ShuttingDown(self.stopping)
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

    async def find(self, session_id: str, identity: Any = None) -> ClientSession:
        """`get` for the transports: a table shared between replicas may have to look the session up first."""
        return self.get(session_id, identity)

    async def close(self, session_id: str, reason: str, everywhere: bool = True) -> None:
        """End a session here (`everywhere` matters to tables shared between replicas: the reaper ends only
        this replica's copy of a session that may be in use elsewhere)."""
        session = self.sessions.pop(session_id, None)
        if session is None:
            return
        session.closed = True
        if tracing.enabled:
            tracing.session_closed(session_id)
        await self._closed(session)
        log.info("session_end", session=session_id, reason=reason, seconds=round(time.monotonic() - session.created, 3))

    async def _closed(self, session: ClientSession) -> None:
        """What ending a session releases (routers, children)."""

    def close_streams(self) -> None:
        """End every session's open stream (GET and legacy SSE), so its connection can close."""
        for session in list(self.sessions.values()):
            close = getattr(session.default, "close", None)
            if close is not None:
                close()

    def refused(self, identity: Any, reason: str) -> None:
        """A request the transport refused before it could be routed (too large, too deep, malformed)."""
        log.info("request_refused", identity=getattr(identity, "name", None), reason=reason)

    def start_reaper(self) -> None:
        self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def close_all(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        # this replica stops; sessions shared with other replicas go on there
        await asyncio.gather(*(self.close(s, "gateway stopping", everywhere=False) for s in list(self.sessions)))

    async def _reap(self) -> None:
        period = max(0.05, min(30.0, self.idle_timeout / 4))
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            idle = [s.id for s in self.sessions.values() if s.idle_for(now) > self.idle_timeout]
            for session_id in idle:
                try:
                    await self.close(session_id, "idle timeout", everywhere=False)
                except Exception:
                    log.exception("reap_failed", session=session_id)


STOPPING = "gateway stopping"


async def drain(
    tables: Sequence[SessionTable], routers: Callable[[], list[Router]], grace: float, forced: Callable[[], bool]
) -> None:
    """The first part of a graceful stop: refuse new sessions and requests, let calls in flight finish for up to
    `grace` seconds (less when `forced()` turns true: a second Ctrl-C), fail the rest with a JSON-RPC error on
    their own stream, and end every open stream. Children are told not to restart from the first moment (they
    may have been signalled with the gateway, as systemd does); stopping them is the caller's next step."""
    for table in tables:
        table.stopping = STOPPING
    for router in routers():
        router.refusing = STOPPING
        if router.child is not None:
            router.child.stopping()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while any(r.in_flight for r in routers()) and loop.time() < deadline and not forced():
        await asyncio.sleep(0.02)
    left = sum(r.in_flight for r in routers())
    for router in routers():
        router.shut(f"{STOPPING}: the call did not finish within the {grace:g} s shutdown grace")
    for table in tables:
        table.close_streams()
    log.info("drained", calls_failed=left, forced=forced())
