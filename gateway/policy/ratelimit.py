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

from gateway.config import RateLimitsConfig

DEFAULT_MAX_KEYS = 100_000
_EPSILON = 1e-9  # float slack so that a retry at exactly `retry_after` succeeds


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
        self._states: OrderedDict[tuple[str, ...], list[float]] = OrderedDict()  # key → [tokens, updated]
        self._plans: dict[tuple[str, str], tuple[tuple[tuple[str, ...], float, float], ...]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """True when any bucket is configured."""
        config = self._config
        return bool(config.per_identity or config.per_identity_tool or config.overrides)

    def check(self, identity: str, tool: str) -> float | None:
        """Take one token from each applicable bucket and return None, or return the seconds to wait (> 0).

        This runs on every call, so it is written for speed: the buckets that apply to (identity, tool) are
        worked out once, and a bucket's state is a two-item list [tokens, updated] refilled in place."""
        plan = self._plans.get((identity, tool))
        if plan is None:
            plan = self._plan(identity, tool)
        if not plan:
            return None
        states = self._states
        with self._lock:
            now = self._clock()
            held = []
            wait = 0.0
            for key, rate, burst in plan:
                state = states.get(key)
                if state is None:
                    state = states[key] = [burst, now]
                    if len(states) > self._max_keys:
                        states.popitem(last=False)
                else:
                    states.move_to_end(key)
                    elapsed = now - state[1]
                    if elapsed > 0:
                        state[0] = min(burst, state[0] + elapsed * rate)
                    state[1] = now
                missing = 1.0 - state[0]
                if missing > _EPSILON:
                    wait = max(wait, missing / rate)
                held.append(state)
            if wait > 0:
                return wait
            for state in held:
                state[0] -= 1.0
            return None

    def _plan(self, identity: str, tool: str) -> tuple[tuple[tuple[str, ...], float, float], ...]:
        """The buckets (state key, rate, burst) that apply to a call of `tool` by `identity`, remembered."""
        config = self._config
        found: list[tuple[tuple[str, ...], float, float]] = []
        own = config.overrides.get(identity, config.per_identity)
        if own is not None:
            found.append((("identity", identity), float(own.rate), float(own.burst)))
        if config.per_identity_tool is not None:
            bucket = config.per_identity_tool
            found.append((("tool", identity, tool), float(bucket.rate), float(bucket.burst)))
        if len(self._plans) >= self._max_keys:
            self._plans.clear()  # a pure function of the config: forgetting only costs recomputing
        plan = self._plans[(identity, tool)] = tuple(found)
        return plan

    def __len__(self) -> int:
        """How many buckets are held in memory."""
        return len(self._states)
