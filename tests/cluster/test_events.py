"""gateway.cluster.events on a real redis-server: bounded replay with loss detection, one multiplexing reader."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateway.cluster.connection import connect
from gateway.cluster.events import Events, Reader
from tests.cluster.harness import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


def _note(i: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": i}}


class Inbox:
    """What a GET stream would receive: events in order, and a way to wait for n of them."""

    def __init__(self, keep: bool = True) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.arrived: list[float] = []
        self.keep = keep
        self.gaps = 0
        self._changed = asyncio.Event()

    def deliver(self, event_id: str, message: dict[str, Any]) -> bool:
        self.events.append((event_id, message))
        self.arrived.append(time.perf_counter())
        self._changed.set()
        return self.keep

    def gap(self, _session: str) -> None:
        self.gaps += 1

    async def wait(self, count: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()

    @property
    def data(self) -> list[int]:
        return [m["params"]["data"] for _, m in self.events]


async def test_after_returns_what_followed_an_event_id(redis_client: aioredis.Redis, namespace: str) -> None:
    events = Events(redis_client, namespace, maxlen=100, ttl=30)
    ids = [await events.append("s1", _note(i)) for i in range(5)]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    got = await events.after("s1", ids[1])
    assert got == [(ids[i], _note(i)) for i in (2, 3, 4)]
    assert await events.after("s1", ids[4]) == []
    assert await events.after("s1", "0-0") == [(ids[i], _note(i)) for i in range(5)]
    assert await events.last_id("s1") == ids[4]
    assert await events.last_id("nothing") == "0-0"
    assert await events.after("nothing", ids[0]) == []


async def test_after_says_none_when_events_were_trimmed(redis_client: aioredis.Redis, namespace: str) -> None:
    events = Events(redis_client, namespace, maxlen=10, ttl=30)
    ids = [await events.append("s1", _note(i)) for i in range(400)]  # MAXLEN ~ trims whole nodes of 100
    kept = await redis_client.xlen(f"harbor:{namespace}:events:s1")
    assert 10 <= kept < 400  # bounded
    assert await events.after("s1", ids[0]) is None  # its successors are gone: the client must be told
    first_kept = len(ids) - kept
    assert await events.after("s1", ids[first_kept - 1]) == [(ids[i], _note(i)) for i in range(first_kept, 400)]
    assert await events.after("s1", ids[first_kept]) is not None


async def test_after_says_none_when_redis_lost_the_events(
    start_redis: Callable[..., RedisServer], namespace: str
) -> None:
    server = start_redis()
    redis = await connect(server.url)
    events = Events(redis, namespace, maxlen=100, ttl=30)
    seen = await events.append("s1", _note(0))
    await events.append("s1", _note(1))  # never seen by the client, then lost with a restart
    server.kill()
    server.start()
    await events.append("s1", _note(2))
    assert await events.after("s1", seen) is None
    await redis.aclose()


async def test_a_malformed_last_event_id_is_refused(redis_client: aioredis.Redis, namespace: str) -> None:
    events = Events(redis_client, namespace, ttl=30)
    with pytest.raises(ValueError, match="not an event id of this gateway"):
        await events.after("s1", "abc")
    with pytest.raises(ValueError, match="not an event id"):
        await events.after("s1", "12-3-4")


async def test_the_stream_expires_when_idle(redis_client: aioredis.Redis, namespace: str) -> None:
    events = Events(redis_client, namespace, ttl=0.2)
    await events.append("s1", _note(0))
    await asyncio.sleep(0.3)
    assert not await redis_client.exists(f"harbor:{namespace}:events:s1")


async def test_one_reader_delivers_every_followed_session_in_order(
    redis_client: aioredis.Redis, namespace: str
) -> None:
    events = Events(redis_client, namespace, ttl=30)
    reader = Reader(redis_client, namespace, "r1", block=5.0)
    reader.start()
    inboxes = {f"s{i}": Inbox() for i in range(20)}
    try:
        for sid, inbox in inboxes.items():
            reader.follow(sid, await events.last_id(sid), inbox.deliver)
        for n in range(10):
            await asyncio.gather(*(events.append(sid, _note(n)) for sid in inboxes))
        for inbox in inboxes.values():
            await inbox.wait(10)
        assert all(inbox.data == list(range(10)) for inbox in inboxes.values())
        ids = [event_id for event_id, _ in inboxes["s3"].events]
        assert await events.after("s3", ids[4]) == inboxes["s3"].events[5:]  # the ids are the SSE event ids
    finally:
        await reader.stop()


async def test_a_follow_wakes_the_blocked_read_at_once(redis_client: aioredis.Redis, namespace: str) -> None:
    events = Events(redis_client, namespace, ttl=30)
    reader = Reader(redis_client, namespace, "r1", block=10.0)  # without the wake, a new key waits 10 s
    reader.start()
    try:
        await asyncio.sleep(0.2)  # the reader is blocked in XREAD on the wake stream alone
        inbox = Inbox()
        reader.follow("late", await events.last_id("late"), inbox.deliver)
        await events.append("late", _note(1))
        started = time.monotonic()
        await inbox.wait(1, timeout=5)
        assert time.monotonic() - started < 1.0
    finally:
        await reader.stop()


async def test_follow_from_a_last_event_id_replays_then_continues(redis_client: aioredis.Redis, namespace: str) -> None:
    events = Events(redis_client, namespace, ttl=30)
    ids = [await events.append("s1", _note(i)) for i in range(3)]
    reader = Reader(redis_client, namespace, "r2")
    reader.start()
    try:
        inbox = Inbox()
        reader.follow("s1", ids[0], inbox.deliver)
        await events.append("s1", _note(3))
        await inbox.wait(3)
        assert inbox.data == [1, 2, 3]
        now_only = Inbox()
        reader.follow("s2", None, now_only.deliver)  # None: from about now on
        await asyncio.sleep(0.2)
        await events.append("s2", _note(9))
        await now_only.wait(1)
        assert now_only.data == [9]
    finally:
        await reader.stop()


async def test_unfollow_and_a_false_delivery_stop_the_follow(redis_client: aioredis.Redis, namespace: str) -> None:
    events = Events(redis_client, namespace, ttl=30)
    reader = Reader(redis_client, namespace, "r3")
    reader.start()
    try:
        closing, leaving, staying = Inbox(keep=False), Inbox(), Inbox()
        for sid, inbox in (("a", closing), ("b", leaving), ("c", staying)):
            reader.follow(sid, "0-0", inbox.deliver)
        for i in range(3):
            for sid in "abc":
                await events.append(sid, _note(i))
        await staying.wait(3)
        reader.unfollow("b")
        for sid in "abc":
            await events.append(sid, _note(3))
        await staying.wait(4)
        assert closing.data == [0]  # returned False on the first: no more deliveries
        assert leaving.data == [0, 1, 2]
        assert reader.following == frozenset({"c"})
    finally:
        await reader.stop()


async def test_the_reader_resumes_after_redis_restarts(start_redis: Callable[..., RedisServer], namespace: str) -> None:
    server = start_redis()
    redis = await connect(server.url, timeout=0.5)
    events = Events(redis, namespace, ttl=30)
    reader = Reader(redis, namespace, "r4", block=0.5)
    reader.start()
    inbox = Inbox()
    try:
        reader.follow("s1", "0-0", inbox.deliver, on_gap=inbox.gap)
        await events.append("s1", _note(0))
        await inbox.wait(1)
        server.kill()
        await asyncio.sleep(0.3)
        server.start()
        async with asyncio.timeout(5):
            while True:  # appends fail until the pool has reconnected
                try:
                    await events.append("s1", _note(1))
                    break
                except Exception:
                    await asyncio.sleep(0.05)
        await inbox.wait(2)
        assert inbox.data == [0, 1]
        assert inbox.gaps == 1  # the restart lost the stream: the chain says so
        server.pause()
        await asyncio.sleep(1.5)  # longer than block + socket timeout: the reader times out, not hangs
        server.resume()
        await events.append("s1", _note(2))
        await inbox.wait(3)
        assert inbox.data == [0, 1, 2] and inbox.gaps == 1
    finally:
        server.resume()
        await reader.stop()
        await redis.aclose()


async def test_append_to_deliver_latency_on_loopback(redis_client: aioredis.Redis, namespace: str) -> None:
    events = Events(redis_client, namespace, ttl=30)
    reader = Reader(redis_client, namespace, "bench")
    reader.start()
    try:
        inbox = Inbox()
        reader.follow("s1", await events.last_id("s1"), inbox.deliver)
        await asyncio.sleep(0.1)
        samples = []
        for i in range(300):
            started = time.perf_counter()
            await events.append("s1", _note(i))
            await inbox.wait(i + 1)
            samples.append(inbox.arrived[-1] - started)
        samples.sort()
        p50, p99 = statistics.median(samples) * 1000, samples[int(len(samples) * 0.99)] * 1000
        print(f"\nappend→deliver p50 {p50:.3f} ms, p99 {p99:.3f} ms (loopback, one reader)")
        assert p50 < 10.0
    finally:
        await reader.stop()
