"""Sessions of a merged (or single-server) view: the `SessionTable` the HTTP transports talk to.

Same contract as translate's `SessionManager` (open / get / initialize / close / readiness), so the very
same Streamable HTTP and SSE transports serve the aggregating gateway. A session belongs to the identity
that opened it; another identity presenting its id is told it does not exist.
"""

from __future__ import annotations

from typing import Any

import structlog

from gateway.core.errors import Elsewhere, SessionNotFound, ShuttingDown
from gateway.core.jsonrpc import Message
from gateway.hub.aggregate import Aggregator, MergedSession
from gateway.hub.aggregate_modern import ModernView
from gateway.policy.auth import ANONYMOUS, Identity
from gateway.session.client import ClientSession
from gateway.session.table import SessionTable

log = structlog.get_logger("gateway.hub.merged")
_NEVER_KEPT = frozenset({"authorization", "cookie", "proxy-authorization"})  # credentials stay out of sessions


class MergedManager(SessionTable):
    def __init__(
        self, aggregator: Aggregator, *, cap: int = 10_000, idle_timeout: float = 1800.0, view: str = "merged"
    ) -> None:
        super().__init__(cap, idle_timeout)
        self.aggregator = aggregator
        self.view = view  # "merged", or the slug of a server served alone: a session record names its view
        self.cluster: Any = None  # with replicas: `gateway.hub.cluster.Cluster` (sessions are shared through it)
        self.peering: Any = None  # with replicas: `gateway.transports.peer.Peering` (requests relayed to others)
        self._modern = ModernView(aggregator)

    async def start(self) -> None:
        self.start_reaper()

    async def stop(self) -> None:
        await self.close_all()

    def open(self, kind: str, headers: dict[str, str] | None = None, identity: Any = None) -> ClientSession:
        """Raises: CapacityExceeded when the session cap is reached."""
        if self.cluster is not None:
            self.cluster.check_healthy()  # no new session on state that cannot be shared
        who = identity if isinstance(identity, Identity) else ANONYMOUS
        session = MergedSession(kind, self.aggregator, who)
        session.owner = who.name
        session.headers = {k: v for k, v in (headers or {}).items() if k not in _NEVER_KEPT}
        self._add(session)
        if self.cluster is not None and kind == "streamable-http":
            session.default = self.cluster.shared_stream(session.id)  # its GET stream may be on any replica
        log.info("session_start", session=session.id, transport=kind, identity=who.name)
        return session

    async def announce(self, session: ClientSession) -> None:
        """A legacy SSE session exists from its GET: recorded at once, so a `/message` POST landing on another
        replica is relayed here. Raises: StateDown, CapacityExceeded."""
        if self.cluster is not None:
            await self.cluster.register(session, self.view, self.cap)

    async def initialize(self, session: ClientSession, request: Message) -> Message:
        assert isinstance(session, MergedSession)
        reply = self.aggregator.initialize(session, request)
        if self.cluster is not None and session.kind != "sse" and "error" not in reply:
            await self.cluster.register(session, self.view, self.cap)
        return reply

    async def find(self, session_id: str, identity: Any = None) -> ClientSession:
        """The session, adopted from its shared record when another replica initialized it.

        Raises: SessionNotFound; Elsewhere (a legacy SSE session: relay to the replica holding its stream);
        StateDown (Redis cannot answer)."""
        cluster = self.cluster
        if cluster is None:
            return self.get(session_id, identity)
        local = self.sessions.get(session_id)
        if local is not None:
            session = self.get(session_id, identity)
            if not await cluster.touch(session_id):  # ended on another replica, or expired there
                await self.close(session_id, "ended elsewhere", everywhere=False)
                raise SessionNotFound("Session not found: it was terminated or expired; initialize a new one")
            return session
        record = await cluster.record(session_id)
        name = getattr(identity, "name", None)
        if record is None or record.view != self.view or (name is not None and record.owner not in (None, name)):
            raise SessionNotFound("Session not found: it was terminated or never existed; initialize a new one")
        if record.pinned and record.home != cluster.replica:
            address = await cluster.home_address(record)
            if address is None:
                await cluster.forget(session_id)
                raise SessionNotFound(
                    f"Session not found: its stream was held by replica {record.home}, which stopped; "
                    "initialize a new one"
                )
            raise Elsewhere(record.home, address)
        if session_id in self.sessions:  # adopted meanwhile by a concurrent request
            return self.get(session_id, identity)
        return self._adopt(record, identity)

    def _adopt(self, record: Any, identity: Any) -> ClientSession:
        who = identity if isinstance(identity, Identity) else ANONYMOUS
        session = MergedSession(record.kind, self.aggregator, who)
        session.id = record.id
        session.owner = record.owner
        session.home = record.home
        session.protocol_version = record.protocol_version
        session.capabilities = record.capabilities or {}
        session.client_info = record.client_info or {}
        session.headers = dict(record.headers or {})
        self.sessions[session.id] = session  # past the local cap: the cluster-wide one counted it already
        self.aggregator.sessions[session.id] = session
        session.default = self.cluster.shared_stream(session.id)
        for uri in record.subscriptions or ():
            self.aggregator.apply_subscription(session, uri, True)
        log.info("session_adopted", session=session.id, home=record.home, identity=who.name)
        return session

    async def close(self, session_id: str, reason: str, everywhere: bool = True) -> None:
        """End a session; `everywhere` (DELETE, its SSE stream closed) also ends it on every replica."""
        await super().close(session_id, reason)
        if everywhere and self.cluster is not None:
            await self.cluster.forget(session_id)

    async def _closed(self, session: ClientSession) -> None:
        if isinstance(session, MergedSession):
            await self.aggregator.close(session)

    async def modern(self, identity: Any, envelope: Any, request: Message, outbox: Any, raw_headers: Any) -> Any:
        """One 2026-07-28 request on this view (see `gateway.hub.aggregate_modern`). Raises: GatewayError."""
        if self.stopping is not None:
            raise ShuttingDown(self.stopping)
        return await self._modern.serve(identity, envelope, request, outbox, raw_headers)

    def close_streams(self) -> None:
        super().close_streams()
        for listen in list(self.aggregator.listens):
            listen.end()

    def refused(self, identity: Any, reason: str) -> None:
        super().refused(identity, reason)
        who = identity if isinstance(identity, Identity) else ANONYMOUS
        self.aggregator.hooks.on_refused(who.name, reason)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        servers = {slug: s.state for slug, s in self.aggregator.servers.items()}
        return True, {"sessions": len(self.sessions), "servers": servers}
