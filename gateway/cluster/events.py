"""GET-stream events of every session, in Redis streams every replica reads: delivery and resumption.

`events:<session>` is a Redis stream. `Events.append` adds one JSON-RPC message with one script (XADD
MAXLEN ~ `maxlen`, then PEXPIRE `ttl`): the stream id it returns (`1733091234567-0`) is the SSE event id.
Each entry also records the id of the entry before it (`p`), so a reader can tell a gap from a
continuation: `after(session, last_event_id)` returns every event strictly after `last_event_id`, or None
when some of them are gone — trimmed past `maxlen`, or lost with a Redis restart — because the caller
must then tell the client that events were lost, never skip them silently. An id that was never issued
(or a stream that has expired) gives [] when no later event exists.

`Reader` is ONE task per replica that multiplexes every GET stream the replica holds: one blocking XREAD
over all followed keys, on a connection of its own, plus this replica's `wake:<replica>` stream, to which
`follow`/`unfollow` add an entry so the blocked XREAD returns at once and the next one carries the new set.
`deliver(event_id, message)` runs in the reader's task, in stream order per session; it must not block
(put the message on the stream's queue) and returns False to stop following (the client went away). When
Redis goes away the reader reconnects with back-off and continues from the last id it delivered; a gap in
the chain (events lost in between) calls `on_gap(session_id)` before the next delivery.

Why streams and not pub/sub here: events must outlive the moment they are published — a stream that
reconnects to another replica replays them from any replica — and must be bounded; pub/sub keeps nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
import redis.exceptions as rexc
import structlog

from gateway.cluster.connection import cancel_and_wait, dedicated
from gateway.cluster.keys import Keys

logger = structlog.get_logger(__name__)

Deliver = Callable[[str, dict[str, Any]], bool]
_ID = re.compile(r"\d{1,20}-\d{1,20}")
_NONE = "0-0"
_WAKE_MAXLEN = 16
_WAKE_TTL_MS = 60_000
_BACKOFF = (0.05, 0.1, 0.2, 0.5, 1.0)

# KEYS: stream. ARGV: maxlen, message, ttl_ms.
_APPEND = """
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local prev = '0-0'
if #top > 0 then prev = top[1][1] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[2], 'p', prev)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return id
"""


def _order(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq)


def check_event_id(event_id: str) -> str:
    """The id itself when it is a stream id (`<ms>-<seq>`).

    Raises:
        ValueError: it is not one (a Last-Event-ID this gateway never issued).
    """
    if not _ID.fullmatch(event_id):
        raise ValueError(f"Last-Event-ID {event_id[:40]!r} is not an event id of this gateway (<ms>-<seq>)")
    return event_id


class Events:
    """Append to and replay from each session's bounded event stream; see the module docstring."""

    def __init__(self, redis: aioredis.Redis, namespace: str, maxlen: int = 1000, ttl: float = 3600.0) -> None:
        """Raises: ValueError for a bad namespace, `maxlen` < 1 or `ttl` ≤ 0."""
        if maxlen < 1 or ttl <= 0:
            raise ValueError(f"events need maxlen ≥ 1 and ttl > 0; got maxlen={maxlen}, ttl={ttl}")
        self._redis = redis
        self._keys = Keys(namespace)
        self.maxlen = maxlen
        self.ttl = ttl
        self._append = redis.register_script(_APPEND)

    async def append(self, session_id: str, message: dict[str, Any]) -> str:
        """Add `message` to the session's stream; returns its event id.

        Raises:
            redis.exceptions.RedisError: Redis did not take it (the caller decides; nothing was stored).
        """
        args: list[int | bytes] = [self.maxlen, orjson.dumps(message), int(self.ttl * 1000)]
        return str(await self._append(keys=[self._keys.events(session_id)], args=args))

    async def after(self, session_id: str, last_event_id: str) -> list[tuple[str, dict[str, Any]]] | None:
        """The events strictly after `last_event_id`, oldest first; None when some of them were lost.

        Raises:
            ValueError: `last_event_id` is not a stream id.
        """
        check_event_id(last_event_id)
        entries = cast(
            list[tuple[str, dict[str, str]]],
            await self._redis.xrange(self._keys.events(session_id), min=f"({last_event_id}", max="+"),
        )
        if entries and entries[0][1].get("p") != last_event_id and _order(last_event_id) != (0, 0):
            return None
        return [(event_id, orjson.loads(fields["m"])) for event_id, fields in entries]

    async def last_id(self, session_id: str) -> str:
        """The id of the session's newest event, `0-0` when there is none: follow from it for new events only."""
        top = await self._redis.xrevrange(self._keys.events(session_id), max="+", min="-", count=1)
        return str(top[0][0]) if top else _NONE

    async def drop(self, session_id: str) -> None:
        """Delete the session's stream (the session ended)."""
        await self._redis.delete(self._keys.events(session_id))


