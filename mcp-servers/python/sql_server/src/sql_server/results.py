"""Layer 3: result rows as JSON values, capped by rows and by bytes, with the truth about what was cut.

Contract: a backend feeds fetched rows to `RowCap.add` in chunks until it returns False; the cap keeps at
most `limit` rows and at most `max_bytes` of their JSON encoding, and records why it stopped
(`"rows"` or `"bytes"`). The backend fetches `limit + 1` rows so that "exactly `limit` rows" and "more
than `limit`" are told apart without counting.

Values become JSON without losing information: integers, text, booleans and NULL as they are; floats as
numbers, except NaN/Infinity as the strings "NaN", "Infinity", "-Infinity"; exact numerics (NUMERIC,
DECIMAL) and dates/times as strings (PostgreSQL's own text form, or ISO 8601); binary values as base64
strings (the column type says bytea/blob); arrays as lists; JSON columns as JSON; anything else as its
text form. Nothing here talks to a database.
"""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson

Encoder = Callable[[Any], Any]
_PLAIN = frozenset({int, str, bool, type(None)})


def to_json(value: Any) -> Any:
    """One database value as a JSON-compatible Python value (see the module docstring for the rules)."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        return value if math.isfinite(value) else _non_finite(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return _duration(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def _non_finite(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _duration(value: timedelta) -> str:
    """ISO 8601 duration: P1DT2H3M4.5S (negative durations carry a leading minus)."""
    sign, value = ("-", -value) if value < timedelta(0) else ("", value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    secs = seconds + value.microseconds / 1e6
    clock = "".join(f"{n:g}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    days = f"{value.days}D" if value.days else ""
    if not days and not clock:
        return "PT0S"
    return f"{sign}P{days}" + (f"T{clock}" if clock else "")


def encode_float(value: Any) -> Any:
    """A float column's value: finite floats unchanged, NaN and infinities as strings."""
    return value if value is None or math.isfinite(value) else _non_finite(value)


@dataclass
class RowCap:
    """Collects encoded rows up to `limit` rows and `max_bytes` of JSON, and says why it stopped.

    `encoders[i]` converts column i (None: the driver's value is already JSON-compatible); with no encoders
    every value goes through `to_json`'s fast path.
    """

    limit: int
    max_bytes: int
    encoders: Sequence[Encoder | None] | None = None
    rows: list[list[Any]] = field(default_factory=list)
    bytes: int = 0
    truncated: str | None = None  # "rows" | "bytes"
    received: int = 0  # rows taken from the driver (kept or not)

    @property
    def full(self) -> bool:
        return self.truncated is not None

    def add(self, chunk: Sequence[Sequence[Any]]) -> bool:
        """Take a chunk of driver rows; False once the cap is reached (the caller stops fetching)."""
        if self.full:
            return False
        self.received += len(chunk)
        room = self.limit - len(self.rows)
        if len(chunk) > room:
            chunk, self.truncated = chunk[:room], "rows"
        encoded = self._encode(chunk)
        size = len(_dumps(encoded)) - 1 if encoded else 0  # each row counted with one separator
        if self.bytes + size <= self.max_bytes:
            self.rows.extend(encoded)
            self.bytes += size
            return not self.full
        for row in encoded:  # the chunk crosses the byte cap: keep rows while they fit
            row_size = len(_dumps(row)) + 1
            if self.bytes + row_size > self.max_bytes:
                self.truncated = "bytes"
                return False
            self.rows.append(row)
            self.bytes += row_size
        return not self.full

    def _encode(self, chunk: Sequence[Sequence[Any]]) -> list[list[Any]]:
        if self.encoders is None:
            return [[v if type(v) in _PLAIN else to_json(v) for v in row] for row in chunk]
        active = [(i, enc) for i, enc in enumerate(self.encoders) if enc is not None]
        if not active:
            return [list(row) for row in chunk]
        out = []
        for row in chunk:
            values = list(row)
            for i, enc in active:
                value = values[i]
                if value is not None:
                    values[i] = enc(value)
            out.append(values)
        return out


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits (orjson's range): the stdlib encodes it
        return json.dumps(value).encode()


_STORAGE_CLASSES = {int: "integer", float: "real", str: "text", bool: "boolean", bytes: "blob"}


def infer_types(rows: Sequence[Sequence[Any]], width: int) -> list[str]:
    """Column types for drivers that report none (SQLite): the storage class of each column's first non-NULL
    value in `rows` (the driver's rows, before encoding), "null" when there is none."""
    if not rows:
        return ["null"] * width
    types = [_STORAGE_CLASSES.get(type(value), "blob") if value is not None else "" for value in rows[0]]
    for index, found in enumerate(types):
        if not found:
            values = (row[index] for row in rows if row[index] is not None)
            first = next(values, None)
            types[index] = "null" if first is None else _STORAGE_CLASSES.get(type(first), "blob")
    return types
