"""The console's HTML pages, rendered from the hub's snapshots: overview, one server's detail, the login form.

Server-rendered documents with inline CSS and SVG, no script. The overview reloads itself every few seconds;
the detail and login pages do not. Every value is HTML-escaped. With auth on, an identity sees the servers its
policy shows it and its own calls and errors only (`Hub.snapshot_for`), unless it holds `ADMIN_SCOPE`.
"""

from __future__ import annotations

import time
from html import escape
from typing import Any

from gateway.hub.console.charts import COLORS, LATENCY, calls_chart, latency_chart

REFRESH_SECONDS = 3

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d232a}
h1{font-size:1.3rem;margin:0 0 .2rem} h2{font-size:1.05rem;margin:1.4rem 0 .4rem}
table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:.25rem .6rem;border-bottom:1px solid #e3e6ea;
vertical-align:top} th{background:#f5f6f8;font-weight:600} .muted{color:#6b7480}
.state{font-weight:600} .ready{color:#137333} .starting,.restarting,.degraded{color:#b06000}
.failed,.stopped{color:#c5221f}
.ok{color:#137333} .bad{color:#c5221f} code{font-size:12px;white-space:pre-wrap} .chart{display:block;margin:1px 0}
form.inline{display:inline;margin-left:.8rem} form.inline button{padding:.1rem .6rem}
.login{max-width:24rem;margin:3rem auto} .login input{width:100%;
padding:.4rem;margin:.4rem 0;font:inherit} button{font:inherit;padding:.3rem .8rem} .legend span{margin-right:.8rem}
"""


def _head(title: str, refresh: bool) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8>{meta}<title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>"
    )


def _account(viewer: str | None, csrf: str | None) -> str:
    if viewer is None:
        return ""
    logout = (
        f'<form class=inline method=post action="/logout"><input type=hidden name=csrf value="{escape(csrf)}">'
        "<button>Log out</button></form>"
        if csrf
        else ""
    )
    return f"<p class=muted>signed in as <b>{escape(viewer)}</b>{logout}</p>"


def _state(server: dict[str, Any]) -> str:
    state = escape(server["state"])
    cell = f'<span class="state {state}">{state}</span>'
    if server.get("degraded"):
        cell += ' <span class="state degraded">degraded</span>'
    return cell


def render(snapshot: dict[str, Any], viewer: str | None = None, csrf: str | None = None, full: bool = True) -> str:
    """The overview; `viewer` names the identity it was filtered for, `csrf` offers a logout (cookie session)."""
    servers, calls = snapshot["servers"], snapshot["calls"]
    ready = sum(1 for s in servers if s["state"] == "ready")
    rows = [
        [
            f'<a href="/status/servers/{escape(s["name"])}">{escape(s["name"])}</a>',
            _state(s),
            escape(s.get("mode", "shared")),
            "–" if s["tools"] is None else str(s["tools"]),
            str(s["in_flight"]),
            str(s["restarts"]),
            calls_chart(s.get("activity", [])) + latency_chart(s.get("activity", [])),
            f"<code>{escape(s['last_error'] or s.get('degraded') or '')}</code>",
        ]
        for s in servers
    ]
    parts = [
        _head("Harbor gateway", refresh=True),
        "<h1>Harbor gateway</h1>",
        _account(viewer, csrf),
        f"<p class=muted id=summary>{ready} of {len(servers)} servers ready · {snapshot['sessions']} sessions · "
        f"version {escape(snapshot['version'])} · {time.strftime('%H:%M:%S', time.gmtime())} UTC</p>",
        "<h2>Servers</h2>",
        _legend(),
        _table(
            "servers",
            ["server", "state", "mode", "tools", "calls in flight", "restarts", "last hour", "last error"],
            rows,
        ),
        *_replicas(snapshot.get("replicas")),
        "<h2>Recent calls</h2>" if full else f"<h2>Your recent calls ({escape(viewer or '')})</h2>",
        _calls(calls),
        "<h2>Recent errors</h2>",
        _errors(snapshot["errors"]),
        "</body></html>",
    ]
    return "".join(parts)


def _replicas(replicas: list[dict[str, Any]] | None) -> list[str]:
    """The replicas sharing this gateway's state (heartbeats), and which one drew this page."""
    if replicas is None:
        return []
    rows = [
        [
            escape(str(r["replica"])) + (" <b>(serving you)</b>" if r.get("you") else ""),
            "ready" if r.get("ready") else "not ready",
            str(r.get("sessions", "–")),
            f"{float(r.get('age_s', 0)):.0f} s",
            f"<code>{escape(str(r.get('address', '')))}</code>",
        ]
        for r in replicas
    ]
    return ["<h2>Replicas</h2>", _table("replicas", ["replica", "state", "sessions", "up", "address"], rows)]


def render_server(detail: dict[str, Any], viewer: str | None = None, csrf: str | None = None) -> str:
    """One server's page: state and history, its tools with descriptions, charts, its recent errors."""
    server = detail["server"]
    history = [
        [escape(time.strftime("%H:%M:%S", time.gmtime(at))), f'<span class="state {escape(s)}">{escape(s)}</span>',
         f"<code>{escape(reason or '')}</code>"]
        for at, s, reason in reversed(detail["history"])
    ]  # fmt: skip
    tools = [[f"<code>{escape(t['name'])}</code>", escape(t.get("description") or "")] for t in detail["tools"]]
    parts = [
        _head(f"{server['name']} · Harbor", refresh=False),
        f'<p><a href="/">← all servers</a></p><h1 id=server-name>{escape(server["name"])}</h1>',
        _account(viewer, csrf),
        f"<p>{_state(server)} · mode {escape(server.get('mode', 'shared'))} · pid {escape(str(server.get('pid')))} "
        f"· {server['restarts']} restarts · {server['in_flight']} calls in flight</p>",
        f"<p><code>{escape(server['last_error'] or server.get('degraded') or '')}</code></p>",
        "<h2>Last hour</h2>",
        _legend(),
        calls_chart(server.get("activity", []), 480, 80) + latency_chart(server.get("activity", []), 480, 80),
        f"<h2>Tools ({len(tools)})</h2>",
        _table("tools", ["tool", "description"], tools),
        "<h2>State history</h2>",
        _table("history", ["time", "state", "reason"], history),
        "<h2>Recent errors</h2>",
        _errors(detail["errors"]),
        "</body></html>",
    ]
    return "".join(parts)


def render_login(message: str | None = None, next_path: str = "/") -> str:
    """The login form: a token (one of the gateway's bearer tokens or a JWT) becomes a browser session."""
    note = f"<p class=bad id=login-error>{escape(message)}</p>" if message else ""
    return (
        _head("Sign in · Harbor", refresh=False)
        + "<div class=login><h1>Harbor gateway</h1><p class=muted>This gateway requires a token.</p>"
        + note
        + '<form method=post action="/login"><label for=token>Token</label>'
        + "<input id=token name=token type=password autocomplete=current-password required autofocus>"
        + f'<input type=hidden name=next value="{escape(next_path)}"><button>Sign in</button></form></div>'
        + "</body></html>"
    )


def _legend() -> str:
    keys = [*COLORS.items(), *LATENCY.items()]
    spans = "".join(f"<span style='color:{color}'>■ {escape(key)}</span>" for key, color in keys)
    return f"<p class='legend muted'>{spans}</p>"


def _calls(calls: list[dict[str, Any]]) -> str:
    return _table(
        "calls",
        ["time", "identity", "server", "tool", "child", "ms", "outcome"],
        [
            [
                escape(c["time"]),
                escape(c["identity"]),
                escape(c["server"]),
                escape(c["tool"]),
                escape(c.get("child") or ""),
                f"{c['duration_ms']:.1f}",
                f"<span class={'ok' if c['outcome'] == 'ok' else 'bad'}>{escape(c['outcome'])}</span>",
            ]
            for c in reversed(calls)
        ],
    )


def _errors(errors: list[dict[str, Any]]) -> str:
    return _table(
        "errors",
        ["time", "where", "error"],
        [[escape(e["time"]), escape(e["where"]), f"<code>{escape(e['error'])}</code>"] for e in reversed(errors)],
    )


def _table(table_id: str, head: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return f"<p class=muted id={table_id}-empty>none yet</p>"
    header = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table id={table_id}><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"
