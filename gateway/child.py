"""A supervised upstream: spawn it, do the MCP handshake, restart it with backoff when it dies.

`Child` owns one upstream at a time and its lifecycle:

    starting ──handshake ok──▶ ready ──exit──▶ restarting ──backoff──▶ starting
        │                                         ▲
        └──spawn/handshake failed─────────────────┘   (FAILED after CRASH_LOOP consecutive failures:
                                                        requests fail fast, retries continue every
                                                        BACKOFF_MAX seconds)

It speaks `initialize` itself (with ids the router never uses) and hands every other message to
`on_message`. `on_down` is called the moment the upstream is lost, so the router can fail in-flight calls
at once; `on_ready` after every successful handshake. It never routes and never rewrites ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Literal

import structlog

from gateway import jsonrpc
from gateway.errors import UpstreamError
from gateway.jsonrpc import Message, RequestId
from gateway.upstream.base import Upstream

State = Literal["starting", "ready", "restarting", "failed", "stopped"]

HANDSHAKE_TIMEOUT = 60.0
BACKOFF_BASE = 0.25
BACKOFF_MAX = 30.0
CRASH_LOOP = 5  # consecutive failures before the child is reported FAILED
STABLE_AFTER = 30.0  # seconds of readiness that reset the failure count

log = structlog.get_logger("gateway.child")


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
    ) -> None:
        self.name = name
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
        self._upstream: Upstream | None = None
        self._handshake: asyncio.Future[Message] | None = None
        self._handshake_seq = 0
        self._failures = 0
        self._ready_since = 0.0
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ever_ready = False

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin spawning in the background; `wait_ready` tells when it serves."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(delay=0.0))

    async def wait_ready(self, timeout: float) -> None:
        """Raises: UpstreamError when the child is failed, stopped, or not ready within `timeout`."""
        if self.state == "ready":
            return
        if self.state in ("failed", "stopped"):
            raise UpstreamError(self._unavailable())
        return await self._await_ready(timeout)

    async def _await_ready(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            last = f" (last error: {self.last_error})" if self.last_error else ""
            raise UpstreamError(f"the {self.name} server did not become ready within {timeout:g} s{last}") from None
        if self.state != "ready":
            raise UpstreamError(self._unavailable())

    async def stop(self) -> None:
        self.state = "stopped"
        self._ready.set()  # wake waiters; they see STOPPED
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            await upstream.close()

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
            self.state = "starting"
        try:
            await self._connect()
        except UpstreamError as exc:
            await self._failed(str(exc))
            return
        self.state, self._ready_since = "ready", time.monotonic()
        self._ready.set()
        log.info("child_ready", server=self.name, pid=self.pid, restarts=self.restarts)
        self._on_ready(not self._ever_ready)
        self._ever_ready = True

    async def _connect(self) -> None:
        upstream = self._spawn()
        self._upstream = upstream
        await upstream.start(_ChildListener(self, upstream))
        self.pid = getattr(upstream, "pid", None)
        self._handshake_seq += 1
        request_id = f"harbor-initialize-{self._handshake_seq}"
        self._handshake = asyncio.get_running_loop().create_future()
        upstream.send({"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": self.init_params})
        try:
            reply = await asyncio.wait_for(self._handshake, HANDSHAKE_TIMEOUT)
        except TimeoutError:
            raise UpstreamError(f"no initialize reply within {HANDSHAKE_TIMEOUT:g} s") from None
        finally:
            self._handshake = None
        if "error" in reply:
            error = reply["error"]
            raise UpstreamError(f"initialize failed: {error.get('message', error)}")
        self.init_result = reply.get("result") or {}
        upstream.send(jsonrpc.notification("notifications/initialized", {}))

    async def _failed(self, reason: str) -> None:
        self.last_error = reason
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            await upstream.close()
        if self.state == "stopped":
            return
        if self._ready_since and time.monotonic() - self._ready_since > STABLE_AFTER:
            self._failures = 0
        self._failures += 1
        self._ready_since = 0.0
        delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (self._failures - 1))
        self.state = "failed" if self._failures >= CRASH_LOOP else "restarting"
        if self.state == "failed":
            self._ready.set()  # waiters fail fast instead of waiting out the backoff
        else:
            self._ready.clear()
        log.warning("child_down", server=self.name, reason=reason, state=self.state, retry_in=delay)
        self.restarts += 1
        self._task = asyncio.get_running_loop().create_task(self._run(delay))

    # --- listener callbacks (event-loop thread) -----------------------------------------------------------

    def _received(self, upstream: Upstream, message: Message) -> None:
        if upstream is not self._upstream:
            return
        handshake = self._handshake
        is_reply = "method" not in message and str(message.get("id", "")).startswith("harbor-initialize-")
        if is_reply and handshake is not None and not handshake.done():
            handshake.set_result(message)
            return
        self._on_message(message)

    def _closed(self, upstream: Upstream, reason: str) -> None:
        if upstream is not self._upstream or self.state == "stopped":
            return
        was_ready = self.state == "ready"
        self.state = "restarting"
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
