"""Session records: what every replica must know of a client session to serve its next request.

A record is a Redis hash `session:<id>` (one orjson-encoded value per `SessionRecord` field) with a TTL of
`ttl` seconds, refreshed on use; a sorted set `sessions` indexes live ids by expiry (milliseconds on
Redis's clock, so every replica agrees) and is what the cluster-wide cap counts.

Contract:
- `create(record, cap)` is one Lua script — prune expired ids, count, refuse at `cap`, write the hash with
  its TTL and index it — so two replicas racing for the last slot cannot both win. An id that already
  exists is refused as well (returns False).
- `get` returns None for an unknown or expired id; fields missing from a stored hash take their defaults
  and unknown fields are ignored, so a rolling upgrade that adds a field reads old records.
- `update(id, **fields)` replaces whole fields atomically (HSET) and keeps the TTL; it never resurrects an
  expired record. `subscribe`/`unsubscribe` add or remove one entry of `subscriptions` in one script, so two
  replicas changing it at once both land.
- `touch(id)` refreshes the TTL. It is throttled per replica: a hot path calls it on every request and
  Redis sees at most one write per session per `ttl / 10` from this replica (a record therefore lives at
  least `0.9 × ttl` after its last use). It returns False once the record is gone.
- `delete` removes the record and its index entry; `count` is the number of live sessions.
Why a hash and not one JSON value: a field update is one atomic command that keeps the TTL, with no
read-modify-write race, and values stay orjson's (Lua's cjson would turn an empty `[]` into `{}`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import orjson
import redis.asyncio as aioredis

from gateway.cluster.keys import Keys

SessionKind = Literal["streamable-http", "sse"]

# KEYS: record, index. ARGV: id, ttl_ms, cap (-1: none), then field, value pairs.
_CREATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local cap = tonumber(ARGV[3])
if cap >= 0 and redis.call('ZCARD', KEYS[2]) >= cap then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
return 1
"""

# KEYS: record, index. ARGV: id, ttl_ms.
_TOUCH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('PEXPIRE', KEYS[1], ARGV[2]) == 1 then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
  return 1
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 0
"""

# KEYS: record. ARGV: field, value pairs. Only while the record exists (HSET would recreate it with no TTL).
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

# KEYS: record. ARGV: "add" | "remove", uri. cjson decodes `[]` fine but encodes an empty table as `{}`.
_SUBSCRIPTIONS = """
local current = redis.call('HGET', KEYS[1], 'subscriptions')
if current == false then return 0 end
local kept, found = {}, false
for _, uri in ipairs(cjson.decode(current)) do
  if uri == ARGV[2] then found = true end
  if uri ~= ARGV[2] or ARGV[1] == 'add' then table.insert(kept, uri) end
end
if ARGV[1] == 'add' and not found then table.insert(kept, ARGV[2]) end
local encoded = '[]'
if #kept > 0 then encoded = cjson.encode(kept) end
redis.call('HSET', KEYS[1], 'subscriptions', encoded)
return 1
"""

# KEYS: index.
_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""


@dataclass
class SessionRecord:
    """One client session as every replica sees it."""

    id: str
    kind: SessionKind = "streamable-http"
    home: str = ""  # the replica that created the session (and holds its per-session child, if any)
    owner: str | None = None  # the identity the session belongs to
    protocol_version: str | None = None
    capabilities: dict[str, Any] = field(default_factory=dict)
    client_info: dict[str, Any] = field(default_factory=dict)
    subscriptions: list[str] = field(default_factory=list)
    pinned: bool = False  # must be served by `home` (e.g. a per-session child lives there)
    stream: str | None = None  # the replica holding the session's GET (or SSE) stream
    created: float = field(default_factory=time.time)
    view: str = "merged"  # the endpoint it was opened on: "merged" (/mcp) or a server's slug (/servers/<slug>/mcp)
    headers: dict[str, str] = field(default_factory=dict)  # only those a server maps into a child's environment

    def to_fields(self) -> dict[str, bytes]:
        """The hash fields: each value orjson-encoded."""
        return {name: orjson.dumps(value) for name, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> SessionRecord:
        """Raises: KeyError when the hash lacks `id`."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {name: orjson.loads(raw) for name, raw in fields.items() if name in known}
        return cls(**values)


