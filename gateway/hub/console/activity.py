"""The last hour of tool calls per server, minute by minute: counts by outcome class and latency quantiles.

A bucket per server per minute keeps the count of each outcome class (`ok`, `tool_error`, `refused` — the
gateway said no: invalid, unknown, denied, rate-limited — and `error`) and a bounded sample of durations
(reservoir sampling, `SAMPLES` per minute), from which p50 and p95 are read. Memory is bounded: `MINUTES`
buckets per server. Pure: time comes from the injected clock; no I/O.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MINUTES = 60
SAMPLES = 512
CLASSES = ("ok", "tool_error", "refused", "error")
_REFUSED = frozenset({"invalid", "unknown_tool", "denied", "rate_limited"})


def outcome_class(outcome: str) -> str:
    """The chart class of an audit outcome."""
    if outcome in ("ok", "tool_error"):
        return outcome
    return "refused" if outcome in _REFUSED else "error"


@dataclass
class _Minute:
    minute: int
    counts: Counter[str] = field(default_factory=Counter)
    durations: list[float] = field(default_factory=list)
    seen: int = 0


class Activity:
    def __init__(self, clock: Callable[[], float] = time.time, rng: random.Random | None = None) -> None:
        self._clock = clock
        self._rng = rng or random.Random(0)
        self._servers: dict[str, deque[_Minute]] = {}

    def record(self, server: str, outcome: str, duration_ms: float) -> None:
        minute = int(self._clock() // 60)
        buckets = self._servers.setdefault(server, deque(maxlen=MINUTES))
        if not buckets or buckets[-1].minute != minute:
            buckets.append(_Minute(minute))
        bucket = buckets[-1]
        bucket.counts[outcome_class(outcome)] += 1
        bucket.seen += 1
        if len(bucket.durations) < SAMPLES:
            bucket.durations.append(duration_ms)
        else:  # reservoir: every call of the minute equally likely to be kept
            slot = self._rng.randrange(bucket.seen)
            if slot < SAMPLES:
                bucket.durations[slot] = duration_ms

    def series(self, server: str) -> list[dict[str, Any]]:
        """One entry per minute of the last hour, oldest first: counts per class, p50/p95 ms (None: no call)."""
        now = int(self._clock() // 60)
        by_minute = {b.minute: b for b in self._servers.get(server, ())}
        rows = []
        for minute in range(now - MINUTES + 1, now + 1):
            bucket = by_minute.get(minute)
            row: dict[str, Any] = {"minute": minute, **{c: (bucket.counts[c] if bucket else 0) for c in CLASSES}}
            samples = sorted(bucket.durations) if bucket else []
            row["p50"] = statistics.median(samples) if samples else None
            row["p95"] = samples[min(len(samples) - 1, int(len(samples) * 0.95))] if samples else None
            rows.append(row)
        return rows

    def forget(self, server: str) -> None:
        self._servers.pop(server, None)
