"""A stdio MCP server as an upstream: one child process, JSON-RPC lines on its stdin and stdout.

The child is spawned without a shell (the command is already a list), in its own process group, with the
environment it is given and nothing else (callers build it with `gateway.core.environment.child_environment`:
the gateway's own variables never leak to a child that did not ask for them), with stdout read through a
`LineSplitter` so an oversized line costs one error, not the session. Its stderr
is copied to ours line by line, prefixed with the server's name. Messages arrive through an asyncio
subprocess protocol: no reader task, no extra hop between the pipe and the router.

Shutdown order (as the MCP SDK's stdio client): close stdin and wait `CLOSE_GRACE` seconds for the child
to exit by itself, then SIGTERM and wait `TERM_GRACE`, then SIGKILL. A child that exits on its own is
reported through `Listener.upstream_closed` once its stdout is drained (or `DRAIN_GRACE` after exit, for
children whose grandchildren keep the pipe open).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections import deque
from collections.abc import Mapping, Sequence

from gateway.core import jsonrpc
from gateway.core.environment import child_environment
from gateway.core.errors import ParseError, ProtocolError, UpstreamError
from gateway.core.framing import LineSplitter
from gateway.core.jsonrpc import Message
from gateway.upstream.base import Listener

CLOSE_GRACE = 2.0
TERM_GRACE = 2.0
QUICK_GRACE = 0.3  # when the gateway itself is stopping (it must exit within a second): stdin closed and
# SIGTERM at once, SIGKILL after this many seconds
DRAIN_GRACE = 0.2
MAX_STDIN_BACKLOG = 64 * 1024 * 1024  # bytes queued for a child that stopped reading its stdin
STDERR_TAIL = 5  # last stderr lines kept to explain a failed start
_STDERR_LINE_LIMIT = 64 * 1024


class StdioUpstream:
    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        max_message_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        if not argv:
            raise ValueError("the stdio command is empty")
        self.argv = list(argv)
        self.name = name
        self.env = dict(env) if env is not None else child_environment()
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL)  # what it said last, for failure reports
        self.cwd = cwd
        self.max_message_bytes = max_message_bytes
        self.pid: int | None = None
        self._transport: asyncio.SubprocessTransport | None = None
        self._stdin: asyncio.WriteTransport | None = None
        self._protocol: _ChildProtocol | None = None

    async def start(self, listener: Listener) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _ChildProtocol(self, listener),
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise UpstreamError(f"cannot start {self.argv[0]!r}: {exc.strerror or exc}") from None
        self._transport, self._protocol = transport, protocol
        self._stdin = transport.get_pipe_transport(0)  # type: ignore[assignment]
        self.pid = transport.get_pid()

    def send(self, message: Message) -> None:
        stdin = self._stdin
        if stdin is None or stdin.is_closing():
            raise UpstreamError(f"the {self.name} server is not running")
        if stdin.get_write_buffer_size() > MAX_STDIN_BACKLOG:
            raise UpstreamError(f"the {self.name} server is not reading its input; message refused")
        stdin.write(jsonrpc.encode(message) + b"\n")

    async def close(self, quick: bool = False) -> None:
        """Stop the child (see the shutdown order above); `quick` waits `QUICK_GRACE` at each step instead."""
        transport, protocol = self._transport, self._protocol
        if transport is None or protocol is None:
            return
        self._stdin = None
        with contextlib.suppress(Exception):
            transport.get_pipe_transport(0).close()  # type: ignore[union-attr]
        steps: tuple[tuple[signal.Signals | None, float], ...] = (
            (None, CLOSE_GRACE),
            (signal.SIGTERM, TERM_GRACE),
            (signal.SIGKILL, CLOSE_GRACE),
        )
        if quick:  # the gateway is exiting: no time to wait for an orderly exit, only for the signal to land
            steps = ((signal.SIGTERM, QUICK_GRACE), (signal.SIGKILL, QUICK_GRACE))
        for sig, grace in steps:
            if sig is not None:
                self._signal_group(sig)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(protocol.exited), grace)
                break
        transport.close()

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)


class _ChildProtocol(asyncio.SubprocessProtocol):
    """Pipes of one child → Listener calls. Runs entirely in event-loop callbacks."""

    def __init__(self, owner: StdioUpstream, listener: Listener) -> None:
        self._owner = owner
        self._listener = listener
        self._stdout = LineSplitter(owner.max_message_bytes, self._line, self._oversize)
        self._stderr = LineSplitter(_STDERR_LINE_LIMIT, self._log_line, lambda *_: None)
        self._prefix = f"[{owner.name}] ".encode()
        self._stdout_closed = False
        self._reported = False
        self.exited: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        (self._stdout if fd == 1 else self._stderr).feed(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self._stdout_closed = True
            if self.exited.done():
                self._report()

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)
        if self._stdout_closed:
            self._report()
        else:
            asyncio.get_running_loop().call_later(DRAIN_GRACE, self._report)

    def _report(self) -> None:
        if self._reported:
            return
        self._reported = True
        transport = self._owner._transport
        code = transport.get_returncode() if transport is not None else None
        self._owner._stdin = None
        self._listener.upstream_closed(_describe_exit(code))

    def _line(self, line: bytes) -> None:
        try:
            message = jsonrpc.decode(line)
            jsonrpc.classify(message)
        except (ParseError, ProtocolError) as exc:
            self._listener.frame_invalid(line, exc.message)
            return
        self._listener.message_received(message)

    def _oversize(self, head: bytes, tail: bytes, size: int) -> None:
        self._listener.frame_too_large(jsonrpc.sniff_id(head, tail), size)

    def _log_line(self, line: bytes) -> None:
        text = line.rstrip(b"\r").decode(errors="replace").strip()
        if text:
            self._owner.stderr_tail.append(text[:300])
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.buffer.write(self._prefix + line.rstrip(b"\r") + b"\n")
            sys.stderr.buffer.flush()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "the process closed its output"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"the process was killed by {signal.Signals(-code).name}"
    return f"the process exited with code {code}"
