"""A rate-limit checker process for the cluster property test: `python hammer.py URL NS RATE BURST START SECONDS`.

Waits until the wall clock reaches START, then runs CONCURRENCY checkers on one event loop that call
`RedisRateLimiter.check("alice", "echo")` every PAUSE s for SECONDS, and prints one JSON line:
{"allowed": n, "denied": m}. Several of these, started at once, are several replicas' worth of load.
"""

from __future__ import annotations

import asyncio
import sys
import time

import orjson

from gateway.cluster.buckets import RedisRateLimiter
from gateway.cluster.connection import connect
from gateway.config import Bucket, RateLimitsConfig

CONCURRENCY = 2
PAUSE = 0.002  # between checks: still ~100× the rate the test allows, at a fraction of the CPU


async def main(url: str, namespace: str, rate: float, burst: int, start: float, seconds: float) -> None:
    redis = await connect(url)
    limiter = RedisRateLimiter(redis, namespace, RateLimitsConfig(per_identity=Bucket(rate=rate, burst=burst)))
    counts = {"allowed": 0, "denied": 0}
    await asyncio.sleep(max(0.0, start - time.time()))
    end = start + seconds

    async def checker() -> None:
        while time.time() < end:
            counts["allowed" if await limiter.check("alice", "echo") is None else "denied"] += 1
            await asyncio.sleep(PAUSE)

    await asyncio.gather(*(checker() for _ in range(CONCURRENCY)))
    await redis.aclose()
    sys.stdout.write(orjson.dumps(counts).decode() + "\n")


if __name__ == "__main__":
    u, ns, r, b, s, t = sys.argv[1:7]
    asyncio.run(main(u, ns, float(r), int(b), float(s), float(t)))
