"""Prometheus metrics of the aggregating gateway, in a registry of its own (never the global one).

Counters and histograms are updated when a call finishes; gauges that mirror live state (sessions, calls
in flight, child restarts, server state) are read at scrape time from the hub, so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STATES = ("starting", "ready", "restarting", "failed", "stopped")


class Metrics:
    """`identity_labels`: label the rate-limit counter by identity (off: the open endpoint names nobody)."""

    def __init__(self, live: Callable[[], dict[str, Any]], identity_labels: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter(
            "harbor_tool_calls",
            "Tool calls by server, tool and outcome",
            ["server", "tool", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "harbor_tool_call_duration_seconds",
            "Tool call latency",
            ["server"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
        self.identity_labels = identity_labels
        self.rate_limited = Counter(
            "harbor_rate_limited",
            "Calls refused by a rate limit",
            ["identity"] if identity_labels else [],
            registry=self.registry,
        )
        self.registry.register(_Live(live))
        self.replica: str | None = None  # with replicas: every sample carries `replica="<name>"`
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._histograms: dict[str, Any] = {}

    def call_done(self, record: dict[str, Any]) -> None:
        outcome = str(record["outcome"]).split(":")[0]
        key = (record["server"], record["tool"], outcome)
        counter = self._counters.get(key)
        if counter is None:  # labels() is a locked lookup; a call path needs only a dict hit
            counter = self._counters[key] = self.calls.labels(*key)
        counter.inc()
        if outcome == "rate_limited":
            (self.rate_limited.labels(record["identity"]) if self.identity_labels else self.rate_limited).inc()
            return
        histogram = self._histograms.get(record["server"])
        if histogram is None:
            histogram = self._histograms[record["server"]] = self.latency.labels(record["server"])
        histogram.observe(float(record["duration_ms"]) / 1000)

    def render(self) -> bytes:
        if self.replica is None:
            return generate_latest(self.registry)
        return generate_latest(_Labelled(self.registry, "replica", self.replica))  # type: ignore[arg-type]


class _Labelled:
    """A registry's metrics with one more label on every sample: Prometheus scrapes each replica, and the series
    of different replicas must not collide when summed."""

    def __init__(self, registry: CollectorRegistry, name: str, value: str) -> None:
        self._registry, self._name, self._value = registry, name, value

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            labelled = Metric(family.name, family.documentation, family.type, family.unit)
            for sample in family.samples:
                labelled.add_sample(
                    sample.name,
                    {**sample.labels, self._name: self._value},
                    sample.value,
                    sample.timestamp,
                    sample.exemplar,
                )
            yield labelled


class _Live(Collector):
    def __init__(self, live: Callable[[], dict[str, Any]]) -> None:
        self._live = live

    def collect(self) -> Iterator[Metric]:
        snapshot = self._live()
        sessions = GaugeMetricFamily("harbor_sessions", "Open client sessions")
        sessions.add_metric([], snapshot["sessions"])
        inflight = GaugeMetricFamily("harbor_calls_in_flight", "Calls awaiting a reply", labels=["server"])
        restarts = GaugeMetricFamily("harbor_child_restarts", "Restarts of each upstream", labels=["server"])
        state = GaugeMetricFamily(
            "harbor_server_state", "1 for the state each server is in", labels=["server", "state"]
        )
        for server in snapshot["servers"]:
            inflight.add_metric([server["name"]], server["in_flight"])
            restarts.add_metric([server["name"]], server["restarts"])
            for name in STATES:
                state.add_metric([server["name"], name], 1.0 if server["state"] == name else 0.0)
        yield from (sessions, inflight, restarts, state)

    def describe(self) -> Iterator[Metric]:
        return iter(())
