"""The host's side of `harbor-connect`: newline-delimited JSON-RPC on stdin and stdout.

stdout carries protocol only: every frame written here is one compact JSON line, written by one task in
the order the bridge handed them over, and nothing else in the process writes to stdout (logs go to stderr).
Lines are read whole whatever their size (no 64 KB readline limit): a multi-megabyte message is one line.
Blocking file I/O runs on threads so a slow host never stalls the event loop.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import AsyncIterator
from typing import IO, Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import orjson
import structlog

Message = dict[str, Any]
READ_SIZE = 1 << 16

log = structlog.get_logger("gateway.connect")


class Host:
    def __init__(self, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self._stdin = stdin
        self._stdout = stdout
        self._send, self._receive = anyio.create_memory_object_stream[bytes](math.inf)
        self._unwritten = 0

    async def messages(self) -> AsyncIterator[Message | list[Any] | None]:
        """Each decoded line (a message, or a batch as a list); None for a line that is not JSON. Ends at EOF.

        A daemon thread reads stdin's file descriptor (not the buffered file, whose lock a blocked read would hold
        at interpreter shutdown), so a process told to stop (SIGTERM) never waits on the host.
        """
        send, receive = anyio.create_memory_object_stream[bytes](64)
        token = anyio.lowlevel.current_token()

        def read() -> None:
            pending = b""
            try:
                while chunk := os.read(self._stdin.fileno(), READ_SIZE):
                    *lines, pending = (pending + chunk).split(b"\n")
                    for line in lines:
                        anyio.from_thread.run(send.send, line, token=token)
                if pending.strip():
                    anyio.from_thread.run(send.send, pending, token=token)
            except (OSError, ValueError, RuntimeError):
                pass  # stdin closed under us, or the loop is gone: either way the host is
            with contextlib.suppress(RuntimeError):
                anyio.from_thread.run_sync(send.close, token=token)

        threading.Thread(target=read, name="harbor-connect-stdin", daemon=True).start()
        async for line in receive:
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                log.warning("host_line_not_json", reason=str(exc), line=line[:200])
                yield None
                continue
            yield value if isinstance(value, dict | list) else None

    def write(self, message: Message) -> None:
        """Queue one message for the host; never blocks."""
        self._unwritten += 1
        self._send.send_nowait(orjson.dumps(message) + b"\n")

    async def run_writer(self) -> None:
        """Write queued frames in order, a batch of what is waiting per system call, until cancelled."""
        async with self._receive:
            async for frame in self._receive:
                frames = [frame]
                while True:
                    try:
                        frames.append(self._receive.receive_nowait())
                    except anyio.WouldBlock:
                        break
                await anyio.to_thread.run_sync(self._flush, b"".join(frames))
                self._unwritten -= len(frames)

    def _flush(self, data: bytes) -> None:
        try:
            self._stdout.write(data)
            self._stdout.flush()
        except (BrokenPipeError, ValueError):
            pass  # the host closed its end: it reads no more; stdin's end stops the process

    async def drain(self) -> None:
        """Wait (briefly) until every queued frame is written: used before exiting."""
        with anyio.move_on_after(2):
            while self._unwritten:
                await anyio.sleep(0.01)
