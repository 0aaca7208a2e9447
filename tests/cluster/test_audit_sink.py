"""gateway.cluster.audit_sink on a real redis-server: one stream for the cluster, never an error to the caller."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest
import redis.asyncio as aioredis

from gateway.cluster.audit_sink import RedisAuditSink
from gateway.cluster.connection import connect
from tests.cluster.harness import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


async def test_records_land_in_one_bounded_stream(redis_client: aioredis.Redis, namespace: str) -> None:
    sink = RedisAuditSink(redis_client, namespace, maxlen=50)
    for i in range(300):
        await sink.write({"tool": "echo", "n": i, "outcome": "ok"})
    entries = await redis_client.xrange(sink.key)
    assert 50 <= len(entries) < 300
    assert orjson.loads(entries[-1][1]["record"]) == {"tool": "echo", "n": 299, "outcome": "ok"}
    assert (sink.written, sink.dropped) == (300, 0)


async def test_submit_writes_from_synchronous_code(redis_client: aioredis.Redis, namespace: str) -> None:
    sink = RedisAuditSink(redis_client, namespace)
    for i in range(10):
        sink.submit({"n": i})
    await sink.drain()
    assert [orjson.loads(f["record"])["n"] for _, f in await redis_client.xrange(sink.key)] == list(range(10))


async def test_a_dead_or_frozen_redis_never_fails_the_caller(
    start_redis: Callable[..., RedisServer], namespace: str
) -> None:
    server = start_redis()
    redis = await connect(server.url, timeout=0.3)
    sink = RedisAuditSink(redis, namespace, timeout=0.5)
    await sink.write({"n": 1})
    server.kill()
    await sink.write({"n": 2})  # no exception
    server.start()
    server.pause()
    async with asyncio.timeout(3):
        await sink.write({"n": 3})  # bounded by the sink's timeout, no exception
    server.resume()
    await sink.write({"n": 4})
    assert (sink.written, sink.dropped) == (2, 2)
    await sink.write({"not json": object()})  # an unserialisable value is stringified, not an error
    assert sink.written == 3
    await redis.aclose()
