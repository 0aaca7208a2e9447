from __future__ import annotations

from gateway.core.framing import LineSplitter


def collect(limit: int) -> tuple[LineSplitter, list[bytes], list[tuple[bytes, bytes, int]]]:
    lines: list[bytes] = []
    oversized: list[tuple[bytes, bytes, int]] = []
    return LineSplitter(limit, lines.append, lambda h, t, n: oversized.append((h, t, n))), lines, oversized


def test_lines_split_across_chunks_are_joined() -> None:
    splitter, lines, _ = collect(100)
    for chunk in (b'{"a":', b"1}\n{", b'"b":2}\n\n', b"{}"):
        splitter.feed(chunk)
    assert lines == [b'{"a":1}', b'{"b":2}']
    splitter.feed(b"\n")
    assert lines[-1] == b"{}"


def test_oversized_line_is_reported_once_and_the_next_line_survives() -> None:
    splitter, lines, oversized = collect(1000)
    big = b'{"jsonrpc":"2.0","id":5,"result":"' + b"x" * 5000 + b'"}'
    for i in range(0, len(big), 700):
        splitter.feed(big[i : i + 700])
    splitter.feed(b'\n{"ok":1}\n')
    assert lines == [b'{"ok":1}']
    assert len(oversized) == 1
    head, tail, size = oversized[0]
    assert size == len(big)
    assert head.startswith(b'{"jsonrpc":"2.0","id":5')
    assert tail.endswith(b'x"}')


def test_oversized_line_in_one_chunk_is_reported() -> None:
    splitter, lines, oversized = collect(10)
    splitter.feed(b"01234567890123\nabc\n")
    assert lines == [b"abc"]
    assert oversized[0][2] == 14


def test_large_line_under_the_limit_is_delivered_whole() -> None:
    splitter, lines, oversized = collect(10 * 1024 * 1024)
    payload = b"y" * (4 * 1024 * 1024)
    for i in range(0, len(payload), 65536):
        splitter.feed(payload[i : i + 65536])
    splitter.feed(b"\n")
    assert lines == [payload]
    assert not oversized
