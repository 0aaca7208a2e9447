"""Resumable POST streams, driven directly: parking, replay after an id, expiry, and the replay cap."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from gateway.session.client import ClientSession
from gateway.transports import _resumable
from gateway.transports._outbox import SSEOutbox
from gateway.transports._resumable import ResumableStream, find

pytestmark = pytest.mark.anyio


def _progress(n: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "t", "progress": n}}


REPLY = {"jsonrpc": "2.0", "id": 7, "result": {"content": []}}


def _stream() -> tuple[ClientSession, SSEOutbox, ResumableStream, list[str]]:
    session, outbox, released = ClientSession("streamable-http"), SSEOutbox("s"), []
    session.streams[7] = outbox
    stream = ResumableStream(session, outbox, lambda: released.append("released"))
    stream.waiting.add(7)
    return session, outbox, stream, released


def _payloads(events: list[Any]) -> list[Any]:
    return [json.loads(e.data)["params"]["progress"] if "params" in json.loads(e.data) else "reply" for e in events]


async def test_a_finished_stream_is_released_not_parked() -> None:
    session, outbox, stream, released = _stream()
    for message in (_progress(1), REPLY):
        outbox.put(message)
    events = [event async for event in stream.events(None)]
    stream.after_response()
    assert events[0].id == f"{stream.key}-0" and events[0].retry == _resumable.RETRY_MS  # priming
    assert _payloads(events[1:]) == [1, "reply"]
    assert released == ["released"] and session.resumable == {}


async def test_a_dropped_stream_is_parked_resumed_after_the_id_and_then_released() -> None:
    session, outbox, stream, released = _stream()
    outbox.put(_progress(1))
    outbox.put(_progress(2))
    live = stream.events(None)
    seen = [await live.__anext__() for _ in range(3)]  # priming, progress 1, progress 2
    await live.aclose()  # the connection drops
    stream.after_response()
    assert released == [] and session.resumable == {stream.key: stream}
    assert outbox.put(_progress(3)) and outbox.put(REPLY)  # still queueing while parked
    resumed_at = find(session, seen[1].id)  # the client saw progress 1 only
    assert resumed_at == (stream, 1)
    replay = [event async for event in stream.events(1)]
    assert _payloads(replay) == [2, 3, "reply"]
    assert [e.id for e in replay] == [f"{stream.key}-{n}" for n in (2, 3, 4)]
    stream.after_response()
    assert released == ["released"] and find(session, seen[1].id) is None


async def test_a_parked_stream_nobody_resumes_is_released_after_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_resumable, "RESUME_WINDOW", 0.05)
    session, outbox, stream, released = _stream()
    outbox.put(_progress(1))
    live = stream.events(None)
    await live.__anext__()
    await live.__anext__()
    await live.aclose()
    stream.after_response()
    with anyio.fail_after(2):
        while not released:
            await anyio.sleep(0.01)
    assert session.resumable == {}


async def test_ids_it_did_not_issue_resume_nothing() -> None:
    session, _, stream, _ = _stream()
    session.resumable[stream.key] = stream
    for last_event_id in ("", "12", f"{stream.key}-", f"{stream.key}-x", f"{stream.key}-5", "999-0"):
        assert find(session, last_event_id) is None, last_event_id


async def test_past_the_replay_cap_a_stream_keeps_no_more_and_is_not_parked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_resumable, "MAX_EVENTS", 3)
    session, outbox, stream, released = _stream()
    for n in range(1, 6):
        outbox.put(_progress(n))
    live = stream.events(None)
    events = [await live.__anext__() for _ in range(6)]  # priming + 5 progress events, all delivered
    await live.aclose()
    stream.after_response()
    assert _payloads(events[1:]) == [1, 2, 3, 4, 5]
    assert stream.sent[3:] == ["", ""]  # only the first 3 kept for replay
    assert released == ["released"] and session.resumable == {}
