"""Routers that belong to one client session or to one identity, not to everyone: capped, reaped, stopped.

`PerSession` and `PerIdentity` keep one supervised child per session or per identity, so one user's server
state (and its server→client requests) is never another's. Both translate and the aggregating gateway use them;
they know routers and children, never HTTP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from gateway.core.errors import CapacityExceeded
from gateway.core.jsonrpc import Message
from gateway.session.router import Router

log = structlog.get_logger("gateway.session.instances")


class PerSession:
    """Children of a per-session server, one per client session, capped.

    The docked server's shared child stays as the catalog (lists are read from it); each session's calls go
    to its own child, spawned with the client's own initialize parameters (and its `header_to_env` values in
    its environment) and stopped with the session.
    """

    def __init__(self, factory: Callable[[Message, dict[str, str]], Router], cap: int) -> None:
        self._factory = factory
        self.cap = cap
        self.routers: set[Router] = set()

    def open(self, init_params: Message, env: dict[str, str] | None = None) -> Router:
        """Raises: CapacityExceeded when `cap` children already run."""
        if len(self.routers) >= self.cap:
            raise CapacityExceeded(f"this server already runs {self.cap} per-session children (max_sessions)")
        router = self._factory(init_params, env or {})
        self.routers.add(router)
        return router

    async def close(self, router: Router) -> None:
        self.routers.discard(router)
        if router.child is not None:
            await router.child.stop()


class PerIdentity:
    """Children of a per-identity server: one per identity, shared by all of that identity's sessions.

    Like `PerSession`, the docked server's own child is the catalog and never serves calls. An identity's child
    is spawned at its first call (with that session's `header_to_env` values), so one identity's state — and its
    server→client requests, routed among its own sessions only — is never another's. At most `cap` children:
    a new identity past the cap takes the place of the longest-idle child, or is refused when none is idle. A
    child with no session of its identity attached for `idle_timeout` seconds is stopped. A crashed child is
    restarted by its supervisor like any other.
    """

    def __init__(self, factory: Callable[[str, dict[str, str]], Router], cap: int, idle_timeout: float) -> None:
        self._factory = factory
        self.cap = cap
        self.idle_timeout = idle_timeout
        self.routers: dict[str, Router] = {}
        self._users: dict[str, int] = {}
        self._idle_since: dict[str, float] = {}
        self._reaper: asyncio.Task[None] | None = None

    def open(self, identity: str, env: dict[str, str] | None = None) -> Router:
        """The identity's child, spawned if it has none. Raises: CapacityExceeded past `cap` with none idle."""
        router = self.routers.get(identity)
        if router is None:
            if len(self.routers) >= self.cap:
                self._evict_idle()
            router = self.routers[identity] = self._factory(identity, env or {})
            self._start_reaper()
            log.info("identity_child_started", server=router.name, identity=identity)
        self._users[identity] = self._users.get(identity, 0) + 1
        self._idle_since.pop(identity, None)
        return router

    def release(self, identity: str) -> None:
        """One of the identity's sessions let go of its child; idleness counts from the last one."""
        users = self._users.get(identity, 0) - 1
        self._users[identity] = max(users, 0)
        if users <= 0 and identity in self.routers:
            self._idle_since[identity] = time.monotonic()

    def _evict_idle(self) -> None:
        if not self._idle_since:
            raise CapacityExceeded(
                f"this server already runs {self.cap} per-identity children, all in use (max_identities)"
            )
        oldest = min(self._idle_since, key=self._idle_since.__getitem__)
        asyncio.get_running_loop().create_task(self._stop(oldest, "evicted for a new identity"))

    async def _stop(self, identity: str, reason: str) -> None:
        router = self.routers.pop(identity, None)
        self._users.pop(identity, None)
        self._idle_since.pop(identity, None)
        if router is not None and router.child is not None:
            log.info("identity_child_stopped", server=router.name, identity=identity, reason=reason)
            await router.child.stop()

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        period = max(0.05, min(30.0, self.idle_timeout / 4))
        while self.routers:
            await asyncio.sleep(period)
            now = time.monotonic()
            for identity in [i for i, t in self._idle_since.items() if now - t > self.idle_timeout]:
                await self._stop(identity, "idle")

    async def close_all(self, stop: bool = True) -> None:
        """Forget every identity's child (and stop them, unless the caller stops them itself)."""
        if self._reaper is not None:
            self._reaper.cancel()
        if not stop:
            self.routers.clear()
            self._users.clear()
            self._idle_since.clear()
            return
        for identity in list(self.routers):
            await self._stop(identity, "undocked")
