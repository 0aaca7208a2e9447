"""The console's pure parts: the last hour per minute, its SVG, browser sessions, escaping."""

from __future__ import annotations

from gateway.hub.console.activity import Activity, outcome_class
from gateway.hub.console.charts import calls_chart, latency_chart
from gateway.hub.console.logins import Logins, cookie
from gateway.hub.console.pages import render, render_login, render_server
from gateway.policy.auth import Identity


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_activity_counts_by_class_per_minute_and_reads_quantiles() -> None:
    clock = Clock()
    activity = Activity(clock)
    for ms in range(1, 101):
        activity.record("s", "ok", float(ms))
    activity.record("s", "tool_error", 5.0)
    activity.record("s", "denied", 1.0)
    clock.now += 120
    activity.record("s", "error:-32011", 7.0)
    rows = activity.series("s")
    assert len(rows) == 60 and rows[-1]["error"] == 1 and rows[-3]["ok"] == 100
    assert rows[-3]["tool_error"] == 1 and rows[-3]["refused"] == 1 and rows[-2]["ok"] == 0
    assert 45 <= rows[-3]["p50"] <= 55 and rows[-3]["p95"] >= 90 and rows[-2]["p50"] is None
    clock.now += 3600
    assert sum(r["ok"] for r in activity.series("s")) == 0  # older than an hour: gone
    assert [outcome_class(o) for o in ("ok", "rate_limited", "error:-32603")] == ["ok", "refused", "error"]


def test_charts_are_inline_svg_with_a_title_per_bar() -> None:
    clock = Clock()
    activity = Activity(clock)
    activity.record("s", "ok", 2.0)
    rows = activity.series("s")
    svg = calls_chart(rows) + latency_chart(rows)
    assert svg.count("<svg") == 2 and "<title>1 calls (1 ok)</title>" in svg and "<circle" in svg
    assert "<script" not in svg


def test_logins_are_opaque_expire_and_close_only_with_their_csrf_token() -> None:
    clock = Clock()
    logins = Logins(clock)
    key, login = logins.open(Identity("alice"))
    assert logins.find(key) == login and "alice" not in key
    assert not logins.close(key, "guess") and logins.find(key) is not None
    assert logins.close(key, login.csrf) and logins.find(key) is None
    key, _ = logins.open(Identity("bob"))
    clock.now += 9 * 3600
    assert logins.find(key) is None
    assert cookie("k", secure=True) == "harbor_console=k; HttpOnly; SameSite=Strict; Path=/; Max-Age=28800; Secure"


def test_pages_escape_what_upstreams_wrote() -> None:
    evil = "<img src=x onerror=alert(1)>"
    server = {"name": "s", "state": "ready", "restarts": 0, "last_error": evil, "tools": 1, "in_flight": 0}
    snap = {
        "servers": [server],
        "calls": [],
        "errors": [{"time": "t", "where": "s", "error": evil}],
        "sessions": 0,
        "version": "1",
    }
    detail = {
        "server": server,
        "tools": [{"name": evil, "description": evil}],
        "history": [(0.0, "ready", evil)],
        "errors": [],
    }
    for html in (render(snap), render_server(detail), render_login(evil)):
        assert evil not in html and "&lt;img" in html
