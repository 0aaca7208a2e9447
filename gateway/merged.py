"""Sessions of a merged (or single-server) view: the `SessionTable` the HTTP transports talk to.

Same contract as translate's `SessionManager` (open / get / initialize / close / readiness), so the very
same Streamable HTTP and SSE transports serve the aggregating gateway. A session belongs to the identity
that opened it; another identity presenting its id is told it does not exist.
"""

from __future__ import annotations

from typing import Any

import structlog

from gateway.aggregate import Aggregator, MergedSession
from gateway.jsonrpc import Message
from gateway.policy.auth import ANONYMOUS, Identity
from gateway.session import ClientSession
from gateway.sessions import SessionTable

log = structlog.get_logger("gateway.merged")


class MergedManager(SessionTable):
    def __init__(self, aggregator: Aggregator, *, cap: int = 10_000, idle_timeout: float = 1800.0) -> None:
        super().__init__(cap, idle_timeout)
        self.aggregator = aggregator

    async def start(self) -> None:
        self.start_reaper()

    async def stop(self) -> None:
        await self.close_all()

    def open(self, kind: str, headers: dict[str, str] | None = None, identity: Any = None) -> ClientSession:
        """Raises: CapacityExceeded when the session cap is reached."""
        who = identity if isinstance(identity, Identity) else ANONYMOUS
        session = MergedSession(kind, self.aggregator, who)
        session.owner = who.name
        self._add(session)
        log.info("session_start", session=session.id, transport=kind, identity=who.name)
        return session

    async def initialize(self, session: ClientSession, request: Message) -> Message:
        assert isinstance(session, MergedSession)
        return self.aggregator.initialize(session, request)

    async def _closed(self, session: ClientSession) -> None:
        if isinstance(session, MergedSession):
            await self.aggregator.close(session)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        servers = {slug: s.state for slug, s in self.aggregator.servers.items()}
        return True, {"sessions": len(self.sessions), "servers": servers}
