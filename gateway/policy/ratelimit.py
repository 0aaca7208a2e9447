"""Rate limits: token buckets per identity and per identity x tool, with an exact retry-after.

A bucket holds up to `burst` tokens, starts full and refills at `rate` tokens per second. A call takes one
token from every bucket that applies to it — the identity's bucket (`overrides[identity]` when present,
else `per_identity`) and the identity x tool bucket (`per_identity_tool`) — all or nothing: when any of
them is empty nothing is consumed and `check` returns the seconds until every one of them holds a token
again, which is exactly when a retry succeeds (buckets only fill while nobody consumes).

Memory is bounded: buckets live in an LRU of at most `max_keys` entries; an evicted bucket comes back
full, which only ever errs towards allowing. Time comes from the injected monotonic clock; nothing here
sleeps or does I/O. A lock makes `check` atomic across threads as well as within an event loop.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config import Bucket, RateLimitsConfig

DEFAULT_MAX_KEYS = 100_000
_EPSILON = 1e-9  # float slack so that a retry at exactly `retry_after` succeeds


@dataclass
class _State:
    tokens: float
    updated: float

    def refill(self, bucket: Bucket, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(bucket.burst), self.tokens + elapsed * bucket.rate)
        self.updated = now

    def wait(self, bucket: Bucket) -> float:
        """Seconds until this bucket holds one token; 0 when it does already."""
        missing = 1.0 - self.tokens
        return 0.0 if missing <= _EPSILON else missing / bucket.rate


class RateLimiter:
    """Answers "may this identity call this tool now?" and, when not, "in how many seconds?"."""

    def __init__(
        self,
        config: RateLimitsConfig | None,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self._config = config or RateLimitsConfig()
        self._clock = clock
        self._max_keys = max_keys
        self._states: OrderedDict[tuple[str, ...], _State] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """True when any bucket is configured."""
        config = self._config
        return bool(config.per_identity or config.per_identity_tool or config.overrides)

    def check(self, identity: str, tool: str) -> float | None:
        """Take one token from each applicable bucket and return None, or return the seconds to wait (> 0)."""
        buckets = self._buckets(identity, tool)
        if not buckets:
            return None
        with self._lock:
            now = self._clock()
            states = [(self._state(key, bucket, now), bucket) for key, bucket in buckets]
            for state, bucket in states:
                state.refill(bucket, now)
            wait = max(state.wait(bucket) for state, bucket in states)
            if wait > 0:
                return wait
            for state, _bucket in states:
                state.tokens -= 1.0
            return None

    def _buckets(self, identity: str, tool: str) -> list[tuple[tuple[str, ...], Bucket]]:
        config = self._config
        found: list[tuple[tuple[str, ...], Bucket]] = []
        own = config.overrides.get(identity, config.per_identity)
        if own is not None:
            found.append((("identity", identity), own))
        if config.per_identity_tool is not None:
            found.append((("tool", identity, tool), config.per_identity_tool))
        return found

    def _state(self, key: tuple[str, ...], bucket: Bucket, now: float) -> _State:
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _State(float(bucket.burst), now)
            if len(self._states) > self._max_keys:
                self._states.popitem(last=False)
        else:
            self._states.move_to_end(key)
        return state

    def __len__(self) -> int:
        """How many buckets are held in memory."""
        return len(self._states)
