"""One host session ⇄ one remote MCP session, kept alive across faults: the core of `harbor-connect`.

Messages pass through unchanged (ids included): the host's requests go to the remote, everything the remote
sends (replies, notifications, progress, its own requests such as sampling, elicitation and roots) goes to the
host, and the host's answers go back. What the bridge adds is the fault handling, so the host never waits on
silence and never has to restart:

- the host's `initialize` opens the session (Streamable HTTP, falling back to legacy SSE when the URL does
  not speak it, as the SDK clients do); a remote that cannot be reached gets the host an error saying so;
- a request that reaches no remote (connection refused) is retried with backoff for a short grace period,
  then answered with an error; it was never sent, so retrying is safe;
- a session the remote no longer knows (404, a restarted remote, a legacy SSE stream that ended) is opened
  again in the background with the host's own `initialize` parameters, with backoff; resource subscriptions
  and the log level are renewed, and the host is told the lists may have changed;
- a request whose answer stream dropped is resumed by the transport; if that fails, or its session was lost
  while it ran, the host gets a JSON-RPC error for it (the call may have run: it is never resent);
- every request has a deadline (`--timeout`), restarted by each progress notification for it; on expiry
  the remote gets `notifications/cancelled` and the host an error.

A reply reaches the host at most once: a late reply for a request already answered with an error is dropped.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import httpx
import structlog

from gateway.connect.legacy_sse import LegacySSE
from gateway.connect.modern import ModernHTTP, NotModern
from gateway.connect.streamable import StreamableHTTP
from gateway.connect.transport import (
    CallLost,
    Message,
    NotStreamable,
    RemoteError,
    RemoteRefused,
    RemoteUnreachable,
    SessionLost,
    Transport,
    backoff,
)

log = structlog.get_logger("gateway.connect")

# JSON-RPC codes the host can see from harbor-connect itself (the remote's own errors pass through unchanged).
CONNECTION_LOST = -32000  # the answer could not come: the connection or the session was lost mid-call
REQUEST_TIMEOUT = -32001
REMOTE_UNAVAILABLE = -32010
INVALID_REQUEST = -32600
PARSE_ERROR = -32700

RECONNECT_GRACE = 10.0  # how long a new request waits for an unreachable remote before it is answered
LIST_CHANGED = {"tools": "notifications/tools/list_changed", "prompts": "notifications/prompts/list_changed"}
LIST_CHANGED["resources"] = "notifications/resources/list_changed"


@dataclass
class Settings:
    url: str
    transport: str = "auto"  # auto | streamable-http | sse
    timeout: float = 300.0
    era: str = "auto"  # auto | legacy | modern (2026-07-28)


@dataclass
class Pending:
    """A request on its way: the host's, or one of ours (`forward=False`) replayed after a re-initialize."""

    id: Any
    forward: bool = True
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    done: anyio.Event = field(default_factory=anyio.Event)
    generation: int = -1
    sent: bool = False
    cancelled: bool = False
    reply: Message | None = None


def error_reply(request_id: Any, code: int, message: str) -> Message:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": f"harbor-connect: {message}"}}


