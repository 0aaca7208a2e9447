"""Newline-delimited frames with a byte limit, as stdio MCP servers write them.

`LineSplitter` is fed raw chunks and calls back once per complete line. A line longer than the limit is
never buffered whole: its first and last bytes are kept (enough to recover a JSON-RPC id) and the rest
is skipped until the next newline, so one oversized message costs an error for its caller, not the
session. Chunks are collected in a list and joined once per line, so a large line costs linear time.
"""

from __future__ import annotations

from collections.abc import Callable

_KEEP = 512  # bytes kept from each end of an oversized line


class LineSplitter:
    def __init__(
        self,
        limit: int,
        on_line: Callable[[bytes], None],
        on_oversize: Callable[[bytes, bytes, int], None],
    ) -> None:
        self._limit = limit
        self._on_line = on_line
        self._on_oversize = on_oversize
        self._parts: list[bytes] = []
        self._size = 0
        self._skipping = False
        self._head = b""
        self._tail = b""

    def feed(self, data: bytes) -> None:
        start = 0
        while True:
            newline = data.find(b"\n", start)
            if newline < 0:
                self._hold(data[start:])
                return
            self._finish(data[start:newline])
            start = newline + 1

    def _hold(self, piece: bytes) -> None:
        if not piece:
            return
        if self._skipping:
            self._skip(piece)
            return
        self._parts.append(piece)
        self._size += len(piece)
        if self._size > self._limit:
            joined = b"".join(self._parts)
            self._parts, self._skipping = [], True
            self._head, self._tail = joined[:_KEEP], joined[-_KEEP:]

    def _skip(self, piece: bytes) -> None:
        self._size += len(piece)
        self._tail = (self._tail + piece)[-_KEEP:]

    def _finish(self, piece: bytes) -> None:
        if self._skipping:
            self._skip(piece)
            head, tail, size = self._head, self._tail, self._size
            self._reset()
            self._on_oversize(head, tail, size)
            return
        if self._parts:
            piece = b"".join(self._parts) + piece
        size = len(piece)
        self._reset()
        if size > self._limit:
            self._on_oversize(piece[:_KEEP], piece[-_KEEP:], size)
        elif piece.strip():
            self._on_line(piece)

    def _reset(self) -> None:
        self._parts, self._size, self._skipping = [], 0, False
        self._head = self._tail = b""