@dataclass
class _Follow:
    key: str
    last: str | None  # None: not resolved yet (follow from "now")
    deliver: Deliver
    on_gap: Callable[[str], None] | None


class Reader:
    """The replica's one event reader; see the module docstring."""

    def __init__(
        self, redis: aioredis.Redis, namespace: str, replica_id: str, *, block: float = 1.0, batch: int = 100
    ) -> None:
        self._redis = redis
        self._keys = Keys(namespace)
        self._block_ms = max(1, int(block * 1000))
        self._batch = batch
        timeout = redis.connection_pool.connection_kwargs.get("socket_timeout") or 2.0
        self._client = dedicated(redis, socket_timeout=block + float(timeout))
        self._wake_key = self._keys.wake(replica_id)
        self._wake_last = _NONE
        self._follows: dict[str, _Follow] = {}
        self._task: asyncio.Task[None] | None = None
        self._wakes: set[asyncio.Task[None]] = set()
        self._failing = False

    @property
    def following(self) -> frozenset[str]:
        """Ids of the sessions followed now."""
        return frozenset(self._follows)

    def follow(
        self,
        session_id: str,
        after_id: str | None,
        deliver: Deliver,
        *,
        on_gap: Callable[[str], None] | None = None,
    ) -> None:
        """Deliver the session's events after `after_id` (None: from about now on; exact: `Events.last_id`).

        A second `follow` of one session replaces the first. Raises: ValueError for a malformed `after_id`.
        """
        if after_id is not None:
            check_event_id(after_id)
        self._follows[session_id] = _Follow(self._keys.events(session_id), after_id, deliver, on_gap)
        self._wake()

    def unfollow(self, session_id: str) -> None:
        """Stop delivering the session's events (no error if it was not followed)."""
        if self._follows.pop(session_id, None) is not None:
            self._wake()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="harbor-event-reader")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._wakes) if t is not None]
        for task in tasks:
            await cancel_and_wait(task)
        self._task = None
        await self._client.aclose()

    def _wake(self) -> None:
        if self._task is None:
            return
        task = asyncio.get_running_loop().create_task(self._send_wake())
        self._wakes.add(task)
        task.add_done_callback(self._wakes.discard)

    async def _send_wake(self) -> None:
        with contextlib.suppress(rexc.RedisError, OSError, TimeoutError):  # the reader's own retry loop recovers
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xadd(self._wake_key, {"w": "1"}, maxlen=_WAKE_MAXLEN, approximate=True)
                pipe.pexpire(self._wake_key, _WAKE_TTL_MS)
                await pipe.execute()

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._resolve()
                streams = {self._wake_key: self._wake_last}
                streams.update({f.key: f.last for f in self._follows.values() if f.last is not None})
                reply = await self._client.xread(streams, count=self._batch, block=self._block_ms)  # type: ignore[arg-type]
            except (rexc.ConnectionError, rexc.TimeoutError, OSError, TimeoutError) as error:
                if not self._failing:
                    logger.warning("event_reader_lost_redis", error=str(error))
                self._failing = True
                await asyncio.sleep(_BACKOFF[min(failures, len(_BACKOFF) - 1)])
                failures += 1
                continue
            if self._failing:
                logger.info("event_reader_resumed")
            self._failing, failures = False, 0
            self._dispatch(cast(list[Any], reply or []))

    async def _resolve(self) -> None:
        """Give every follow from "now" the id of its stream's newest event."""
        pending = [(sid, f) for sid, f in self._follows.items() if f.last is None]
        if not pending:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for _, follow in pending:
                pipe.xrevrange(follow.key, max="+", min="-", count=1)
            tops = await pipe.execute()
        for (sid, follow), top in zip(pending, tops, strict=True):
            if self._follows.get(sid) is follow and follow.last is None:
                follow.last = str(top[0][0]) if top else _NONE

    def _dispatch(self, reply: list[Any]) -> None:
        by_key = {f.key: sid for sid, f in self._follows.items()}
        for key, entries in reply:
            if key == self._wake_key:
                self._wake_last = entries[-1][0]
                continue
            session_id = by_key.get(key)
            follow = self._follows.get(session_id) if session_id is not None else None
            if follow is None or session_id is None:
                continue
            for event_id, fields in entries:
                if not self._deliver(session_id, follow, event_id, fields):
                    self._follows.pop(session_id, None)
                    break

    def _deliver(self, session_id: str, follow: _Follow, event_id: str, fields: dict[str, str]) -> bool:
        if fields.get("p") != follow.last and follow.last != _NONE and follow.on_gap is not None:
            try:
                follow.on_gap(session_id)
            except Exception:
                logger.exception("event_gap_callback_failed", session=session_id)
        follow.last = event_id
        try:
            return bool(follow.deliver(event_id, orjson.loads(fields["m"])))
        except Exception:
            logger.exception("event_delivery_failed", session=session_id)
            return False
