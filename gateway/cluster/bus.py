"""Replica-to-replica messages: cancellations, invalidations, replies that landed on another replica.

`Bus(redis, namespace, replica_id)` subscribes, on a connection of its own, to its inbox channel
`bus:<replica>` and to the broadcast channel `bus`. `send(replica, kind, payload)` publishes to one inbox
and returns how many replicas received it (0: the target is not subscribed — dead, or reconnecting);
`broadcast(kind, payload)` reaches every other replica (a replica does not hear its own broadcasts).
`on(kind, handler)` registers `handler(sender, payload)`; a coroutine handler runs as a task of its own,
so a slow one never holds up the next message. A handler's exception is logged, never fatal; a message
of a kind nobody handles is dropped (debug log). On a lost connection the bus resubscribes with back-off
and the `ready` event tells when it listens again.

Why pub/sub here and streams for events: these messages are fire-and-forget to a replica that is alive
now — a cancellation, an invalidation or a reply for a POST held open on that replica means nothing once
the replica has died (its POST and its children died with it), so losing them with the target is the right
semantics, and nothing is stored. GET-stream events must survive a replica and be replayed: streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
import redis.exceptions as rexc
import structlog

from gateway.cluster.connection import cancel_and_wait, dedicated
from gateway.cluster.keys import Keys

logger = structlog.get_logger(__name__)

Handler = Callable[[str, dict[str, Any]], Awaitable[None] | None]
_BACKOFF = (0.05, 0.1, 0.2, 0.5, 1.0)
_POLL = 1.0  # seconds a read waits for a message before it checks the connection


class Bus:
    """This replica's inbox and its way to the others; see the module docstring."""

    def __init__(self, redis: aioredis.Redis, namespace: str, replica_id: str) -> None:
        self._redis = redis
        self._keys = Keys(namespace)
        self.id = replica_id
        self._handlers: dict[str, Handler] = {}
        timeout = float(redis.connection_pool.connection_kwargs.get("socket_timeout") or 2.0)
        self._timeout = timeout
        self._client = dedicated(redis, socket_timeout=_POLL + timeout)
        self._channels = (self._keys.inbox(replica_id), self._keys.broadcast)
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()

    def on(self, kind: str, handler: Handler) -> None:
        """Call `handler(sender_replica_id, payload)` for every message of `kind` (replaces an earlier one)."""
        self._handlers[kind] = handler

    async def send(self, replica_id: str, kind: str, payload: dict[str, Any]) -> int:
        """Publish to one replica's inbox; the number of receivers (0 or 1).

        Raises:
            redis.exceptions.RedisError: Redis did not take it.
        """
        return int(await self._redis.publish(self._keys.inbox(replica_id), self._encode(kind, payload)))

    async def broadcast(self, kind: str, payload: dict[str, Any]) -> int:
        """Publish to every replica; the number of receivers, this one included.

        Raises:
            redis.exceptions.RedisError: Redis did not take it.
        """
        return int(await self._redis.publish(self._keys.broadcast, self._encode(kind, payload)))

    def _encode(self, kind: str, payload: dict[str, Any]) -> bytes:
        return orjson.dumps({"kind": kind, "from": self.id, "payload": payload})

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="harbor-bus")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._running) if t is not None]
        for task in tasks:
            await cancel_and_wait(task)
        self._task = None
        await self._client.aclose()

    async def _run(self) -> None:
        failures = 0
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*self._channels)
                if failures:
                    logger.info("bus_resumed", replica=self.id)
                failures = 0
                self.ready.set()
                await self._listen(pubsub)
            except (rexc.ConnectionError, rexc.TimeoutError, OSError, TimeoutError) as error:
                self.ready.clear()
                if failures == 0:
                    logger.warning("bus_lost_redis", replica=self.id, error=str(error))
                await asyncio.sleep(_BACKOFF[min(failures, len(_BACKOFF) - 1)])
                failures += 1
            finally:
                with contextlib.suppress(rexc.RedisError, OSError, TimeoutError, RuntimeError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _listen(self, pubsub: aioredis.client.PubSub) -> None:
        """Read until the connection fails (a reset or refused reconnect raises; an idle channel does not).

        No PING on this connection: redis-py's pub/sub cannot parse the reply with decoded responses, and a
        frozen Redis is what `Health` (its own connection, its own PINGs) reports; once Redis answers again
        the subscription on this socket still holds, and a restarted Redis resets it, which raises here.
        """
        while True:
            message = await pubsub.get_message(timeout=_POLL)
            if message is not None and message.get("type") == "message":
                self._dispatch(message["data"])

    def _dispatch(self, data: str | bytes) -> None:
        try:
            message = orjson.loads(data)
            kind, sender, payload = message["kind"], message["from"], message["payload"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            logger.warning("bus_message_malformed", replica=self.id)
            return
        if sender == self.id:
            return  # our own broadcast
        handler = self._handlers.get(kind)
        if handler is None:
            logger.debug("bus_message_unhandled", kind=kind, sender=sender)
            return
        try:
            result = handler(sender, payload)
        except Exception:
            logger.exception("bus_handler_failed", kind=kind, sender=sender)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(self._guard(kind, sender, result))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _guard(self, kind: str, sender: str, result: Awaitable[None]) -> None:
        try:
            await result
        except Exception:
            logger.exception("bus_handler_failed", kind=kind, sender=sender)
