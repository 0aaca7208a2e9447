"""Rate limits: token buckets under an injected clock, all-or-nothing consumption, exact retry-after."""

from __future__ import annotations

import pytest

from gateway.config import Bucket, RateLimitsConfig
from gateway.policy.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_no_config_never_limits() -> None:
    limiter = RateLimiter(None)
    assert not limiter.enabled
    assert all(limiter.check("alice", "t") is None for _ in range(1000))
    assert len(limiter) == 0


def test_burst_then_refusal_with_correct_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimitsConfig(per_identity=Bucket(rate=2, burst=3)), clock)
    assert [limiter.check("alice", "t") for _ in range(3)] == [None, None, None]
    assert limiter.check("alice", "t") == pytest.approx(0.5)
    clock.now += 0.25
    assert limiter.check("alice", "t") == pytest.approx(0.25)
    clock.now += 0.25
    assert limiter.check("alice", "t") is None
    assert limiter.check("alice", "t") == pytest.approx(0.5)


def test_retry_at_exactly_retry_after_succeeds() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimitsConfig(per_identity=Bucket(rate=3, burst=1)), clock)
    assert limiter.check("a", "t") is None
    for _ in range(20):
        wait = limiter.check("a", "t")
        assert wait is not None and wait > 0
        clock.now += wait
        assert limiter.check("a", "t") is None


def test_refill_is_capped_at_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimitsConfig(per_identity=Bucket(rate=1, burst=2)), clock)
    clock.now += 3600
    assert [limiter.check("a", "t") is None for _ in range(3)] == [True, True, False]


def test_identities_have_separate_buckets() -> None:
    limiter = RateLimiter(RateLimitsConfig(per_identity=Bucket(rate=1, burst=1)), Clock())
    assert limiter.check("alice", "t") is None
    assert limiter.check("alice", "t") is not None
    assert limiter.check("bob", "t") is None


def test_per_tool_buckets_are_independent() -> None:
    limiter = RateLimiter(RateLimitsConfig(per_identity_tool=Bucket(rate=1, burst=2)), Clock())
    assert limiter.check("alice", "search") is None
    assert limiter.check("alice", "search") is None
    assert limiter.check("alice", "search") == pytest.approx(1.0)
    assert limiter.check("alice", "fetch") is None
    assert limiter.check("bob", "search") is None


def test_override_replaces_the_per_identity_bucket_for_one_identity() -> None:
    config = RateLimitsConfig(per_identity=Bucket(rate=1, burst=1), overrides={"batch": Bucket(rate=10, burst=5)})
    limiter = RateLimiter(config, Clock())
    assert [limiter.check("batch", "t") is None for _ in range(6)] == [True] * 5 + [False]
    assert limiter.check("batch", "t") == pytest.approx(0.1)
    assert [limiter.check("alice", "t") is None for _ in range(2)] == [True, False]


def test_override_applies_even_without_a_default_bucket() -> None:
    limiter = RateLimiter(RateLimitsConfig(overrides={"noisy": Bucket(rate=1, burst=1)}), Clock())
    assert limiter.enabled
    assert [limiter.check("noisy", "t") is None for _ in range(2)] == [True, False]
    assert all(limiter.check("quiet", "t") is None for _ in range(10))


def test_nothing_is_consumed_when_one_bucket_is_empty() -> None:
    clock = Clock()
    config = RateLimitsConfig(per_identity=Bucket(rate=1, burst=3), per_identity_tool=Bucket(rate=1, burst=1))
    limiter = RateLimiter(config, clock)
    assert limiter.check("alice", "slow") is None  # identity bucket 3 -> 2, slow bucket 1 -> 0
    for _ in range(5):  # refused by the tool bucket: the identity bucket must stay at 2
        assert limiter.check("alice", "slow") == pytest.approx(1.0)
    assert limiter.check("alice", "a") is None
    assert limiter.check("alice", "b") is None
    assert limiter.check("alice", "c") == pytest.approx(1.0)  # identity bucket now empty


def test_retry_after_is_the_longest_wait_among_empty_buckets() -> None:
    clock = Clock()
    config = RateLimitsConfig(per_identity=Bucket(rate=0.5, burst=1), per_identity_tool=Bucket(rate=4, burst=1))
    limiter = RateLimiter(config, clock)
    assert limiter.check("a", "t") is None
    assert limiter.check("a", "t") == pytest.approx(2.0)


def test_memory_is_bounded_by_evicting_the_least_recently_used_bucket() -> None:
    limiter = RateLimiter(RateLimitsConfig(per_identity=Bucket(rate=1, burst=1)), Clock(), max_keys=100)
    assert limiter.check("keep", "t") is None  # its bucket is now empty
    for index in range(500):
        assert limiter.check(f"user-{index}", "t") is None
        assert limiter.check("keep", "t") is not None  # recently used, never evicted, so still empty
    assert len(limiter) == 100
    assert limiter.check("user-0", "t") is None  # evicted long ago: comes back full
