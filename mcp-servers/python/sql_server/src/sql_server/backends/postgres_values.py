"""How PostgreSQL values cross into JSON and back: the text-decoded types, result encoders, parameter coercion.

Contract: `TEXT_TYPES` are decoded as PostgreSQL's own text (exact: NUMERIC keeps every digit, dates and
timestamps are ISO 8601 as the server prints them) and `JSON_TYPES` as JSON; `encoder(type)` converts one
result column to JSON (None when asyncpg's value already is JSON); `coerce(types, args)` turns JSON params
into what asyncpg expects for each parameter's type. No I/O.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidArguments
from ..results import encode_float, to_json

TEXT_TYPES = tuple(
    "numeric date time timetz timestamp timestamptz interval uuid money inet cidr macaddr "
    "point line lseg box path polygon circle bit varbit".split()
)  # decoded as PostgreSQL's own text: exact, and already JSON strings
JSON_TYPES = ("json", "jsonb")
PLAIN_TYPES = frozenset(
    {"int2", "int4", "int8", "oid", "text", "varchar", "bpchar", "char", "name", "bool", "citext", *TEXT_TYPES,
     *JSON_TYPES, "xml", "tsvector", "tsquery"}
)  # fmt: skip


def json_param(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def encoder(pg_type: Any) -> Any:
    """How one result column becomes JSON (None: asyncpg's value already is)."""
    name = pg_type.name
    if name in PLAIN_TYPES:
        return None
    if name in ("float4", "float8"):
        return encode_float
    if name == "bytea":
        return lambda value: base64.b64encode(value).decode("ascii")
    if pg_type.kind == "range":
        return range_text
    return to_json


def range_text(value: Any) -> str:
    """A range in PostgreSQL's own text form: [1,5), (,10], empty."""
    if value.isempty:
        return "empty"
    lower = "" if value.lower is None else str(to_json(value.lower))
    upper = "" if value.upper is None else str(to_json(value.upper))
    return f"{'[' if value.lower_inc else '('}{lower},{upper}{']' if value.upper_inc else ')'}"


def coerce(parameters: Sequence[str], args: Sequence[Any]) -> list[Any]:
    """JSON params to what asyncpg expects for each parameter's type (numbers given as text, base64 bytea …)."""
    return [coerce_value(name, value) for name, value in zip(parameters, args, strict=False)]


def coerce_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name.endswith("[]") and isinstance(value, list):
        return [coerce_value(name[:-2], item) for item in value]
    try:
        if name in ("int2", "int4", "int8", "oid") and isinstance(value, str | float) and not isinstance(value, bool):
            return int(value) if isinstance(value, str) else (int(value) if value.is_integer() else value)
        if name in ("float4", "float8") and isinstance(value, str | int) and not isinstance(value, bool):
            return float(value)
        if name == "bool" and isinstance(value, str):
            return {"true": True, "t": True, "1": True, "false": False, "f": False, "0": False}.get(
                value.lower(), value
            )
        if name == "bytea" and isinstance(value, str):
            return base64.b64decode(value, validate=True)
        if name in ("text", "varchar", "bpchar", "name") and not isinstance(value, str):
            return json.dumps(value) if isinstance(value, list | dict) else str(value)
    except ValueError:
        raise InvalidArguments(f"the value {str(value)[:40]!r} does not fit a parameter of type {name}") from None
    return value