class Bridge:
    def __init__(self, settings: Settings, client: httpx.AsyncClient, write: Callable[[Message], None]) -> None:
        self.settings = settings
        self._client = client
        self._write = write
        self._pending: dict[Any, Pending] = {}
        self._progress: dict[Any, Any] = {}  # progress token → request id
        self._transport: Transport | None = None
        self._kind: str | None = None  # the transport that worked, kept for re-initializing
        self._generation = 0
        self._ready = anyio.Event()
        self._recovering = False
        self._listening = -1  # the generation whose stream is being read
        self._initialize: Message | None = None
        self._capabilities: dict[str, Any] = {}
        self._subscriptions: set[str] = set()
        self._log_level: str | None = None
        self._asks: dict[str, Pending] = {}  # our requests to the host (2026-07-28 input requests)
        self._last_error = "no session yet"
        self._ids = itertools.count(1)
        self._outbox_send, self._outbox = anyio.create_memory_object_stream[Message](math.inf)
        self._tg: anyio.abc.TaskGroup | None = None

    # --- the host's messages ---------------------------------------------------------------------------------

    async def run(self, messages: AsyncIterator[Message | list[Any] | None]) -> None:
        """Serve the host until its stdin ends, then end the remote session."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self._send_in_order)
            async for item in messages:
                for message in item if isinstance(item, list) else [item]:
                    await self._from_host(message)
            tg.cancel_scope.cancel()
        await self.close()

    async def _from_host(self, message: Message | None) -> None:
        assert self._tg is not None
        if not isinstance(message, dict):
            self._write(error_reply(None, PARSE_ERROR, "a line from the host is not a JSON-RPC message"))
            return
        method, has_id = message.get("method"), "id" in message
        if method == "initialize" and has_id:
            self._tg.start_soon(self._open, message)
        elif method is not None and has_id:
            self._remember(message)
            self._tg.start_soon(self._call, message)
        elif method is None and has_id and message["id"] in self._asks:
            ask = self._asks[message["id"]]
            ask.reply = message
            ask.done.set()
        elif method == "notifications/initialized":
            await self._forward(message)  # before any later request: the remote may insist on the order
            self._start_listening()
        else:
            if method == "notifications/cancelled":
                self._cancelled((message.get("params") or {}).get("requestId"))
            self._outbox_send.send_nowait(message)

    def _remember(self, message: Message) -> None:
        """What a re-initialized session must be told again."""
        params = message.get("params") or {}
        if message["method"] == "resources/subscribe" and isinstance(params.get("uri"), str):
            self._subscriptions.add(params["uri"])
        elif message["method"] == "resources/unsubscribe":
            self._subscriptions.discard(params.get("uri"))
        elif message["method"] == "logging/setLevel" and isinstance(params.get("level"), str):
            self._log_level = params["level"]

    def _cancelled(self, request_id: Any) -> None:
        pending = self._pending.get(request_id)
        if pending is not None:
            pending.cancelled = True  # the host expects no reply any more
            pending.scope.cancel()

    # --- opening the session ---------------------------------------------------------------------------------

    async def _open(self, initialize: Message) -> None:
        if self._transport is not None:  # a second initialize: a new session replaces the old one
            old, self._transport = self._transport, None
            self._ready = anyio.Event()
            await old.close()
        self._initialize = initialize
        try:
            transport, reply = await self._handshake(initialize)
        except RemoteError as exc:
            self._last_error = str(exc)
            log.error("remote_unavailable", url=self.settings.url, reason=str(exc))
            self._write(error_reply(initialize["id"], REMOTE_UNAVAILABLE, f"cannot open a session: {exc}"))
            return
        self._write(reply)
        if "result" in reply:
            self._install(transport, reply)
        else:
            await transport.close()

    async def _handshake(self, initialize: Message) -> tuple[Transport, Message]:
        """Open a session, trying Streamable HTTP first unless a transport is fixed or already known.

        Raises:
            RemoteError: neither transport opened a session.
        """
        kind = self._kind or self.settings.transport
        if kind == ModernHTTP.name or (kind != "sse" and self._kind is None and self.settings.era != "legacy"):
            modern = ModernHTTP(self._client, self.settings.url, self._deliver, self.ask_host)
            try:
                return modern, await modern.handshake(initialize)
            except NotModern as exc:
                if self.settings.era == "modern" or kind == ModernHTTP.name:
                    raise RemoteRefused(f"the remote does not speak 2026-07-28 ({exc})", exc.status) from None
                log.info("remote_speaks_the_handshake_era", url=self.settings.url, reason=str(exc))
        first: NotStreamable | None = None
        if kind in ("auto", "streamable-http"):
            streamable = StreamableHTTP(self._client, self.settings.url, self._deliver)
            try:
                return streamable, await streamable.handshake(initialize)
            except NotStreamable as exc:
                if kind == "streamable-http":
                    raise
                first = exc
                log.info("falling_back_to_sse", url=self.settings.url, reason=str(exc))
        legacy = LegacySSE(self._client, self.settings.url, self._deliver)
        try:
            return legacy, await legacy.handshake(initialize)
        except RemoteRefused as exc:
            if first is None:
                raise
            raise RemoteRefused(f"Streamable HTTP: {first}; legacy SSE: {exc}", first.status) from None

    def _install(self, transport: Transport, reply: Message) -> None:
        self._transport, self._kind = transport, transport.name
        self._capabilities = (reply.get("result") or {}).get("capabilities") or {}
        self._generation += 1
        self._ready.set()
        log.info("session_open", url=self.settings.url, transport=transport.name, version=transport.protocol_version)

    def _start_listening(self) -> None:
        if self._transport is not None and self._listening != self._generation and self._tg is not None:
            self._listening = self._generation
            self._tg.start_soon(self._listen, self._transport, self._generation)

    async def _listen(self, transport: Transport, generation: int) -> None:
        try:
            await transport.listen()
        except RemoteError as exc:
            self._recover(generation, str(exc))

    # --- losing it and opening it again ------------------------------------------------------------------------

    def _recover(self, generation: int, reason: str) -> None:
        """The session of `generation` is gone: answer what it still owed, re-initialize in the background."""
        if generation != self._generation or self._recovering or self._initialize is None or self._tg is None:
            return
        log.warning("session_lost", url=self.settings.url, reason=reason)
        self._recovering, self._last_error = True, reason
        self._ready = anyio.Event()
        old, self._transport = self._transport, None
        for pending in list(self._pending.values()):
            if pending.sent and pending.generation == generation:
                self._fail(pending, CONNECTION_LOST, f"the session was lost before the reply ({reason}); not resent")
        self._tg.start_soon(self._reinitialize, old)

    async def _reinitialize(self, old: Transport | None) -> None:
        assert self._initialize is not None
        if old is not None:
            await old.close()
        for attempt in itertools.count():
            replay = {**self._initialize, "id": f"harbor-connect-initialize-{next(self._ids)}"}
            try:
                transport, reply = await self._handshake(replay)
                if "result" not in reply:
                    raise RemoteRefused(f"the remote refused initialize: {reply.get('error')}", 0)
                await transport.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
                break
            except RemoteError as exc:
                self._last_error = str(exc)
                log.info("reinitialize_failed", url=self.settings.url, reason=str(exc), attempt=attempt)
                await anyio.sleep(backoff(attempt))
        self._install(transport, reply)
        self._recovering = False
        self._start_listening()
        await self._replay()

    async def _replay(self) -> None:
        assert self._tg is not None
        if self._log_level:
            self._tg.start_soon(self._call, self._internal("logging/setLevel", {"level": self._log_level}), False)
        for uri in sorted(self._subscriptions):
            self._tg.start_soon(self._call, self._internal("resources/subscribe", {"uri": uri}), False)
        for capability, notification in LIST_CHANGED.items():
            if (self._capabilities.get(capability) or {}).get("listChanged"):
                self._write({"jsonrpc": "2.0", "method": notification})

    def _internal(self, method: str, params: dict[str, Any]) -> Message:
        return {"jsonrpc": "2.0", "id": f"harbor-connect-{next(self._ids)}", "method": method, "params": params}

    async def ask_host(self, method: str, params: dict[str, Any]) -> Message:
        """Send the host a request of ours (a 2026-07-28 remote's input request); its reply, when it comes.

        Runs inside the call that needs it, so that call's deadline and cancellation bound the wait.
        """
        request_id = f"harbor-connect-ask-{next(self._ids)}"
        ask = self._asks[request_id] = Pending(request_id)
        try:
            self._write({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
            await ask.done.wait()
            assert ask.reply is not None
            return ask.reply
        finally:
            self._asks.pop(request_id, None)

    # --- requests ----------------------------------------------------------------------------------------------

    async def _call(self, message: Message, forward: bool = True) -> None:
        request_id = message["id"]
        if request_id in self._pending:
            self._write(error_reply(request_id, INVALID_REQUEST, f"id {request_id!r} is already in flight"))
            return
        pending = self._pending[request_id] = Pending(request_id, forward=forward)
        token = ((message.get("params") or {}).get("_meta") or {}).get("progressToken")
        if token is not None:
            self._progress[token] = request_id
        try:
            with pending.scope:
                pending.scope.deadline = anyio.current_time() + self.settings.timeout
                await self._send_request(message, pending)
                await pending.done.wait()
            if not pending.done.is_set() and not pending.cancelled:
                self._outbox_send.send_nowait(_cancel(request_id, "timeout"))
                self._fail(pending, REQUEST_TIMEOUT, f"no reply within --timeout {self.settings.timeout:g} s")
        except CallLost as exc:
            self._fail(pending, CONNECTION_LOST, str(exc))
        except RemoteError as exc:
            self._fail(pending, REMOTE_UNAVAILABLE, str(exc))
        finally:
            self._pending.pop(request_id, None)
            if token is not None:
                self._progress.pop(token, None)

    async def _send_request(self, message: Message, pending: Pending) -> None:
        """Send once; retry only what certainly did not run (no connection, or a session the remote lost).

        Raises:
            RemoteError: no session within the grace period, or the transport's fault.
        """
        grace = anyio.current_time() + min(RECONNECT_GRACE, self.settings.timeout)
        for attempt in itertools.count():
            transport, generation = await self._session(grace)
            pending.generation = generation
            try:
                await transport.request(message)
                pending.sent = True
                return
            except SessionLost as exc:
                self._recover(generation, str(exc))
            except RemoteUnreachable as exc:
                self._last_error = str(exc)
                if anyio.current_time() >= grace:
                    raise
                await anyio.sleep(backoff(attempt))

    async def _session(self, deadline: float) -> tuple[Transport, int]:
        """The open session, waiting for a re-initialize in progress until `deadline`.

        Raises:
            RemoteUnreachable: no session by then; the message carries the last error.
        """
        while self._transport is None or not self._ready.is_set():
            if self._initialize is None:
                raise RemoteUnreachable("the host has not sent initialize yet")
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                raise RemoteUnreachable(
                    f"{self.settings.url} is unreachable, still reconnecting with backoff ({self._last_error})"
                )
            with anyio.move_on_after(remaining):
                await self._ready.wait()
        return self._transport, self._generation

    def _fail(self, pending: Pending, code: int, message: str) -> None:
        if not pending.done.is_set() and not pending.cancelled:
            if pending.forward:
                self._write(error_reply(pending.id, code, message))
            else:
                log.warning("replay_failed", id=pending.id, reason=message)
        pending.done.set()

    # --- the remote's messages ---------------------------------------------------------------------------------

    def _deliver(self, message: Message) -> None:
        """Every message from the remote, from any stream, exactly once."""
        if "method" not in message:
            pending = self._pending.get(message.get("id"))
            if pending is None or pending.done.is_set():
                log.info("late_reply_dropped", id=message.get("id"))
                return
            pending.reply = message
            pending.done.set()
            if pending.forward and not pending.cancelled:
                self._write(message)
            return
        if message["method"] == "notifications/progress":
            request_id = self._progress.get((message.get("params") or {}).get("progressToken"))
            if request_id in self._pending:
                self._pending[request_id].scope.deadline = anyio.current_time() + self.settings.timeout
        self._write(message)

    # --- notifications and replies to the remote -----------------------------------------------------------

    async def _send_in_order(self) -> None:
        async with self._outbox:
            async for message in self._outbox:
                await self._forward(message)

    async def _forward(self, message: Message) -> None:
        try:
            transport, generation = await self._session(anyio.current_time() + RECONNECT_GRACE)
        except RemoteUnreachable as exc:
            log.warning("message_dropped", method=message.get("method"), reason=str(exc))
            return
        try:
            await transport.send(message)
        except SessionLost as exc:
            self._recover(generation, str(exc))
            log.warning("message_dropped", method=message.get("method"), reason=str(exc))
        except RemoteError as exc:
            log.warning("message_dropped", method=message.get("method"), reason=str(exc))

    async def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(3):
                await transport.close()


def _cancel(request_id: Any, reason: str) -> Message:
    params = {"requestId": request_id, "reason": reason}
    return {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params}
