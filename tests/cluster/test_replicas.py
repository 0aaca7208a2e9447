"""gateway.cluster.replicas on a real redis-server: heartbeats, death by silence, graceful leave, caching."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from gateway.cluster.connection import connect
from gateway.cluster.replicas import Replicas, new_replica_id
from tests.cluster.harness import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


def test_replica_ids_are_short_unique_and_colon_free() -> None:
    ids = {new_replica_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) <= 40 and ":" not in i and re.fullmatch(r"[\w.-]+-\d+-[0-9a-f]{6}", i) for i in ids)


async def test_members_are_the_live_replicas_with_their_detail(redis_client: aioredis.Redis, namespace: str) -> None:
    a = Replicas(redis_client, namespace, "a", "127.0.0.1:1001", interval=0.1, ttl=0.5)
    b = Replicas(redis_client, namespace, "b", "127.0.0.1:1002", interval=0.1, ttl=0.5)
    a.update(ready=True, sessions=3)
    a.start()
    b.start()
    try:
        async with asyncio.timeout(5):
            while len(await a.members()) < 2:
                await asyncio.sleep(0.02)
        members = await b.members()
        assert [(m.id, m.address) for m in members] == [("a", "127.0.0.1:1001"), ("b", "127.0.0.1:1002")]
        assert members[0].detail == {"ready": True, "sessions": 3}
        assert members[0].started <= members[0].last_seen
        a.update(ready=False, reason="child down")
        async with asyncio.timeout(5):
            while (await b.members())[0].detail.get("ready") is not False:
                await asyncio.sleep(0.02)
        assert (await b.members())[0].detail == {"ready": False, "reason": "child down", "sessions": 3}
    finally:
        await a.stop()
        await b.stop()


async def test_a_graceful_stop_disappears_at_once(redis_client: aioredis.Redis, namespace: str) -> None:
    a = Replicas(redis_client, namespace, "a", "h:1", interval=0.1, ttl=30)
    observer = Replicas(redis_client, namespace, "o", "h:2", cache=0)
    a.start()
    async with asyncio.timeout(5):
        while not await observer.alive("a"):
            await asyncio.sleep(0.02)
    await a.stop()
    assert await observer.alive("a") is False  # the ttl is 30 s: only the delete explains this
    assert await observer.members() == []


async def test_a_silent_replica_is_dead_after_its_ttl(redis_client: aioredis.Redis, namespace: str) -> None:
    a = Replicas(redis_client, namespace, "a", "h:1", interval=0.1, ttl=0.4)
    observer = Replicas(redis_client, namespace, "o", "h:2", cache=0)
    await a.beat()  # one heartbeat, then silence (as after SIGKILL)
    assert await observer.address("a") == "h:1"
    await asyncio.sleep(0.5)
    assert await observer.alive("a") is False
    assert await observer.members() == []
    assert await redis_client.smembers(f"harbor:{namespace}:replicas") == set()  # index pruned


async def test_alive_is_cached_for_half_a_second(redis_client: aioredis.Redis, namespace: str) -> None:
    a = Replicas(redis_client, namespace, "a", "h:1", interval=0.1, ttl=30)
    observer = Replicas(redis_client, namespace, "o", "h:2")
    await a.beat()
    assert await observer.alive("a") is True
    await redis_client.delete(f"harbor:{namespace}:replica:a")
    assert await observer.alive("a") is True  # cached
    await asyncio.sleep(0.55)
    assert await observer.alive("a") is False


def test_a_ttl_no_longer_than_the_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="must be longer than the interval"):
        Replicas(None, "ns", "a", "h:1", interval=1.0, ttl=1.0)  # type: ignore[arg-type]


async def test_heartbeats_resume_by_themselves_after_redis_restarts(
    start_redis: Callable[..., RedisServer], namespace: str
) -> None:
    server = start_redis()
    redis = await connect(server.url, timeout=0.5)
    a = Replicas(redis, namespace, "a", "h:1", interval=0.1, ttl=0.5)
    observer = Replicas(redis, namespace, "o", "h:2", cache=0)
    a.start()
    try:
        server.kill()
        await asyncio.sleep(0.3)  # beats fail meanwhile; the loop must not die
        server.start()
        async with asyncio.timeout(5):
            while not await observer.alive("a"):
                await asyncio.sleep(0.05)
    finally:
        await a.stop()
        await redis.aclose()