_FIELDS = frozenset(f.name for f in dataclasses.fields(SessionRecord)) - {"id"}


class SessionRecords:
    """The cluster's session records in one Redis; see the module docstring."""

    def __init__(self, redis: aioredis.Redis, namespace: str, ttl: float) -> None:
        """Raises: ValueError for a bad namespace or a `ttl` that is not positive."""
        if ttl <= 0:
            raise ValueError(f"session ttl must be positive seconds; got {ttl}")
        self._redis = redis
        self._keys = Keys(namespace)
        self.ttl = ttl
        self._ttl_ms = max(1, int(ttl * 1000))
        self._touch_every = ttl / 10
        self._touched: dict[str, float] = {}
        self._swept = time.monotonic()
        self._create = redis.register_script(_CREATE)
        self._touch = redis.register_script(_TOUCH)
        self._update = redis.register_script(_UPDATE)
        self._subscriptions = redis.register_script(_SUBSCRIPTIONS)
        self._count = redis.register_script(_COUNT)

    async def create(self, record: SessionRecord, cap: int | None = None) -> bool:
        """Store a new record unless `cap` live sessions exist cluster-wide or the id is taken; True if stored."""
        pairs = [item for name_value in record.to_fields().items() for item in name_value]
        keys = [self._keys.session(record.id), self._keys.sessions]
        stored = await self._create(keys=keys, args=[record.id, self._ttl_ms, -1 if cap is None else cap, *pairs])
        if stored == 1:
            self._touched[record.id] = time.monotonic()
        return bool(stored == 1)

    async def get(self, session_id: str) -> SessionRecord | None:
        """The record, or None when it is unknown or expired."""
        fields = cast(dict[str, str], await self._redis.hgetall(self._keys.session(session_id)))  # type: ignore[misc]
        if not fields:
            return None
        return SessionRecord.from_fields({"id": orjson.dumps(session_id).decode(), **fields})

    async def update(self, session_id: str, **fields: Any) -> bool:
        """Replace the given fields atomically, keeping the TTL; False when the record is gone.

        Raises:
            ValueError: a field name that `SessionRecord` does not have (or `id`).
        """
        unknown = sorted(set(fields) - _FIELDS)
        if unknown:
            raise ValueError(f"SessionRecord has no field(s) {', '.join(unknown)} (or they cannot change)")
        if not fields:
            return await self._redis.exists(self._keys.session(session_id)) == 1
        pairs = [item for name, value in fields.items() for item in (name, orjson.dumps(value))]
        return bool(await self._update(keys=[self._keys.session(session_id)], args=pairs) == 1)

    async def subscribe(self, session_id: str, uri: str) -> bool:
        """Add `uri` to the record's subscriptions (once), atomically; False when the record is gone."""
        return bool(await self._subscriptions(keys=[self._keys.session(session_id)], args=["add", uri]) == 1)

    async def unsubscribe(self, session_id: str, uri: str) -> bool:
        """Remove `uri` from the record's subscriptions, atomically; False when the record is gone."""
        return bool(await self._subscriptions(keys=[self._keys.session(session_id)], args=["remove", uri]) == 1)

    async def touch(self, session_id: str) -> bool:
        """Refresh the TTL (at most once per `ttl / 10` per session from this replica); False once it is gone."""
        now = time.monotonic()
        last = self._touched.get(session_id)
        if last is not None and now - last < self._touch_every:
            return True
        self._sweep(now)
        alive = await self._touch(
            keys=[self._keys.session(session_id), self._keys.sessions], args=[session_id, self._ttl_ms]
        )
        if alive == 1:
            self._touched[session_id] = now
            return True
        self._touched.pop(session_id, None)
        return False

    def _sweep(self, now: float) -> None:
        """Forget throttle entries older than the TTL: the memory held is bounded by sessions used lately."""
        if now - self._swept < self.ttl:
            return
        self._swept = now
        self._touched = {sid: at for sid, at in self._touched.items() if now - at < self.ttl}

    async def delete(self, session_id: str) -> bool:
        """Remove the record; True if it existed."""
        self._touched.pop(session_id, None)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.session(session_id))
            pipe.zrem(self._keys.sessions, session_id)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def count(self) -> int:
        """Live sessions in the cluster."""
        return int(await self._count(keys=[self._keys.sessions]))
