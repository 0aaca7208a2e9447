"""The status page at `/`: one server-rendered HTML document, no build step, no script.

Rendered from the same snapshot that feeds `/readyz` and `/metrics`; every value is HTML-escaped (tool
names and error messages come from upstreams). The page reloads itself every few seconds. With auth on,
an identity sees the servers its policy shows it and its own calls only (`Hub.snapshot_for`), unless it
holds the `ADMIN_SCOPE` scope.
"""

from __future__ import annotations

import time
from html import escape
from typing import Any

REFRESH_SECONDS = 3
ADMIN_SCOPE = "harbor:admin"  # sees every server, call and error on the status page

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d232a}
h1{font-size:1.3rem;margin:0 0 .2rem} h2{font-size:1.05rem;margin:1.4rem 0 .4rem}
table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:.25rem .6rem;border-bottom:1px solid #e3e6ea}
th{background:#f5f6f8;font-weight:600} .muted{color:#6b7480}
.state{font-weight:600} .ready{color:#137333} .starting,.restarting{color:#b06000} .failed,.stopped{color:#c5221f}
.ok{color:#137333} .bad{color:#c5221f} code{font-size:12px}
"""


def render(snapshot: dict[str, Any], viewer: str | None = None) -> str:
    """The page for a snapshot; `viewer` names the identity it was filtered for (None: the full view)."""
    servers, calls = snapshot["servers"], snapshot["calls"]
    ready = sum(1 for s in servers if s["state"] == "ready")
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">',
        "<title>Harbor gateway</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Harbor gateway</h1>",
        f"<p class=muted id=summary>{ready} of {len(servers)} servers ready · {snapshot['sessions']} sessions · "
        f"version {escape(snapshot['version'])} · {time.strftime('%H:%M:%S', time.gmtime())} UTC</p>",
        "<h2>Servers</h2>",
        _table(
            "servers",
            ["server", "state", "tools", "calls in flight", "restarts", "last error"],
            [
                [
                    f'<a href="/servers/{escape(s["name"])}/mcp">{escape(s["name"])}</a>',
                    f'<span class="state {escape(s["state"])}">{escape(s["state"])}</span>',
                    "–" if s["tools"] is None else str(s["tools"]),
                    str(s["in_flight"]),
                    str(s["restarts"]),
                    f"<code>{escape(s['last_error'] or '')}</code>",
                ]
                for s in servers
            ],
        ),
        "<h2>Recent calls</h2>" if viewer is None else f"<h2>Your recent calls ({escape(viewer)})</h2>",
        _table(
            "calls",
            ["time", "identity", "server", "tool", "ms", "outcome"],
            [
                [
                    escape(c["time"]),
                    escape(c["identity"]),
                    escape(c["server"]),
                    escape(c["tool"]),
                    f"{c['duration_ms']:.1f}",
                    f"<span class={'ok' if c['outcome'] == 'ok' else 'bad'}>{escape(c['outcome'])}</span>",
                ]
                for c in reversed(calls)
            ],
        ),
        "<h2>Recent errors</h2>",
        _table(
            "errors",
            ["time", "where", "error"],
            [
                [escape(e["time"]), escape(e["where"]), f"<code>{escape(e['error'])}</code>"]
                for e in reversed(snapshot["errors"])
            ],
        ),
        "</body></html>",
    ]
    return "".join(parts)


def _table(table_id: str, head: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return f"<p class=muted id={table_id}-empty>none yet</p>"
    header = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table id={table_id}><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"
