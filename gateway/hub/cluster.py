"""This gateway as one replica of several (`gateway.state: redis://…`): shared sessions, forwarding, global policy.

Every replica runs the same config and its own children; a client may reach any replica on every request.
What makes that correct, and where each piece of state lives:

- A Streamable HTTP session's record (identity, negotiated version, client capabilities and info) is in Redis
  (`SessionRecords`, TTL = the idle timeout, refreshed on use at most once per tenth of it). A replica that gets
  a request for a session it has not seen adopts it from the record: a local `MergedSession` with the same id,
  cached until it idles out here or a "gone" broadcast (DELETE elsewhere) drops it. Nothing but that lookup
  touches Redis on a call, and only on the first request a replica sees for a session.
- Messages for a session's GET stream (list changes, resource updates, server→client requests and logs not tied
  to a POST) go to the session's Redis stream (`Events`, bounded); whichever replica holds the GET stream follows
  it, and a GET that reconnects anywhere with `Last-Event-ID` replays what it missed.
- A server→client request's id carries the ordinal of the replica that asked (`ordinal << 40 | n`), so the
  client's answer, wherever it lands, is sent to that replica over the bus; a cancellation the local replica does
  not know is broadcast to every replica.
- A per-session server's child lives on the session's home (the replica that initialized it); a per-identity
  server's child on the identity's home (claimed in Redis, re-claimed when that replica is gone). Calls for them
  from other replicas are forwarded there (`PeerCalls`) and stream back. A session whose per-session child's
  replica died is gone: the call errors and the next request gets 404.
- Legacy SSE sessions live on the replica holding the stream; a `/message` POST that lands elsewhere is
  forwarded to it over HTTP. A modern input round retried on another replica is forwarded to the replica whose
  call is parked (the call key in `requestState` names it), and so is a GET resuming another replica's POST stream.
- Rate limits are token buckets in Redis (one script per check, Redis's clock); the session cap counts every
  replica's sessions; heartbeats list the replicas for `/readyz` and the status page.
- Redis lost while running: `/readyz` is 503 with the reason, new sessions are refused, calls in flight finish,
  sessions this replica already holds keep working; service resumes by itself when Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog

from gateway.cluster.buckets import RedisRateLimiter
from gateway.cluster.bus import Bus
from gateway.cluster.connection import Health, connect, parse_state_url
from gateway.cluster.events import Events, Reader
from gateway.cluster.records import SessionRecord, SessionRecords
from gateway.cluster.replicas import Replicas
from gateway.config import GatewaySettings
from gateway.core.errors import CapacityExceeded, StateDown
from gateway.core.jsonrpc import Message

log = structlog.get_logger("gateway.hub.cluster")

ORDINAL_SHIFT = 40  # server→client request ids: ordinal << 40 | n, below 2**53 (JavaScript clients) for 8192 ordinals
ORDINALS = 1 << 13
STATE_DOWN = "shared state (Redis) unreachable"
OUTGOING_LIMIT = 100_000  # GET-stream events a replica keeps while Redis is away


def default_replica_name() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(2)}"


def default_advertise(host: str, port: int) -> str:
    """The address other replicas use when `gateway.advertise` is not set: the bind address, or this host's
    address when bound to every interface."""
    if host in ("0.0.0.0", "::", ""):
        with contextlib.suppress(OSError):
            host = socket.gethostbyname(socket.gethostname())
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def ordinal_of(request_id: Any) -> int | None:
    """The replica ordinal a server→client request id carries (None for ids this scheme did not make)."""
    if isinstance(request_id, int) and not isinstance(request_id, bool) and request_id >= 1 << ORDINAL_SHIFT:
        return request_id >> ORDINAL_SHIFT
    return None


class Cluster:
    """The replica's handle on the shared state. Built from the settings; `start` connects (raises
    StateUnavailable when Redis cannot be reached, with a message that says what to fix)."""

    def __init__(self, settings: GatewaySettings, port: int) -> None:
        url = parse_state_url(settings.state)
        assert url is not None, "Cluster is only built for gateway.state: redis://…"
        self.url = url
        self.namespace = settings.cluster
        self.replica = settings.replica or default_replica_name()
        self.address = settings.advertise or default_advertise(settings.host, port)
        self.settings = settings
        self.ordinal = 0
        self.secret = b""
        self.started = time.time()
        self.redis: Any = None
        self.health: Health | None = None
        self.replicas: Replicas | None = None
        self.records: SessionRecords | None = None
        self.events: Events | None = None
        self.bus: Bus | None = None
        self.limiter: RedisRateLimiter | None = None
        self._members: dict[int, tuple[str, str]] = {}  # ordinal → (replica, address), from the heartbeats
        self._members_at = 0.0
        self._identity_homes: dict[tuple[str, str], tuple[str, float]] = {}
        self.on_health: list[Callable[[bool, str | None], None]] = []
        self.keeps_headers: frozenset[str] = frozenset()  # headers some server maps into a child's env: kept
        self.reader: Any = None
        self._outgoing: deque[tuple[str, Message]] = deque()  # GET-stream events not yet written to Redis
        self._dropped = 0
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None
        self.members: list[dict[str, Any]] = []  # the last heartbeat view of every replica, for sync readers
        self.detail: Callable[[], dict[str, Any]] = dict  # what this replica's heartbeat says (set by the hub)

    # --- life -------------------------------------------------------------------------------------------

    async def start(self, idle_timeout: float) -> None:
        self.redis = await connect(self.url)
        ns = self.namespace
        await self.redis.set(f"{ns}:secret", secrets.token_hex(32), nx=True)  # the first replica picks it
        self.secret = await self._secret()
        self.ordinal = int(await self.redis.incr(f"{ns}:ordinals")) % ORDINALS or ORDINALS - 1
        self.health = Health(self.redis)
        self.health.on_change(self._health_changed)
        self.health.start()
        self.records = SessionRecords(self.redis, ns, ttl=idle_timeout)
        self.events = Events(self.redis, ns, ttl=idle_timeout)
        self.replicas = Replicas(self.redis, ns, self.replica, self.address)
        self.replicas.update(ordinal=self.ordinal, started=self.started, ready=True)
        self.replicas.start()
        self.bus = Bus(self.redis, ns, self.replica)
        self.bus.start()
        self.reader = Reader(self.redis, ns, self.replica)
        self.reader.start()
        loop = asyncio.get_running_loop()
        self._writer = loop.create_task(self._write_events())
        self._beat = loop.create_task(self._heartbeat())
        log.info(
            "replica_joined",
            replica=self.replica,
            ordinal=self.ordinal,
            address=self.address,
            state=str(self.url.redacted),
        )

    async def _secret(self) -> bytes:
        value = await self.redis.get(f"{self.namespace}:secret")
        return value if isinstance(value, bytes) else str(value).encode()

    async def stop(self) -> None:
        for task in (self._writer, self._beat):
            if task is not None:
                task.cancel()
        for part in (self.reader, self.bus, self.replicas, self.health):
            if part is not None:
                with contextlib.suppress(Exception):
                    await part.stop()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()

    def _health_changed(self, health: Health) -> None:
        ok, reason = health.ok, health.reason
        if ok:
            log.info("state_back", replica=self.replica)
        else:
            log.warning("state_lost", replica=self.replica, reason=reason)
        for listener in self.on_health:
            listener(ok, reason)

    @property
    def healthy(self) -> bool:
        return self.health is None or self.health.ok

    def check_healthy(self) -> None:
        """Raises: StateDown while Redis is unreachable."""
        if not self.healthy:
            reason = self.health.reason if self.health is not None else None
            raise StateDown(f"{STATE_DOWN} ({reason}); new sessions are refused until it is back — retry shortly")

    # --- GET-stream events ---------------------------------------------------------------------------------

    def shared_stream(self, session_id: str) -> SharedStream:
        return SharedStream(self, session_id)

    def append(self, session_id: str, message: Message) -> None:
        """Queue an event for the session's shared stream, written in order by one task; kept (bounded) while
        Redis is away and written when it is back."""
        if len(self._outgoing) >= OUTGOING_LIMIT:
            self._outgoing.popleft()
            self._dropped += 1
            if self._dropped in (1, 100, 10_000):
                log.warning("events_dropped", replica=self.replica, dropped=self._dropped, reason="Redis away too long")
        self._outgoing.append((session_id, message))
        self._wake.set()

    async def _write_events(self) -> None:
        assert self.events is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outgoing:
                session_id, message = self._outgoing[0]
                try:
                    await self.events.append(session_id, message)
                except Exception as exc:  # Redis away: keep it, retry
                    log.debug("event_write_failed", reason=str(exc))
                    await asyncio.sleep(0.2)
                    continue
                self._outgoing.popleft()

    async def _heartbeat(self) -> None:
        """Every second: what this replica says of itself, and the view of every replica (for sync readers)."""
        while True:
            with contextlib.suppress(Exception):
                if self.replicas is not None:
                    self.replicas.update(ordinal=self.ordinal, started=self.started, **self.detail())
                self.members = await self.members_view()
            await asyncio.sleep(1.0)

    # --- replicas ----------------------------------------------------------------------------------------

    def ids(self) -> itertools.count[int]:
        """The id counter of an aggregator's server→client requests on this replica."""
        return itertools.count((self.ordinal << ORDINAL_SHIFT) + 1)

    async def member(self, ordinal: int) -> tuple[str, str] | None:
        """(replica, address) of a live replica by ordinal (heartbeats, cached for 0.5 s)."""
        now = time.monotonic()
        if ordinal not in self._members or now - self._members_at > 0.5:
            await self.refresh_members()
        return self._members.get(ordinal)

    async def refresh_members(self) -> list[Any]:
        assert self.replicas is not None
        members = await self.replicas.members()
        self._members = {int(m.detail.get("ordinal", -1)): (m.id, m.address) for m in members if "ordinal" in m.detail}
        self._members_at = time.monotonic()
        return members

    async def alive(self, replica: str) -> bool:
        assert self.replicas is not None
        return replica == self.replica or bool(await self.replicas.alive(replica))

    async def address_of(self, replica: str) -> str | None:
        assert self.replicas is not None
        return self.address if replica == self.replica else await self.replicas.address(replica)

    # --- session records ----------------------------------------------------------------------------------

    async def register(self, session: Any, view: str, cap: int) -> None:
        """Record a freshly initialized session. Raises: StateDown, CapacityExceeded (the cluster-wide cap)."""
        self.check_healthy()
        assert self.records is not None
        record = SessionRecord(
            id=session.id,
            kind=session.kind,
            home=self.replica,
            owner=session.owner,
            protocol_version=session.protocol_version,
            capabilities=session.capabilities,
            client_info=session.client_info,
            subscriptions=[],
            pinned=session.kind == "sse",
            stream=None,
            created=time.time(),
            view=view,
            headers={k: v for k, v in getattr(session, "headers", {}).items() if k in self.keeps_headers},
        )
        try:
            created = await self.records.create(record, cap)
        except Exception as exc:
            raise StateDown(f"{STATE_DOWN} ({exc}); retry shortly") from exc
        if not created:
            raise CapacityExceeded(
                f"the gateway's replicas already serve {cap} sessions together; close one (DELETE) or try later"
            )

    async def record(self, session_id: str) -> SessionRecord | None:
        """Raises: StateDown when Redis cannot answer."""
        assert self.records is not None
        try:
            return await self.records.get(session_id)
        except Exception as exc:
            raise StateDown(f"{STATE_DOWN} ({exc}); retry shortly") from exc

    async def touch(self, session_id: str) -> bool:
        """Refresh the record's TTL (`SessionRecords.touch` writes at most once per tenth of it: usually no I/O);
        False when the record is gone (ended elsewhere, or expired). Redis away: True (the copy here is kept)."""
        if self.records is None or not self.healthy:
            return True
        try:
            return await self.records.touch(session_id)
        except Exception:
            return True

    async def forget(self, session_id: str) -> None:
        """The session ended (DELETE, its SSE stream closed): delete its record and tell every replica."""
        if self.records is None:
            return
        with contextlib.suppress(Exception):
            await self.records.delete(session_id)
        if self.bus is not None:
            with contextlib.suppress(Exception):
                await self.bus.broadcast("gone", {"session": session_id})
        if self.events is not None:
            with contextlib.suppress(Exception):
                await self.events.drop(session_id)

    async def home_address(self, record: SessionRecord) -> str | None:
        """The session's home replica address while it is alive, else None."""
        if record.home == self.replica:
            return self.address
        if not await self.alive(record.home):
            return None
        return await self.address_of(record.home)

    # --- per-identity homes ------------------------------------------------------------------------------

    async def identity_home(self, server: str, identity: str) -> tuple[str, str]:
        """(replica, address) holding `identity`'s child of per-identity `server`: claimed for this replica when
        nobody holds it or its holder is gone. Cached for 1 s."""
        key = (server, identity)
        now = time.monotonic()
        cached = self._identity_homes.get(key)
        if cached is not None and now - cached[1] < 1.0:
            replica = cached[0]
        else:
            redis_key = f"{self.namespace}:identity-home:{server}:{identity}"
            replica_b = await self.redis.get(redis_key)
            replica = replica_b.decode() if isinstance(replica_b, bytes) else replica_b
            if replica is None or not await self.alive(replica):
                await _compare_and_set(self.redis, redis_key, replica, self.replica)
                replica_b = await self.redis.get(redis_key)
                replica = replica_b.decode() if isinstance(replica_b, bytes) else replica_b
            self._identity_homes[key] = (replica, now)
        address = await self.address_of(replica)
        if address is None:
            self._identity_homes.pop(key, None)
            raise StateDown(f"the replica holding {identity!r}'s {server!r} child ({replica}) is gone; retry")
        return replica, address

    # --- the peer secret -----------------------------------------------------------------------------------

    def peer_header(self) -> tuple[str, str]:
        return "harbor-peer", self.secret.decode()

    def is_peer(self, value: str | None) -> bool:
        return value is not None and bool(self.secret) and hmac.compare_digest(value.encode(), self.secret)

    # --- one replica's view, for /readyz and the status page -------------------------------------------------

    async def members_view(self) -> list[dict[str, Any]]:
        try:
            members = await self.refresh_members()
        except Exception:
            return []
        return [
            {
                "replica": m.id,
                "address": m.address,
                "you": m.id == self.replica,
                "age_s": round(time.time() - float(m.detail.get("started", time.time())), 1),
                **{k: v for k, v in m.detail.items() if k in ("ready", "reason", "sessions", "ordinal")},
            }
            for m in members
        ]


