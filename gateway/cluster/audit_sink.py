"""An optional second home for audit records: one Redis stream (`audit`) that every replica appends to.

The JSONL file of each replica stays the record of truth (`gateway/policy/audit.py`); this sink gives one
place to tail the whole cluster (`XREAD BLOCK 0 STREAMS harbor:<ns>:audit $`). Each record is one entry
with one field, `record` (its orjson), trimmed to about `maxlen` entries (XADD MAXLEN ~).

Contract: `write` never raises into the caller — an audit sink must not fail a tool call. A write that
Redis does not take within `timeout` seconds is counted in `dropped` and logged once per outage; `written`
counts the others. `submit` is for synchronous code in a running loop: it queues the record and returns at
once; one writer task sends the queue in order, up to 100 records per pipelined round trip (at most
`MAX_PENDING` queued; past that a record is dropped and counted).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import orjson
import redis.asyncio as aioredis
import redis.exceptions as rexc
import structlog

from gateway.cluster.keys import Keys

logger = structlog.get_logger(__name__)

MAX_PENDING = 10_000  # records queued by `submit`; past that a record is dropped and counted
_BATCH = 100  # records per pipelined round trip


class RedisAuditSink:
    """Appends audit records to the cluster's audit stream; see the module docstring."""

    def __init__(self, redis: aioredis.Redis, namespace: str, maxlen: int = 100_000, *, timeout: float = 2.0) -> None:
        """Raises: ValueError for a bad namespace or `maxlen` < 1."""
        if maxlen < 1:
            raise ValueError(f"audit stream maxlen must be ≥ 1; got {maxlen}")
        self._redis = redis
        self.key = Keys(namespace).audit
        self.maxlen = maxlen
        self.timeout = timeout
        self.written = 0
        self.dropped = 0
        self._failing = False
        self._queue: deque[dict[str, Any]] = deque()
        self._writer: asyncio.Task[None] | None = None

    async def write(self, record: dict[str, Any]) -> None:
        """Append `record`; never raises (a failure is counted in `dropped`)."""
        await self._write_batch([record])

    async def _write_batch(self, records: list[dict[str, Any]]) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for record in records:
                        data = orjson.dumps(record, default=str)
                        pipe.xadd(self.key, {"record": data}, maxlen=self.maxlen, approximate=True)
                    await pipe.execute()
        except (rexc.RedisError, OSError, TimeoutError, TypeError) as error:
            self.dropped += len(records)
            if not self._failing:
                logger.warning("audit_stream_unavailable", error=str(error), dropped=self.dropped)
            self._failing = True
            return
        self.written += len(records)
        if self._failing:
            logger.info("audit_stream_resumed", dropped=self.dropped)
        self._failing = False

    def submit(self, record: dict[str, Any]) -> None:
        """Queue `record` for the sink's one writer task (in order, batched) and return at once; never raises."""
        if len(self._queue) >= MAX_PENDING:
            self.dropped += 1
            return
        self._queue.append(record)
        if self._writer is None or self._writer.done():
            try:
                self._writer = asyncio.get_running_loop().create_task(self._drain_queue(), name="harbor-audit-sink")
            except RuntimeError:  # no running loop: nothing can write it
                self._queue.pop()
                self.dropped += 1

    async def _drain_queue(self) -> None:
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), _BATCH))]
            await self._write_batch(batch)

    async def drain(self) -> None:
        """Wait until every submitted record is written or dropped (at shutdown)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
