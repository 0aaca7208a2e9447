"""Heartbeats: which replicas are alive, where they listen, and what they last reported.

Each replica writes `replica:<id>` (JSON: id, address, started, last_seen, detail) with a TTL of `ttl`
seconds every `interval` seconds and adds its id to the `replicas` set. A replica is dead when its key has
expired — no heartbeat for `ttl` seconds, whatever the cause — and a graceful `stop()` deletes the key so
the others see it gone at once. `members()` reads the set and the keys in one round trip and drops ids
whose key is gone; `alive()` and `address()` are cached for at most `cache` seconds (0.5 by default) so a
hot path may call them on every request.

A heartbeat that cannot be written (Redis down) is logged once per outage and retried on the next beat;
the loop never ends by itself. `update(**detail)` changes what the next heartbeat publishes (ready, reason,
sessions, children…); the caller's values must be JSON-serialisable. Replica ids come from `new_replica_id`:
host name, pid and random hex, short and unique even for two processes of one pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
import redis.exceptions as rexc
import structlog

from gateway.cluster.connection import cancel_and_wait
from gateway.cluster.keys import Keys

logger = structlog.get_logger(__name__)


def new_replica_id() -> str:
    """`<host>-<pid>-<6 hex>`, at most 40 characters, no `:`."""
    host = socket.gethostname().split(".")[0].replace(":", "-")[:24] or "replica"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class Replica:
    """One live replica as its last heartbeat described it (times are `time.time()` of that replica)."""

    id: str
    address: str
    started: float
    last_seen: float
    detail: dict[str, Any] = field(default_factory=dict)


class Replicas:
    """This replica's heartbeat and the view of every other one; see the module docstring."""

    def __init__(
        self,
        redis: aioredis.Redis,
        namespace: str,
        replica_id: str,
        address: str,
        *,
        interval: float = 1.0,
        ttl: float = 3.0,
        cache: float = 0.5,
    ) -> None:
        """Raises: ValueError when `ttl` is not longer than `interval` (every heartbeat would expire first)."""
        if ttl <= interval:
            raise ValueError(f"heartbeat ttl ({ttl} s) must be longer than the interval ({interval} s)")
        self._redis = redis
        self._keys = Keys(namespace)
        self.id = replica_id
        self.own_address = address
        self.interval = interval
        self.ttl = ttl
        self._cache_for = cache
        self.started = time.time()
        self._detail: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._cache: dict[str, tuple[float, str | None]] = {}

    def update(self, **detail: Any) -> None:
        """Merge `detail` into what the next heartbeat publishes."""
        self._detail.update(detail)

    def start(self) -> None:
        """Begin beating (the first beat is immediate)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="harbor-heartbeat")

    async def stop(self) -> None:
        """Stop beating and delete this replica's key: the others see it gone at once (when Redis answers)."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        with contextlib.suppress(rexc.RedisError, OSError, TimeoutError):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._keys.replica(self.id))
                pipe.srem(self._keys.replicas, self.id)
                await pipe.execute()

    async def beat(self) -> None:
        """Publish one heartbeat now.

        Raises:
            redis.exceptions.RedisError: Redis did not take it.
        """
        body = {
            "id": self.id,
            "address": self.own_address,
            "started": self.started,
            "last_seen": time.time(),
            "detail": self._detail,
        }
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._keys.replica(self.id), orjson.dumps(body), px=int(self.ttl * 1000))
            pipe.sadd(self._keys.replicas, self.id)
            await pipe.execute()

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.beat()
            except (rexc.RedisError, OSError, TimeoutError) as error:
                if not self._failing:
                    logger.warning("heartbeat_failed", replica=self.id, error=str(error))
                self._failing = True
            else:
                if self._failing:
                    logger.info("heartbeat_resumed", replica=self.id)
                self._failing = False
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def members(self) -> list[Replica]:
        """Every live replica (this one included once it has beaten), sorted by id."""
        ids = sorted(cast(set[str], await self._redis.smembers(self._keys.replicas)))  # type: ignore[misc]
        if not ids:
            return []
        bodies = await self._redis.mget([self._keys.replica(i) for i in ids])
        dead = [i for i, body in zip(ids, bodies, strict=True) if body is None]
        if dead:
            await self._redis.srem(self._keys.replicas, *dead)  # type: ignore[misc]
        found = [Replica(**orjson.loads(body)) for body in bodies if body is not None]
        now = time.monotonic()
        for replica in found:
            self._cache[replica.id] = (now, replica.address)
        return found

    async def address(self, replica_id: str) -> str | None:
        """The live replica's address, or None when it is dead or unknown (cached ≤ `cache` s)."""
        if replica_id == self.id and self._task is not None:
            return self.own_address
        now = time.monotonic()
        cached = self._cache.get(replica_id)
        if cached is not None and now - cached[0] <= self._cache_for:
            return cached[1]
        body = await self._redis.get(self._keys.replica(replica_id))
        address = None if body is None else str(orjson.loads(body)["address"])
        if len(self._cache) > 1024:
            self._cache = {k: v for k, v in self._cache.items() if now - v[0] <= self._cache_for}
        self._cache[replica_id] = (now, address)
        return address

    async def alive(self, replica_id: str) -> bool:
        """Is that replica beating? (cached ≤ `cache` s)."""
        return await self.address(replica_id) is not None
