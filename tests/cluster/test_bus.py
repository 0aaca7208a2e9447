"""gateway.cluster.bus on a real redis-server: inboxes, broadcasts, handler failures, reconnection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateway.cluster.bus import Bus
from gateway.cluster.connection import connect
from tests.cluster.harness import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


class Heard:
    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._changed = asyncio.Event()

    def __call__(self, sender: str, payload: dict[str, Any]) -> None:
        self.messages.append((sender, payload))
        self._changed.set()

    async def wait(self, count: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
async def buses(redis_client: aioredis.Redis, namespace: str) -> AsyncIterator[list[Bus]]:
    started = [Bus(redis_client, namespace, name) for name in ("a", "b", "c")]
    for bus in started:
        bus.start()
    async with asyncio.timeout(5):
        for bus in started:
            await bus.ready.wait()
    yield started
    for bus in started:
        await bus.stop()


async def test_send_reaches_one_replica_only(buses: list[Bus]) -> None:
    a, b, c = buses
    heard_b, heard_c = Heard(), Heard()
    b.on("cancel", heard_b)
    c.on("cancel", heard_c)
    assert await a.send("b", "cancel", {"request": 7}) == 1
    await heard_b.wait(1)
    assert heard_b.messages == [("a", {"request": 7})]
    await asyncio.sleep(0.1)
    assert heard_c.messages == []


async def test_send_to_a_dead_replica_reports_no_receiver(buses: list[Bus]) -> None:
    assert await buses[0].send("nobody", "cancel", {}) == 0


async def test_broadcast_reaches_every_other_replica(buses: list[Bus]) -> None:
    a = buses[0]
    heard = {bus.id: Heard() for bus in buses}
    for bus in buses:
        bus.on("session-deleted", heard[bus.id])
    assert await a.broadcast("session-deleted", {"session": "s1"}) == 3
    await heard["b"].wait(1)
    await heard["c"].wait(1)
    await asyncio.sleep(0.1)
    assert heard["a"].messages == []  # not its own
    assert heard["b"].messages == heard["c"].messages == [("a", {"session": "s1"})]


async def test_a_failing_handler_is_logged_and_the_bus_goes_on(buses: list[Bus]) -> None:
    a, b, _ = buses
    heard = Heard()

    def broken(sender: str, payload: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    async def slow_then_broken(sender: str, payload: dict[str, Any]) -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("async handler bug")

    b.on("broken", broken)
    b.on("async-broken", slow_then_broken)
    b.on("ok", heard)
    await a.send("b", "broken", {})
    await a.send("b", "async-broken", {})
    await a.send("b", "unknown-kind", {})
    await a.send("b", "ok", {"n": 1})
    await heard.wait(1)
    assert heard.messages == [("a", {"n": 1})]


async def test_the_bus_resubscribes_after_redis_restarts(
    start_redis: Callable[..., RedisServer], namespace: str
) -> None:
    server = start_redis()
    redis = await connect(server.url, timeout=0.5)
    a, b = Bus(redis, namespace, "a"), Bus(redis, namespace, "b")
    heard = Heard()
    b.on("ping", heard)
    for bus in (a, b):
        bus.start()
    try:
        async with asyncio.timeout(5):
            await b.ready.wait()
        server.kill()
        server.start()
        async with asyncio.timeout(10):
            while await _send(a, "b") == 0:  # until b listens again
                await asyncio.sleep(0.05)
        await heard.wait(1)
    finally:
        await a.stop()
        await b.stop()
        await redis.aclose()


async def _send(bus: Bus, target: str) -> int:
    try:
        return await bus.send(target, "ping", {})
    except Exception:
        return 0
