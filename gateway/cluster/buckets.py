"""Rate limits that hold across replicas: the token buckets of `gateway/policy/ratelimit.py`, kept in Redis.

Same semantics as `RateLimiter.check(identity, tool)`: a call takes one token from the identity's bucket
(`overrides[identity]`, else `per_identity`) and from the identity × tool bucket (`per_identity_tool`),
all or nothing; when any is short nothing is taken and the answer is the seconds until every one of them
holds a token again — exact, so a retry after that long succeeds unless someone else spent the token first.

Each check is ONE `EVALSHA` of one script (redis-py's registered script: loaded on first use and again
after a `NOSCRIPT`, e.g. when Redis restarted). The script reads the time from Redis `TIME`, so every
replica uses one clock whatever its own says, refills, decides, and writes back only when it consumed.
A bucket key is a hash `{t: tokens, u: updated}` with a PEXPIRE of the time it would take to be full again
(plus a second): an idle bucket vanishes, and a vanished bucket comes back full, which is what it would be
anyway — memory is bounded by the buckets used lately. Floats cross the script as `%.17g` strings (Lua
numbers are doubles; Redis would truncate a returned number to an integer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from gateway.cluster.keys import Keys

if TYPE_CHECKING:
    from gateway.config import Bucket, RateLimitsConfig

# KEYS: bucket keys. ARGV: rate, burst for each key, in order. Returns nil (allowed) or the wait as a string.
_CHECK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local wait = 0
local levels = {}
for i, key in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', key, 't', 'u')
  local level, updated = tonumber(state[1]), tonumber(state[2])
  if level == nil or updated == nil then level, updated = burst, now end
  level = math.min(burst, level + math.max(0, now - updated) * rate)
  levels[i] = level
  local missing = 1 - level
  if missing > 1e-9 and missing / rate > wait then wait = missing / rate end
end
if wait > 0 then return string.format('%.17g', wait) end
for i, key in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local left = levels[i] - 1
  redis.call('HSET', key, 't', string.format('%.17g', left), 'u', string.format('%.17g', now))
  redis.call('PEXPIRE', key, math.ceil((burst - left) / rate * 1000) + 1000)
end
return false
"""


class RedisRateLimiter:
    """Answers "may this identity call this tool now?" for the whole cluster; see the module docstring."""

    def __init__(self, redis: aioredis.Redis, namespace: str, config: RateLimitsConfig | None) -> None:
        self._keys = Keys(namespace)
        self._config = config
        self._script = redis.register_script(_CHECK)

    @property
    def enabled(self) -> bool:
        """True when any bucket is configured."""
        config = self._config
        return config is not None and bool(config.per_identity or config.per_identity_tool or config.overrides)

    async def check(self, identity: str, tool: str) -> float | None:
        """Take one token from each applicable bucket and return None, or return the seconds to wait (> 0).

        Raises:
            redis.exceptions.RedisError: Redis did not answer; nothing is known about the limit.
        """
        buckets = self._buckets(identity, tool)
        if not buckets:
            return None
        keys = [key for key, _ in buckets]
        args = [value for _, bucket in buckets for value in (repr(float(bucket.rate)), bucket.burst)]
        wait = await self._script(keys=keys, args=args)
        return None if wait is None else float(wait)

    def _buckets(self, identity: str, tool: str) -> list[tuple[str, Bucket]]:
        config = self._config
        if config is None:
            return []
        found: list[tuple[str, Bucket]] = []
        own = config.overrides.get(identity, config.per_identity)
        if own is not None:
            found.append((self._keys.identity_bucket(identity), own))
        if config.per_identity_tool is not None:
            found.append((self._keys.tool_bucket(identity, tool), config.per_identity_tool))
        return found
