"""The one `warnings` convention of every tool result, and undefined numbers as null with a reason.

Contract: a warning is `{"code": str, "message": str}` — `code` a stable snake_case identifier
(`perfect_separation`, `not_converged`, `rows_dropped`, `undefined_statistic`, …), `message` one
sentence saying what happened and what to do. Every tool's structured output carries `warnings`
(a list, `[]` when none) and its text starts with one `Warning: <message>` line per warning; the
server adds both, the domain modules only append to the list. A number that is NaN or infinite is
never reported as a number: `defined` turns it into `None` and records why, so no reading (a
significance verdict, an effect-size word) is ever built on it. No MCP import.
"""

from __future__ import annotations

import math
from typing import Any

Warning_ = dict[str, str]


def warning(code: str, message: str) -> Warning_:
    """One warning record."""
    return {"code": code, "message": message}


def is_number(value: Any) -> bool:
    """True for a finite real number (bools excluded)."""
    if isinstance(value, bool) or value is None:
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def defined(record: dict[str, Any], key: str, value: Any, reason: str) -> Any:
    """Store `value` under `key`, or `None` plus `<key>_reason` when it is not a finite number; returns it."""
    if is_number(value):
        record[key] = float(value)
        return record[key]
    record[key] = None
    record[f"{key}_reason"] = reason
    return None


def text_with_warnings(summary: str, warnings: list[Warning_]) -> str:
    """The text content: one `Warning: …` line per warning, then the summary."""
    lines = [f"Warning: {w['message']}" for w in warnings]
    return "\n".join([*lines, summary]) if lines else summary
