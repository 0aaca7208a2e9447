"""Children take turns to start: at most STARTS_AT_ONCE handshakes at a time, the first ready after one start
time, a hung start holding its turn no longer than TURN_MAX, and the wait for a turn reported as such."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.core.errors import UpstreamError
from gateway.core.jsonrpc import Message
from gateway.upstream import start_turns
from gateway.upstream.child import Child
from gateway.upstream.memory import MemoryUpstream, echo_server

pytestmark = pytest.mark.anyio

INIT: Message = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}


class SlowStarts:
    """Upstreams whose initialize takes `seconds` (or never comes, for `hung`), counting handshakes at once."""

    def __init__(self, seconds: float, hung: bool = False) -> None:
        self.seconds, self.hung = seconds, hung
        self.at_once = self.most = 0

    def spawn(self) -> MemoryUpstream:
        async def respond(message: Message) -> list[Message]:
            if message.get("method") != "initialize":
                return echo_server(message)
            self.at_once += 1
            self.most = max(self.most, self.at_once)
            try:
                await asyncio.sleep(3600 if self.hung else self.seconds)
            finally:
                self.at_once -= 1
            return echo_server(message)

        return MemoryUpstream(respond)


def _child(spawn: SlowStarts, startup_timeout: float = 30.0) -> Child:
    def ignore(*_args: object) -> None:
        return None

    return Child(
        "slow",
        spawn.spawn,
        INIT,
        on_message=ignore,
        on_down=ignore,
        on_ready=ignore,
        on_frame_too_large=ignore,
        startup_timeout=startup_timeout,
    )


async def test_a_storm_of_starts_runs_a_few_at_a_time_and_the_first_is_ready_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(start_turns, "STARTS_AT_ONCE", 2)
    starts = SlowStarts(0.1)
    children = [_child(starts) for _ in range(6)]
    began = time.monotonic()
    ready_at: list[float] = []

    async def ready(child: Child) -> None:
        await child.wait_ready(30)
        ready_at.append(time.monotonic() - began)

    for child in children:
        child.start()
    await asyncio.gather(*(ready(c) for c in children))
    assert starts.most == 2  # never more than two handshakes under way
    assert min(ready_at) < 0.18  # the first two did not wait for the other four
    assert max(ready_at) >= 0.29  # three turns of two
    for child in children:
        await child.stop()


async def test_a_hung_start_holds_its_turn_no_longer_than_turn_max(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(start_turns, "STARTS_AT_ONCE", 1)
    monkeypatch.setattr(start_turns, "TURN_MAX", 0.2)
    hung = _child(SlowStarts(0, hung=True), startup_timeout=30)
    hung.start()
    await asyncio.sleep(0.01)
    quick = _child(SlowStarts(0.01))
    began = time.monotonic()
    quick.start()
    await quick.wait_ready(5)
    assert 0.15 < time.monotonic() - began < 1.0  # it waited for the turn cap, not the hung child's deadline
    assert hung.state == "starting"
    for child in (hung, quick):
        await child.stop()


async def test_waiting_for_a_turn_is_bounded_by_the_callers_timeout_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(start_turns, "STARTS_AT_ONCE", 1)
    first, second = _child(SlowStarts(0.5)), _child(SlowStarts(0.01))
    first.start()
    await asyncio.sleep(0.01)
    second.start()
    with pytest.raises(UpstreamError, match="waiting for its turn to start"):
        await second.wait_ready(0.1)
    await second.wait_ready(5)  # its turn came once the first was ready
    assert first.state == second.state == "ready"
    for child in (first, second):
        await child.stop()


async def test_a_child_stopped_while_waiting_for_its_turn_wakes_its_waiters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(start_turns, "STARTS_AT_ONCE", 1)
    first, second = _child(SlowStarts(0, hung=True)), _child(SlowStarts(0.01))
    first.start()
    await asyncio.sleep(0.01)
    second.start()
    waiter = asyncio.ensure_future(second.wait_ready(30))
    await asyncio.sleep(0.05)
    await second.stop()
    with pytest.raises(UpstreamError, match="stopped"):
        await asyncio.wait_for(waiter, 1)
    await first.stop()
