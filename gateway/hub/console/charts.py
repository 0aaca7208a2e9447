"""Inline SVG charts of a server's last hour: calls per minute stacked by outcome, and p50/p95 latency lines.

Plain SVG markup with a `<title>` per bar for a hover read-out, sized in CSS pixels; no script, no external
file, so the page renders the same in any browser and in a screenshot. Input is `Activity.series` rows.
"""

from __future__ import annotations

from html import escape
from typing import Any

COLORS = {"ok": "#137333", "tool_error": "#e37400", "refused": "#8e24aa", "error": "#c5221f"}
LATENCY = {"p50": "#1a73e8", "p95": "#9aa0a6"}


def calls_chart(rows: list[dict[str, Any]], width: int = 240, height: int = 40) -> str:
    """Calls per minute, one stacked bar per minute (outcome classes colored)."""
    peak = max((sum(r[c] for c in COLORS) for r in rows), default=0) or 1
    step = width / max(len(rows), 1)
    bars = []
    for index, row in enumerate(rows):
        y = float(height)
        total = sum(row[c] for c in COLORS)
        for kind, color in COLORS.items():
            if not row[kind]:
                continue
            h = row[kind] / peak * (height - 2)
            y -= h
            bars.append(
                f'<rect x="{index * step:.1f}" y="{y:.1f}" width="{max(step - 1, 1):.1f}" height="{h:.1f}" '
                f'fill="{color}"><title>{total} calls ({escape(_breakdown(row))})</title></rect>'
            )
    return _svg("calls per minute", width, height, "".join(bars), f"peak {peak}/min")


def latency_chart(rows: list[dict[str, Any]], width: int = 240, height: int = 40) -> str:
    """p50 and p95 latency per minute (ms), as lines over the minutes that had calls."""
    values = [r[k] for r in rows for k in LATENCY if r[k] is not None]
    peak = max(values, default=0.0) or 1.0
    step = width / max(len(rows), 1)
    lines = []
    for key, color in LATENCY.items():
        points = [
            f"{index * step + step / 2:.1f},{height - 1 - row[key] / peak * (height - 2):.1f}"
            for index, row in enumerate(rows)
            if row[key] is not None
        ]
        if points:
            lines.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{" ".join(points)}"/>')
            for point in points:  # a dot per minute with calls, so one busy minute shows too
                x, y = point.split(",")
                lines.append(f'<circle cx="{x}" cy="{y}" r="1.6" fill="{color}"/>')
    return _svg("p50 / p95 latency", width, height, "".join(lines), f"peak {peak:.1f} ms")


def _breakdown(row: dict[str, Any]) -> str:
    return ", ".join(f"{row[c]} {c}" for c in COLORS if row[c])


def _svg(label: str, width: int, height: int, body: str, caption: str) -> str:
    return (
        f'<svg class=chart role=img aria-label="{escape(label)}, last hour" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><rect width="{width}" height="{height}" fill="#f5f6f8"/>{body}'
        f'<text x="{width - 2}" y="10" font-size="9" text-anchor="end" fill="#6b7480">{escape(caption)}</text></svg>'
    )
