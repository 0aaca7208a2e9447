"""gateway.cluster.records on a real redis-server: records, TTLs, the global cap, atomic updates."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from gateway.cluster.connection import connect
from gateway.cluster.keys import Keys
from gateway.cluster.records import SessionRecord, SessionRecords
from tests.cluster.harness import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


def _record(sid: str, **fields: object) -> SessionRecord:
    values: dict[str, object] = {
        "home": "r1",
        "owner": "alice",
        "protocol_version": "2025-06-18",
        "capabilities": {"roots": {"listChanged": True}},
        "client_info": {"name": "t", "version": "1"},
    }
    return SessionRecord(id=sid, **{**values, **fields})  # type: ignore[arg-type]


async def test_a_record_round_trips(redis_client: aioredis.Redis, namespace: str) -> None:
    records = SessionRecords(redis_client, namespace, ttl=30)
    record = _record("s1", subscriptions=["file:///a"], kind="sse", pinned=True, stream="r2")
    assert await records.create(record) is True
    assert await records.get("s1") == record
    assert await records.get("absent") is None
    assert await records.count() == 1


async def test_a_taken_id_is_refused(redis_client: aioredis.Redis, namespace: str) -> None:
    records = SessionRecords(redis_client, namespace, ttl=30)
    assert await records.create(_record("s1"))
    assert await records.create(_record("s1", owner="mallory")) is False
    got = await records.get("s1")
    assert got is not None and got.owner == "alice"


async def test_a_record_expires_after_its_ttl(redis_client: aioredis.Redis, namespace: str) -> None:
    records = SessionRecords(redis_client, namespace, ttl=0.3)
    await records.create(_record("s1"))
    await asyncio.sleep(0.45)
    assert await records.get("s1") is None
    assert await records.count() == 0
    assert await records.touch("s1") is False
    assert await records.update("s1", stream="r9") is False
    assert not await redis_client.exists(Keys(namespace).session("s1"))  # update did not resurrect it


async def test_touch_keeps_a_used_record_alive(redis_client: aioredis.Redis, namespace: str) -> None:
    records = SessionRecords(redis_client, namespace, ttl=0.5)
    await records.create(_record("s1"))
    for _ in range(8):  # 0.8 s of use, longer than the ttl
        await asyncio.sleep(0.1)
        assert await records.touch("s1") is True
    assert await records.get("s1") is not None


async def test_touch_writes_at_most_once_per_tenth_of_the_ttl(redis_client: aioredis.Redis, namespace: str) -> None:
    records = SessionRecords(redis_client, namespace, ttl=100)  # touch writes at most every 10 s
    await records.create(_record("s1"))
    key = Keys(namespace).session("s1")
    await redis_client.pexpire(key, 50_000)
    for _ in range(200):
        assert await records.touch("s1") is True
    assert await redis_client.pttl(key) <= 50_000  # none of the 200 calls reached Redis
    other = SessionRecords(redis_client, namespace, ttl=100)  # another replica does write once
    assert await other.touch("s1") is True
    assert await redis_client.pttl(key) > 90_000


async def test_update_is_atomic_and_keeps_the_ttl(redis_client: aioredis.Redis, namespace: str) -> None:
    records = SessionRecords(redis_client, namespace, ttl=30)
    await records.create(_record("s1"))
    key = Keys(namespace).session("s1")
    before = await redis_client.pttl(key)
    assert await records.update("s1", stream="r2", capabilities={}, pinned=True) is True
    got = await records.get("s1")
    assert got is not None and (got.stream, got.capabilities, got.pinned, got.owner) == ("r2", {}, True, "alice")
    assert 0 < await redis_client.pttl(key) <= before
    with pytest.raises(ValueError, match="no field"):
        await records.update("s1", colour="blue")
    with pytest.raises(ValueError, match="no field"):
        await records.update("s1", id="other")


async def test_concurrent_subscribes_from_two_replicas_all_land(redis_server: RedisServer, namespace: str) -> None:
    a, b = await connect(redis_server.url), await connect(redis_server.url)
    try:
        ra, rb = SessionRecords(a, namespace, ttl=30), SessionRecords(b, namespace, ttl=30)
        await ra.create(_record("s1"))
        uris = [f"file:///{i}" for i in range(40)]
        await asyncio.gather(*((ra if i % 2 else rb).subscribe("s1", uri) for i, uri in enumerate(uris)))
        got = await ra.get("s1")
        assert got is not None and sorted(got.subscriptions) == sorted(uris)
        await asyncio.gather(*(rb.unsubscribe("s1", uri) for uri in uris[:10]))
        got = await rb.get("s1")
        assert got is not None and sorted(got.subscriptions) == sorted(uris[10:])
        assert await ra.subscribe("absent", "x") is False
    finally:
        await a.aclose()
        await b.aclose()


async def test_the_cap_is_global_and_atomic(redis_server: RedisServer, namespace: str) -> None:
    clients = [await connect(redis_server.url) for _ in range(3)]  # three replicas
    try:
        stores = [SessionRecords(c, namespace, ttl=30) for c in clients]
        results = await asyncio.gather(*(stores[i % 3].create(_record(f"s{i}"), cap=10) for i in range(30)))
        assert sum(results) == 10
        assert await stores[0].count() == 10
        assert await stores[1].create(_record("late"), cap=10) is False
        assert await stores[2].create(_record("uncapped"), cap=None) is True
        winner = next(f"s{i}" for i, ok in enumerate(results) if ok)
        assert await stores[0].delete(winner) is True
        assert await stores[0].delete(winner) is False
        assert await stores[1].create(_record("late"), cap=11) is True  # 10 + uncapped - deleted + this = 11
    finally:
        for c in clients:
            await c.aclose()


async def test_expired_sessions_free_their_cap_slot(redis_client: aioredis.Redis, namespace: str) -> None:
    records = SessionRecords(redis_client, namespace, ttl=0.2)
    assert await records.create(_record("a"), cap=1)
    assert not await records.create(_record("b"), cap=1)
    await asyncio.sleep(0.3)
    assert await records.create(_record("b"), cap=1)


async def test_old_records_with_fewer_fields_still_read(redis_client: aioredis.Redis, namespace: str) -> None:
    key = Keys(namespace).session("old")
    await redis_client.hset(key, mapping={"id": '"old"', "owner": '"bob"', "future_field": "1"})
    got = await SessionRecords(redis_client, namespace, ttl=30).get("old")
    assert got is not None and got.owner == "bob" and got.subscriptions == [] and got.created <= time.time()


async def test_get_costs_one_round_trip(redis_client: aioredis.Redis, namespace: str) -> None:
    records = SessionRecords(redis_client, namespace, ttl=30)
    await records.create(_record("s1"))
    for _ in range(50):
        await records.get("s1")
    samples = []
    for _ in range(500):
        started = time.perf_counter()
        await records.get("s1")
        samples.append(time.perf_counter() - started)
    samples.sort()
    p50 = samples[len(samples) // 2] * 1000
    print(f"\nrecords.get p50 {p50:.3f} ms, p99 {samples[int(len(samples) * 0.99)] * 1000:.3f} ms (loopback)")
    assert p50 < 5.0
