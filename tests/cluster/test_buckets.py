"""gateway.cluster.buckets on a real redis-server: the in-memory limiter's semantics, held across processes."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from gateway.cluster.buckets import RedisRateLimiter
from gateway.cluster.keys import Keys
from gateway.config import Bucket, RateLimitsConfig
from tests.cluster.harness import ROOT, RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(40)]

HAMMER = Path(__file__).with_name("hammer.py")


def _limits(**kwargs: object) -> RateLimitsConfig:
    return RateLimitsConfig(**kwargs)  # type: ignore[arg-type]


async def test_no_buckets_means_no_limit(redis_client: aioredis.Redis, namespace: str) -> None:
    for config in (None, _limits()):
        limiter = RedisRateLimiter(redis_client, namespace, config)
        assert not limiter.enabled
        assert await limiter.check("alice", "echo") is None
    assert await redis_client.keys(f"harbor:{namespace}:*") == []


async def test_burst_then_an_exact_retry_after(redis_client: aioredis.Redis, namespace: str) -> None:
    limiter = RedisRateLimiter(redis_client, namespace, _limits(per_identity=Bucket(rate=4, burst=3)))
    assert limiter.enabled
    assert [await limiter.check("alice", "echo") for _ in range(3)] == [None, None, None]
    wait = await limiter.check("alice", "echo")
    assert wait is not None and 0 < wait <= 0.25
    await asyncio.sleep(wait * 0.9)
    early = await limiter.check("alice", "echo")
    assert early is not None and early <= wait * 0.1 + 0.01  # still short, and says by how much
    await asyncio.sleep(early)
    assert await limiter.check("alice", "echo") is None  # a retry at retry_after succeeds
    assert await limiter.check("bob", "echo") is None  # buckets are per identity


async def test_all_or_nothing_across_the_identity_and_tool_buckets(
    redis_client: aioredis.Redis, namespace: str
) -> None:
    config = _limits(per_identity=Bucket(rate=0.01, burst=5), per_identity_tool=Bucket(rate=0.01, burst=2))
    limiter = RedisRateLimiter(redis_client, namespace, config)
    assert [await limiter.check("alice", "a") for _ in range(2)] == [None, None]
    assert await limiter.check("alice", "a") is not None  # the tool bucket is empty ...
    assert [await limiter.check("alice", "b") for _ in range(2)] == [None, None]
    assert await limiter.check("alice", "c") is None  # ... and the refusal took no identity token: 5 in all
    wait = await limiter.check("alice", "d")
    assert wait is not None and 99 < wait <= 100  # the identity bucket is empty: 1 token at 0.01/s


async def test_overrides_replace_the_identity_bucket(redis_client: aioredis.Redis, namespace: str) -> None:
    config = _limits(per_identity=Bucket(rate=0.01, burst=1), overrides={"vip": Bucket(rate=0.01, burst=4)})
    limiter = RedisRateLimiter(redis_client, namespace, config)
    assert [await limiter.check("vip", "x") is None for _ in range(5)] == [True] * 4 + [False]
    assert [await limiter.check("pleb", "x") is None for _ in range(2)] == [True, False]


async def test_identities_with_colons_do_not_collide(redis_client: aioredis.Redis, namespace: str) -> None:
    limiter = RedisRateLimiter(redis_client, namespace, _limits(per_identity_tool=Bucket(rate=0.01, burst=1)))
    assert await limiter.check("a:b", "c") is None
    assert await limiter.check("a", "b:c") is None  # a different (identity, tool) pair
    assert await limiter.check("a:b", "c") is not None


async def test_buckets_expire_once_they_would_be_full(redis_client: aioredis.Redis, namespace: str) -> None:
    limiter = RedisRateLimiter(redis_client, namespace, _limits(per_identity=Bucket(rate=10, burst=5)))
    await limiter.check("alice", "echo")
    ttl = await redis_client.pttl(Keys(namespace).identity_bucket("alice"))
    assert 1000 < ttl <= 1100  # 1 token short at 10/s = 100 ms, plus the one-second margin


async def test_a_flushed_script_cache_is_reloaded(redis_client: aioredis.Redis, namespace: str) -> None:
    limiter = RedisRateLimiter(redis_client, namespace, _limits(per_identity=Bucket(rate=100, burst=100)))
    assert await limiter.check("alice", "echo") is None
    await redis_client.script_flush()  # as after a Redis restart: the next EVALSHA gets NOSCRIPT
    assert await limiter.check("alice", "echo") is None


async def test_check_costs_one_round_trip(redis_client: aioredis.Redis, namespace: str) -> None:
    config = _limits(per_identity=Bucket(rate=1e6, burst=1_000_000), per_identity_tool=Bucket(rate=1e6, burst=10**6))
    limiter = RedisRateLimiter(redis_client, namespace, config)
    for _ in range(50):
        await limiter.check("alice", "echo")
    samples = []
    for _ in range(500):
        started = time.perf_counter()
        await limiter.check("alice", "echo")
        samples.append(time.perf_counter() - started)
    p50 = statistics.median(samples) * 1000
    print(f"\nRedisRateLimiter.check (2 buckets, one EVALSHA) p50 {p50:.3f} ms (loopback)")
    assert p50 < 5.0


@pytest.mark.timeout(60)
def test_three_processes_together_stay_within_burst_plus_rate_times_time(redis_server: RedisServer) -> None:
    """The cluster property: N replicas hammering one identity get B + R×T calls over T s, and ≥ 90 % of it."""
    rate, burst, seconds, processes = 40.0, 20, 4.0, 3
    namespace = f"hammer{time.time_ns()}"
    start = time.time() + 1.5  # every process connected and waiting by then
    argv = [sys.executable, str(HAMMER), redis_server.url, namespace, str(rate), str(burst), str(start), str(seconds)]
    procs = [subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(processes)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()
        results.append(orjson.loads(out))
    allowed = sum(r["allowed"] for r in results)
    denied = sum(r["denied"] for r in results)
    ceiling = burst + rate * seconds
    print(
        f"\n{processes} processes × {seconds} s at R={rate}/s B={burst}: allowed {allowed} of {allowed + denied} "
        f"checks (ceiling {ceiling:.0f}, {allowed / ceiling:.1%})"
    )
    assert denied > allowed  # saturated: the limit, not the load, decided
    assert allowed <= ceiling * 1.05
    assert allowed >= ceiling * 0.9
