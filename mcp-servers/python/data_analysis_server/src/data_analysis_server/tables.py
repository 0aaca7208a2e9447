"""Turning frames and numpy values into small, JSON-safe structures sized for an LLM's context.

Contract: every table leaving the server goes through `cap_table`, which returns the rows as
records plus `total_rows`, `returned_rows` and `truncated`, trimmed both by a row cap and by a
character budget (clients cap a tool result at ~25k tokens). NaN/inf become null, numpy scalars
become Python scalars, timestamps become ISO strings. Nothing here mutates its input.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd


def jsonable(value: Any) -> Any:
    """Recursively convert numpy/pandas scalars and containers to JSON-safe Python values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return pd.Timedelta(value).isoformat()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Decimal):
        f = float(value)
        return f if math.isfinite(f) and Decimal(repr(f)) == value else str(value)
    if isinstance(value, str):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with JSON-safe values (column names stringified)."""
    cols = [str(c) for c in frame.columns]
    return [dict(zip(cols, (jsonable(v) for v in row), strict=True)) for row in frame.itertuples(index=False)]


def cap_table(frame: pd.DataFrame, max_rows: int, max_chars: int, include_index: bool = False) -> dict[str, Any]:
    """Return `{columns, rows, total_rows, returned_rows, truncated}` within both caps.

    The character cap is enforced on the JSON encoding of the rows, dropping rows from the end,
    because a few wide text columns can blow a client's budget long before the row cap does.
    """
    head = frame.head(max(max_rows, 0))
    if include_index:
        head = head.reset_index()
    return cap_records([str(c) for c in head.columns], frame_records(head), len(frame), max_chars)


def cap_records(columns: list[str], rows: list[dict[str, Any]], total: int, max_chars: int) -> dict[str, Any]:
    """`cap_table` for rows that are already JSON values (SQL results)."""
    size = 2
    kept: list[dict[str, Any]] = []
    for row in rows:
        size += len(json.dumps(row, default=str)) + 1
        if size > max_chars:
            break
        kept.append(row)
    return {
        "columns": columns,
        "rows": kept,
        "total_rows": total,
        "returned_rows": len(kept),
        "truncated": len(kept) < total,
    }


def markdown_preview(records: list[dict[str, Any]], max_rows: int = 5, max_width: int = 24) -> str:
    """A tiny markdown table for the text summary of a result (the full rows go in structuredContent)."""
    if not records:
        return "(no rows)"
    cols = list(records[0])

    def cell(v: Any) -> str:
        text = "" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in records[:max_rows]]
    return "\n".join(lines)
