"""Structured filtering, grouping, aggregation, pivoting and sorting — no expression strings.

Contract: predicates are `{column, op, value}` records evaluated with vectorised pandas comparisons;
nothing the caller sends is ever passed to `DataFrame.query`/`eval` (which can execute code).
Aggregations and operators come from fixed allow-lists; every column is checked before use.
The input frame is never modified.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .columns import require
from .errors import InvalidArgumentError

OPS = (
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not_in",
    "between",
    "contains",
    "startswith",
    "endswith",
    "is_null",
    "not_null",
)
AGGS = ("count", "size", "sum", "mean", "median", "min", "max", "std", "var", "nunique", "first", "last")


def _mask(frame: pd.DataFrame, flt: dict[str, Any]) -> pd.Series:
    column, op, value = flt.get("column"), flt.get("op"), flt.get("value")
    if not isinstance(column, str) or op not in OPS:
        raise InvalidArgumentError(f"Each filter needs 'column' and 'op' (one of {list(OPS)}); got {flt!r}")
    col = frame[require(frame, [column])[0]]
    if op in ("is_null", "not_null"):
        return col.isna() if op == "is_null" else col.notna()
    if op in ("in", "not_in"):
        if not isinstance(value, list):
            raise InvalidArgumentError(f'Filter op {op!r} needs a list value, e.g. ["a", "b"].')
        hit = col.isin(value)
        return hit if op == "in" else ~hit & col.notna()
    if op == "between":
        if not (isinstance(value, list) and len(value) == 2):
            raise InvalidArgumentError("Filter op 'between' needs value [low, high] (inclusive).")
        return _compare(col, ">=", value[0], column) & _compare(col, "<=", value[1], column)
    if op in ("contains", "startswith", "endswith"):
        text = col.astype("string")
        method = {"contains": text.str.contains, "startswith": text.str.startswith, "endswith": text.str.endswith}[op]
        kwargs = {"regex": False} if op == "contains" else {}
        return method(str(value), **kwargs).fillna(False).astype(bool)
    return _compare(col, op, value, column)


def _compare(col: pd.Series, op: str, value: Any, name: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(col) and isinstance(value, str):
        value = pd.Timestamp(value)
    try:
        result = {
            "==": col.__eq__,
            "!=": col.__ne__,
            "<": col.__lt__,
            "<=": col.__le__,
            ">": col.__gt__,
            ">=": col.__ge__,
        }[op](value)
    except TypeError:
        raise InvalidArgumentError(
            f"Cannot compare column {name!r} ({col.dtype}) with {value!r} using {op!r}."
        ) from None
    return result.fillna(False).astype(bool)


def apply_filters(frame: pd.DataFrame, filters: list[dict[str, Any]] | None) -> pd.DataFrame:
    """Rows matching every filter (logical AND).

    Raises:
        InvalidArgumentError: malformed filter or incomparable value. ColumnError: unknown column.
    """
    if not filters:
        return frame
    mask = pd.Series(True, index=frame.index)
    for flt in filters:
        mask &= _mask(frame, flt)
    return frame[mask]


def _aggregate(frame: pd.DataFrame, group_by: list[str], aggregations: list[dict[str, Any]]) -> pd.DataFrame:
    named: dict[str, tuple[str, str]] = {}
    for agg in aggregations:
        column, func = agg.get("column"), agg.get("func", "count")
        if func not in AGGS or not isinstance(column, str):
            raise InvalidArgumentError(f"Each aggregation needs 'column' and 'func' (one of {list(AGGS)}); got {agg!r}")
        require(frame, [column])
        named[str(agg.get("as") or f"{column}_{func}")] = (column, func)
    if not group_by:
        return pd.DataFrame({k: [frame[c].agg(f)] for k, (c, f) in named.items()})
    return frame.groupby(group_by, dropna=False, observed=True, sort=True).agg(**named).reset_index()


def _pivot(frame: pd.DataFrame, pivot: dict[str, Any]) -> pd.DataFrame:
    index, columns, values = pivot.get("index"), pivot.get("columns"), pivot.get("values")
    func = pivot.get("func", "mean")
    if func not in AGGS or not all(isinstance(v, str) for v in (index, columns, values)):
        raise InvalidArgumentError(
            f"pivot needs string 'index', 'columns', 'values' and 'func' in {list(AGGS)}; got {pivot!r}"
        )
    require(frame, [index, columns, values])
    if frame[columns].nunique() > 200:
        raise InvalidArgumentError(
            f"pivot column {columns!r} has more than 200 distinct values; filter or bin it first."
        )
    table = frame.pivot_table(index=index, columns=columns, values=values, aggfunc=func, observed=True)
    table.columns = [str(c) for c in table.columns]
    return table.reset_index()


def _sort(frame: pd.DataFrame, sort: list[dict[str, Any]]) -> pd.DataFrame:
    names = [s.get("column") for s in sort]
    require(frame, [str(n) for n in names])
    return frame.sort_values(names, ascending=[not s.get("descending", False) for s in sort], kind="stable")


def run_query(
    frame: pd.DataFrame,
    filters: list[dict[str, Any]] | None = None,
    group_by: list[str] | None = None,
    aggregations: list[dict[str, Any]] | None = None,
    pivot: dict[str, Any] | None = None,
    sort: list[dict[str, Any]] | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """Filter → (aggregate | pivot) → select → sort; the caller caps the returned rows.

    Raises:
        InvalidArgumentError: malformed filter/aggregation/pivot, or pivot combined with group_by.
        ColumnError: any unknown column.
    """
    out = apply_filters(frame, filters)
    if pivot and (group_by or aggregations):
        raise InvalidArgumentError("Use either `pivot` or `group_by`/`aggregations`, not both.")
    if pivot:
        out = _pivot(out, pivot)
    elif aggregations or group_by:
        require(out, group_by or [])
        out = _aggregate(
            out, group_by or [], aggregations or [{"column": (group_by or [""])[0], "func": "size", "as": "count"}]
        )
    if columns:
        out = out[require(out, columns)]
    if sort:
        out = _sort(out, sort)
    return out
