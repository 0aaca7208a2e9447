"""SQL result values as JSON values that keep their type, and the column types that say how.

Contract: `convert(rows, names, sql_types)` turns the Python values of an Arrow result into JSON:
integers (TINYINT … HUGEINT) and floats stay numbers; a DECIMAL is a number when every returned
value round-trips exactly through a double (always for precision ≤ 15), otherwise the whole column
is exact decimal strings; integers beyond ±2⁵³ (where JSON readers lose digits) likewise become
strings; INTERVAL becomes an ISO-8601 duration (`P1M2DT3H4.5S`), DATE/TIME/TIMESTAMP ISO-8601
text (TIMESTAMPTZ with its offset), BLOB base64, UUID text, NaN/±Infinity null. Nested LIST/STRUCT/MAP
values are converted the same way. It returns the rows and one `{name, sql_type, json_type, note?}`
per column, so a client knows a string column was a DECIMAL. No DuckDB or MCP import.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import uuid
from decimal import Decimal
from typing import Any

SAFE_INT = 2**53
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER")
_INTEGER_TYPES += ("UBIGINT", "UHUGEINT")
_FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")


def _split(a: int, b: int) -> tuple[int, int]:
    """(quotient, remainder) truncated toward zero, so both keep the sign of `a`."""
    q = abs(a) // b * (1 if a >= 0 else -1)
    return q, a - q * b


def iso_duration(months: int, days: int, nanoseconds: int) -> str:
    """ISO-8601 duration of a DuckDB interval: P1Y2M3DT4H5M6.5S; wholly negative → '-P…'; zero → 'PT0S'."""
    if any((months, days, nanoseconds)) and months <= 0 and days <= 0 and nanoseconds <= 0:
        return "-" + iso_duration(-months, -days, -nanoseconds)
    years, months = _split(months, 12)
    seconds, nanos = _split(nanoseconds, 10**9)
    hours, seconds = _split(seconds, 3600)
    minutes, seconds = _split(seconds, 60)
    exact = (Decimal(seconds * 10**9 + nanos) / 10**9).normalize()
    date = "".join(f"{v}{u}" for v, u in ((years, "Y"), (months, "M"), (days, "D")) if v)
    time = "".join(f"{v}{u}" for v, u in ((hours, "H"), (minutes, "M")) if v)
    time += f"{exact:f}S" if exact else ""
    return "P" + date + (f"T{time}" if time else "") if date or time else "PT0S"


def _decimal_exact(value: Decimal) -> bool:
    return Decimal(repr(float(value))) == value


def value(v: Any) -> Any:
    """One value to JSON by its Python type (used for nested values and as the fallback)."""
    if v is None or isinstance(v, bool | str):
        return v
    if isinstance(v, int):
        return v if -SAFE_INT <= v <= SAFE_INT else str(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, Decimal):
        if not v.is_finite():
            return None
        if v == v.to_integral_value() and abs(v) <= SAFE_INT:
            return int(v)
        return float(v) if _decimal_exact(v) else str(v)
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return iso_duration(0, v.days, (v.seconds * 10**6 + v.microseconds) * 1000)
    if isinstance(v, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, uuid.UUID):
        return str(v)
    if hasattr(v, "months") and hasattr(v, "nanoseconds"):  # pyarrow MonthDayNano
        return iso_duration(int(v.months), int(v.days), int(v.nanoseconds))
    if isinstance(v, dict):
        return {str(k): value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        # MAP values arrive as a list of (key, value) pairs.
        if v and all(isinstance(x, tuple) and len(x) == 2 for x in v):
            return {str(k): value(x) for k, x in v}
        return [value(x) for x in v]
    return str(v)


def _column(sql_type: str, values: list[Any]) -> tuple[list[Any], str, str | None]:
    """(converted values, json_type, note) for one result column."""
    base = sql_type.split("(")[0].strip().upper()
    present = [v for v in values if v is not None]
    if base == "DECIMAL" or base in _INTEGER_TYPES:
        exact = all(
            (v == v.to_integral_value() and abs(v) <= SAFE_INT) or _decimal_exact(v)
            if isinstance(v, Decimal)
            else abs(int(v)) <= SAFE_INT
            for v in present
        )
        if exact:
            return [value(v) for v in values], "number", None
        why = "beyond ±2^53" if base != "DECIMAL" else "more digits than a double holds exactly"
        return [None if v is None else str(v) for v in values], "string", f"{sql_type} values with {why}: exact strings"
    if base in _FLOAT_TYPES:
        note = "NaN and ±Infinity are null" if any(not math.isfinite(v) for v in present) else None
        return [value(v) for v in values], "number", note
    if base == "BOOLEAN":
        return values, "boolean", None
    if base == "BLOB":
        return [value(v) for v in values], "string", "base64 of the bytes"
    if base == "INTERVAL":
        return [value(v) for v in values], "string", "ISO-8601 duration"
    if base in ("DATE", "TIME", "TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS") or (
        base.startswith(("TIMESTAMP", "TIME"))
    ):
        return [value(v) for v in values], "string", "ISO-8601"
    if base.endswith("]") or base.startswith(("STRUCT", "MAP", "LIST", "UNION")):
        return [value(v) for v in values], "array" if base.endswith("]") else "object", None
    return [value(v) for v in values], "string", None


def convert(
    rows: list[dict[str, Any]], names: list[str], sql_types: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(JSON rows, column types) for a result; see the module docstring for the mapping."""
    columns: dict[str, list[Any]] = {}
    described = []
    for name, sql_type in zip(names, sql_types, strict=True):
        converted, json_type, note = _column(sql_type, [r.get(name) for r in rows])
        columns[name] = converted
        entry = {"name": name, "sql_type": sql_type, "json_type": json_type}
        if note:
            entry["note"] = note
        described.append(entry)
    out = [{name: columns[name][i] for name in names} for i in range(len(rows))]
    return out, described
