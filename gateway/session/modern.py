"""How one stdio server answers modern (2026-07-28) requests: natively on a modern connection, or bridged.

A stdio connection's era is fixed by its first request, and the handshake-era sessions keep the child they
have (initialized by the gateway, unchanged). For modern callers `ModernServer` probes the server once, with a
second process whose first request is `server/discover` (`Child(probe=True)`): if it answers, the server speaks
2026-07-28 itself and modern requests go to that process untranslated — its own input rounds and
`requestState` pass through (`bridge.Passthrough`); if it errs or stays silent, the probe process is stopped and
modern requests are bridged onto the handshake child (`bridge.ModernCall`), so both eras share that one child.
The answer is kept for the server's lifetime. Which process serves whom follows the server's session mode:
`shared` — one process for all callers; `per-identity` (and `per-session`, since a modern request has no session)
— one per caller identity, capped and reaped like any identity child; without auth every loopback caller is
the one identity `anonymous`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog

from gateway.core import era
from gateway.core.errors import UpstreamError
from gateway.core.jsonrpc import Message
from gateway.session import bridge
from gateway.session.client import Outbox
from gateway.session.instances import PerIdentity
from gateway.session.router import Router

log = structlog.get_logger("gateway.session.modern")


class Pool:
    """The routers of one era of a server: one for everyone (`shared`), or one per identity."""

    def __init__(self, shared: Router | None = None, per_identity: PerIdentity | None = None) -> None:
        self.shared = shared
        self.per_identity = per_identity

    def open(self, identity: str) -> Router:
        """Raises: CapacityExceeded when a new identity finds the per-identity cap reached."""
        if self.per_identity is not None:
            return self.per_identity.open(identity)
        assert self.shared is not None
        return self.shared

    def release(self, identity: str) -> None:
        if self.per_identity is not None:
            self.per_identity.release(identity)

    def routers(self) -> list[Router]:
        found = list(self.per_identity.routers.values()) if self.per_identity is not None else []
        return [self.shared, *found] if self.shared is not None else found

    async def close(self) -> None:
        if self.per_identity is not None:
            await self.per_identity.close_all()
        if self.shared is not None and self.shared.child is not None:
            await self.shared.child.stop(quick=True)


class ModernServer:
    """Modern requests for one server: probe once, then serve natively or bridged (see the module docstring)."""

    def __init__(
        self,
        name: str,
        handshake: Pool,
        modern_factory: Callable[[str], Router],
        calls: bridge.Calls,
        *,
        per_identity: tuple[int, float] | None,
        startup_timeout: float,
        probe: bool = True,
    ) -> None:
        self.name = name
        self.handshake = handshake
        self.calls = calls
        self.era: str | None = None if probe else "legacy"  # decided by the first modern request
        self.startup_timeout = startup_timeout
        if per_identity is None:
            self._modern = Pool(shared=None)
            self._factory: Callable[[str], Router] = modern_factory
        else:
            cap, idle = per_identity
            self._modern = Pool(per_identity=PerIdentity(lambda who, _env: modern_factory(who), cap, idle))
            self._factory = modern_factory
        self._probing: asyncio.Future[str] | None = None

    async def serve(
        self,
        identity: str,
        envelope: era.Envelope,
        request: Message,
        outbox: Outbox,
        prepare: Callable[[Message], Message] = lambda m: m,
    ) -> Any:
        """Start (or resume) one modern request; its messages go to `outbox`. Returns the call's session.

        Raises:
            GatewayError: the server cannot serve it (not ready, capacity), or a bad retry.
        """
        params = request.get("params") or {}
        if params.get("requestState") is not None and self.era != "modern":
            return await bridge.call_on_handshake_child(None, self.calls, identity, envelope, request, outbox)
        spoken = self.era or await self._probe(identity)
        if spoken == "modern":
            router = self._modern_router(identity)
            await self._ready(router)
            call: Any = await bridge.call_on_modern_child(router, identity, envelope, request, outbox, prepare)
            pool = self._modern
        else:
            router = self.handshake.open(identity)
            await self._ready(router)
            call = await bridge.call_on_handshake_child(
                router, self.calls, identity, envelope, request, outbox, prepare
            )
            pool = self.handshake
        call.on_finish = lambda: pool.release(identity)
        return call

    async def listen_router(self, identity: str) -> Router | None:
        """The router a `subscriptions/listen` of `identity` follows when the server speaks 2026-07-28 itself —
        its tool calls run there, so their notifications come from there — or None when it is bridged (follow
        the handshake child). A router returned is held for `identity` until `release_listen`."""
        spoken = self.era or await self._probe(identity)
        if spoken != "modern":
            return None
        router = self._modern_router(identity)
        await self._ready(router)
        return router

    def release_listen(self, identity: str) -> None:
        self._modern.release(identity)

    def _modern_router(self, identity: str) -> Router:
        if self._modern.per_identity is None and self._modern.shared is None:
            self._modern.shared = self._factory("")
        return self._modern.open(identity)

    async def _ready(self, router: Router) -> None:
        assert router.child is not None
        await router.child.wait_ready(self.startup_timeout)

    async def _probe(self, identity: str) -> str:
        """Ask the server once whether it speaks the modern era (concurrent first requests share the answer)."""
        if self._probing is not None:
            return await asyncio.shield(self._probing)
        self._probing = asyncio.get_running_loop().create_future()
        try:
            router = self._modern_router(identity)
            assert router.child is not None
            with contextlib.suppress(UpstreamError):  # a probe that cannot start says "handshake era" as well
                await router.child.wait_ready(self.startup_timeout)
            self.era = "modern" if router.child.era == "modern" else "legacy"
            if self.era == "legacy":
                await self._modern.close()
                self._modern = Pool(per_identity=None)
            log.info("server_era", server=self.name, era=self.era)
            self._probing.set_result(self.era)
            return self.era
        except BaseException as exc:
            self._probing.set_exception(exc)
            self._probing = None
            raise

    def routers(self) -> list[Router]:
        return self._modern.routers()

    async def close(self) -> None:
        await self._modern.close()