class SharedStream:
    """A session's GET stream as every replica sees it — the session's default outbox: what is put goes to the
    session's Redis stream (via the ordered writer); the replica holding the client's GET follows it."""

    shared = True
    origin = "0-0"  # the event id before every event

    def __init__(self, cluster: Cluster, session_id: str) -> None:
        self.cluster = cluster
        self.session_id = session_id
        self.held: set[Any] = set()  # this replica's GET streams of the session (their outboxes)

    def put(self, message: Message) -> bool:
        self.cluster.append(self.session_id, message)
        return True

    def close(self) -> None:
        """End the GET streams held here (graceful stop); the session's events stay for a reconnect elsewhere."""
        for outbox in list(self.held):
            outbox.close()

    async def replay(self, last_event_id: str | None) -> tuple[list[tuple[str, Message]], Message | None]:
        """Events after `last_event_id` (all kept, for a first GET) and, when some were dropped meanwhile, a log
        notification that says so. Raises: StateDown."""
        events = self.cluster.events
        assert events is not None
        try:
            missed = await events.after(self.session_id, last_event_id or self.origin)
            if missed is not None:
                return missed, None
            kept = await events.after(self.session_id, self.origin) or []
        except ValueError:  # not an id of ours (another replica's POST stream it no longer has): start afresh
            return [], None
        except Exception as exc:
            raise StateDown(f"{STATE_DOWN} ({exc}); reconnect shortly") from exc
        note = {
            "jsonrpc": "2.0",
            "method": "notifications/message",
            "params": {
                "level": "warning",
                "logger": "harbor",
                "data": f"events after {last_event_id} were dropped (a session keeps its last {events.maxlen}): "
                "list again what you track",
            },
        }
        return kept, note

    def follow(self, after: str | None, deliver: Callable[[str, Message], bool], outbox: Any) -> Any:
        self.held.add(outbox)
        self.cluster.reader.follow(self.session_id, after or self.origin, deliver)
        return outbox

    def unfollow(self, outbox: Any) -> None:
        self.held.discard(outbox)
        if not self.held:
            self.cluster.reader.unfollow(self.session_id)


async def _compare_and_set(redis: Any, key: str, expected: str | None, value: str) -> None:
    script = (
        "local v = redis.call('GET', KEYS[1]) "
        "if (v == false and ARGV[1] == '') or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) end return 1"
    )
    await redis.eval(script, 1, key, expected or "", value)
