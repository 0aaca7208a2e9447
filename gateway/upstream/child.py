"""A supervised upstream: spawn it, do the MCP handshake, restart it with backoff when it dies.

`Child` owns one upstream at a time and its lifecycle:

    starting ──handshake ok──▶ ready ──exit──▶ restarting ──backoff──▶ starting
        │                                         ▲
        └──spawn/handshake failed─────────────────┘   (FAILED after CRASH_LOOP consecutive failures:
                                                        requests fail fast, retries continue every
                                                        BACKOFF_MAX seconds)

It speaks the handshake itself (with ids the router never uses) and hands every other message to
`on_message`. `on_down` is called the moment the upstream is lost, so the router can fail in-flight calls
at once; `on_ready` after every successful handshake. It never routes and never rewrites ids.

Era: with `probe`, the first request is `server/discover` carrying the 2026-07-28 envelope. A stdio
connection's era is fixed by its first request, so a child that answers is a modern connection from then on
(`era = "modern"`, the discover result kept, an `initialize`-shaped result synthesized for handshake-era
clients); an error, or no answer within `PROBE_TIMEOUT`, means a handshake-era server, which then gets
`initialize` on the same connection — the fallback the spec prescribes to stdio clients. The answer is kept
across restarts (a handshake-era child is not probed again).

A start has a deadline (`startup_timeout`): a child that has not answered `initialize` by then is killed
and the start counts as failed, with a `last_error` that says what it did instead (the first line it wrote
that was not JSON-RPC, or how it exited, and its last stderr lines). That error is kept until a start
succeeds. While the last start failed, callers are told at once (`wait_ready` raises with that reason)
instead of waiting out a request timeout; after a crash of a child that was serving they wait for the
restart, at most one startup deadline. `stopping()` (the gateway is shutting down) stops every restart.
Starts take turns with the other children's (`start_turns.py`); the deadline counts from the turn, and the
wait for it only against the caller's own timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Literal

import structlog

from gateway.core import era, jsonrpc
from gateway.core.errors import UpstreamError
from gateway.core.jsonrpc import Message, RequestId
from gateway.upstream.base import Upstream
from gateway.upstream.start_turns import STARTS_AT_ONCE, start_turn

State = Literal["starting", "ready", "restarting", "failed", "stopped"]

STARTUP_TIMEOUT = 30.0  # default seconds for a started child to answer initialize
PROBE_TIMEOUT = 3.0  # seconds a child has to answer `server/discover` before it is taken for a handshake-era one
BACKOFF_BASE = 0.25
BACKOFF_MAX = 30.0
CRASH_LOOP = 5  # consecutive failures before the child is reported FAILED
HISTORY = 20  # state changes kept for the status page
STABLE_AFTER = 30.0  # seconds of readiness that reset the failure count

log = structlog.get_logger("gateway.upstream.child")


class Child:
    def __init__(
        self,
        name: str,
        spawn: Callable[[], Upstream],
        init_params: Message,
        *,
        on_message: Callable[[Message], None],
        on_down: Callable[[str], None],
        on_ready: Callable[[bool], None],
        on_frame_too_large: Callable[[RequestId | None, int], None],
        on_frame_invalid: Callable[[RequestId | None, str], None] = lambda _id, _reason: None,
        startup_timeout: float = STARTUP_TIMEOUT,
        probe: bool = False,
    ) -> None:
        self.name = name
        self.startup_timeout = startup_timeout
        self.history: list[tuple[float, str, str | None]] = [(time.time(), "starting", None)]  # last HISTORY changes
        self.start_failed = False  # the most recent start attempt failed (a refused call says why, at once)
        self._noise: str | None = None  # the first non-JSON-RPC line written during the current handshake
        self.init_params = init_params
        self.init_result: Message | None = None
        self.state: State = "starting"
        self.last_error: str | None = None
        self.restarts = 0
        self.pid: int | None = None
        self._spawn = spawn
        self._on_message = on_message
        self._on_down = on_down
        self._on_ready = on_ready
        self._on_frame_too_large = on_frame_too_large
        self._on_frame_invalid = on_frame_invalid
        self.probe = probe  # ask `server/discover` first; a modern answer makes this a 2026-07-28 connection
        self.era: str | None = None  # "modern" or "legacy" once known (kept across restarts: probed once)
        self.discover_result: Message | None = None
        self._upstream: Upstream | None = None
        self._handshake: asyncio.Future[Message] | None = None
        self._handshake_seq = 0
        self._handshake_id: str | None = None
        self._failures = 0
        self._ready_since = 0.0
        self._ready = asyncio.Event()
        self._turn = asyncio.Event()  # set once this start has its turn (children take turns: start_turns.py)
        self._task: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()  # failed starts' processes being stopped
        self._ever_ready = False

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin spawning in the background; `wait_ready` tells when it serves."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(delay=0.0))

    async def wait_ready(self, timeout: float) -> None:
        """Raises: UpstreamError when the child is failed, stopped, its last start failed, or it is not ready
        within `timeout` (at most one startup deadline)."""
        if self.state == "ready":
            return
        if self.state in ("failed", "stopped") or (self.state == "restarting" and self.start_failed):
            raise UpstreamError(self._unavailable())
        if not self._turn.is_set():  # queued behind other starts: that wait counts against `timeout` alone
            loop = asyncio.get_running_loop()
            queued = loop.time()
            try:
                await asyncio.wait_for(self._turn.wait(), timeout)
            except TimeoutError:
                raise UpstreamError(
                    f"the {self.name} server did not become ready within {timeout:g} s: it is still waiting for "
                    f"its turn to start ({STARTS_AT_ONCE} children start at once)"
                ) from None
            timeout -= loop.time() - queued
        return await self._await_ready(max(0.0, min(timeout, self.startup_timeout + BACKOFF_MAX)))

    async def _await_ready(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            last = f" (last error: {self.last_error})" if self.last_error else ""
            raise UpstreamError(f"the {self.name} server did not become ready within {timeout:g} s{last}") from None
        if self.state != "ready":
            raise UpstreamError(self._unavailable())

    def stopping(self) -> None:
        """The gateway is shutting down: whatever happens to the upstream now, never start it again."""
        self._set("stopped", None)
        self._ready.set()
        self._turn.set()

    async def stop(self, quick: bool = False) -> None:
        """Stop the upstream for good (`quick`: the gateway is exiting, so each shutdown step waits briefly)."""
        self._set("stopped", None)
        self._ready.set()  # wake waiters; they see STOPPED
        self._turn.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            await upstream.close(quick=quick)
        if self._closing:  # a failed start's process still being stopped: wait for it to be gone
            await asyncio.gather(*self._closing, return_exceptions=True)

    def send(self, message: Message) -> None:
        """Raises: UpstreamError when the child is not serving."""
        if self.state != "ready" or self._upstream is None:
            raise UpstreamError(self._unavailable())
        self._upstream.send(message)

    def _unavailable(self) -> str:
        reason = f" ({self.last_error})" if self.last_error else ""
        return f"the {self.name} server is {self.state}{reason}"

    async def _run(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        if self.state == "stopped":
            return
        if self.state != "failed":
            self._set("starting", None)
        self._turn.clear()
        try:
            async with start_turn():
                self._turn.set()  # the startup deadline counts from here
                await self._connect()
        except UpstreamError as exc:
            self.start_failed = True
            await self._failed(str(exc))
            return
        self._ready_since = time.monotonic()
        self.start_failed, self.last_error = False, None
        self._set("ready", None)
        self._ready.set()
        log.info("child_ready", server=self.name, pid=self.pid, restarts=self.restarts)
        self._on_ready(not self._ever_ready)
        self._ever_ready = True

    async def _connect(self) -> None:
        upstream = self._spawn()
        self._upstream = upstream
        await upstream.start(_ChildListener(self, upstream))
        self.pid = getattr(upstream, "pid", None)
        self._noise = None
        started = time.monotonic()
        if self.probe and self.era != "legacy":
            discovered = await self._exchange(upstream, "server/discover", self._discover_params(), PROBE_TIMEOUT)
            if discovered is not None and "result" in discovered:
                self.era, self.discover_result = "modern", discovered["result"]
                self.init_result = era.initialize_result(discovered["result"], self.name)
                return
            self.era = "legacy"  # an error or no answer: a handshake-era server, as the spec tells stdio clients
            log.info("child_speaks_handshake_era", server=self.name, probe="error" if discovered else "timeout")
        left = max(1.0, self.startup_timeout - (time.monotonic() - started))
        reply = await self._exchange(upstream, "initialize", self.init_params, left)
        if reply is None:
            raise UpstreamError(self._explain(f"no initialize reply within {self.startup_timeout:g} s"))
        if "error" in reply:
            error = reply["error"]
            raise UpstreamError(f"initialize failed: {error.get('message', error)}")
        self.era = "legacy"
        self.init_result = reply.get("result") or {}
        upstream.send(jsonrpc.notification("notifications/initialized", {}))

    def _discover_params(self) -> Message:
        """`server/discover` with the modern envelope built from what the gateway would say in `initialize`."""
        params = self.init_params
        return era.with_envelope({}, params.get("capabilities") or {}, params.get("clientInfo"), None)

    async def _exchange(self, upstream: Upstream, method: str, params: Message, timeout: float) -> Message | None:
        """One handshake request and its reply (None when none came within `timeout`).

        Raises:
            UpstreamError: the upstream went away meanwhile (the reason says what it did).
        """
        self._handshake_seq += 1
        request_id = f"harbor-initialize-{self._handshake_seq}"
        self._handshake = asyncio.get_running_loop().create_future()
        self._handshake_id = request_id  # a late answer to an earlier probe must not settle this one
        upstream.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        try:
            return await asyncio.wait_for(self._handshake, timeout)
        except TimeoutError:
            return None
        except UpstreamError as exc:
            raise UpstreamError(self._explain(exc.message)) from None
        finally:
            self._handshake = None

    def _explain(self, what: str) -> str:
        """Why a start failed, with what the child did instead of answering."""
        parts = [what]
        if self._noise is not None:
            parts.append(f"stdout was not JSON-RPC: {self._noise!r}")
        tail = list(getattr(self._upstream, "stderr_tail", ()))
        if tail:
            parts.append("stderr: " + " | ".join(tail[-3:]))
        return "; ".join(parts)

    def _set(self, state: State, reason: str | None) -> None:
        if state != self.state or reason is not None:
            self.history.append((time.time(), state, reason))
            del self.history[:-HISTORY]
        self.state = state

    async def _failed(self, reason: str) -> None:
        """Count a failure, say so at once (state and reason first: stopping a stubborn process takes seconds),
        then stop what is left of the upstream and schedule the next start after the backoff."""
        self.last_error = reason
        upstream, self._upstream = self._upstream, None
        stopped = self.state == "stopped"
        if not stopped:
            if self._ready_since and time.monotonic() - self._ready_since > STABLE_AFTER:
                self._failures = 0
            self._failures += 1
            self._ready_since = 0.0
            self._set("failed" if self._failures >= CRASH_LOOP else "restarting", reason)
            if self.state == "failed":
                self._ready.set()  # waiters fail fast instead of waiting out the backoff
            else:
                self._ready.clear()
        if upstream is not None:  # shielded: a stop arriving meanwhile must not leave the process running
            closing = asyncio.get_running_loop().create_task(upstream.close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
            await asyncio.shield(closing)
        if stopped or self.state == "stopped":
            return
        delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (self._failures - 1))
        log.warning("child_down", server=self.name, reason=reason, state=self.state, retry_in=delay)
        self.restarts += 1
        self._task = asyncio.get_running_loop().create_task(self._run(delay))

    # --- listener callbacks (event-loop thread) -----------------------------------------------------------

    def _received(self, upstream: Upstream, message: Message) -> None:
        if upstream is not self._upstream:
            return
        handshake = self._handshake
        is_reply = "method" not in message and str(message.get("id", "")).startswith("harbor-initialize-")
        if is_reply:
            if handshake is not None and not handshake.done() and message.get("id") == self._handshake_id:
                handshake.set_result(message)
            return  # a handshake reply (maybe a late one) is never a client's
        self._on_message(message)

    def _closed(self, upstream: Upstream, reason: str) -> None:
        if upstream is not self._upstream:
            return
        if self.state == "stopped":  # it died while the gateway stops (signalled with it): fail its calls, no restart
            self._upstream = None
            self._on_down(f"gateway stopping; {reason}")
            return
        was_ready = self.state == "ready"
        self.last_error = reason
        self._set("restarting", reason)
        self._ready.clear()
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(UpstreamError(reason))
            return  # _connect's caller handles the failure
        if was_ready:
            self._on_down(reason)
        asyncio.get_running_loop().create_task(self._failed(reason))


class _ChildListener:
    """Binds listener callbacks to one upstream instance, so a stale child's late events are ignored."""

    def __init__(self, child: Child, upstream: Upstream) -> None:
        self._child = child
        self._upstream = upstream

    def message_received(self, message: Message) -> None:
        self._child._received(self._upstream, message)

    def frame_too_large(self, request_id: RequestId | None, size: int) -> None:
        self._child._on_frame_too_large(request_id, size)

    def frame_invalid(self, line: bytes, reason: str) -> None:
        log.warning(
            "child_frame_invalid", server=self._child.name, reason=reason, head=line[:120].decode(errors="replace")
        )
        head = line[:512]
        child = self._child
        if child._handshake is not None and child._noise is None:
            child._noise = head[:120].decode(errors="replace").strip()
        if b'"method"' not in head:  # a reply (not a request of the server's own): fail the call it answers
            child._on_frame_invalid(jsonrpc.sniff_id(head, line[-512:]), reason)

    def upstream_closed(self, reason: str) -> None:
        self._child._closed(self._upstream, reason)


def describe(child: Child) -> dict[str, Any]:
    """The child's state for health endpoints and logs."""
    return {
        "state": child.state,
        "pid": child.pid,
        "restarts": child.restarts,
        "last_error": child.last_error,
        "server_info": (child.init_result or {}).get("serverInfo"),
    }
