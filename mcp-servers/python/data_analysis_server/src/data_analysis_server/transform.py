"""Data-preparation operations that always produce a new frame.

Contract: `apply_operations(frame, ops)` applies a list of typed operation records in order and
returns a new DataFrame; the input is never mutated (registered datasets are shared and read-only).
Derived columns use the AST allow-list in `expression.py`; filters reuse the structured predicates
of `query.py`. Each operation checks its columns first so errors name the step that failed.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .columns import numeric, numeric_columns, require
from .errors import AnalysisError, InvalidArgumentError
from .expression import evaluate
from .query import apply_filters

CAST_TYPES = {
    "int": "Int64",
    "float": "float64",
    "str": "string",
    "bool": "boolean",
    "category": "category",
    "datetime": "datetime",
}
MAX_ONE_HOT_LEVELS = 100


def _drop_na(df: pd.DataFrame, op: dict[str, Any]) -> pd.DataFrame:
    cols = require(df, op["columns"]) if op.get("columns") else None
    return df.dropna(subset=cols, how=op.get("how", "any"))


def _fill_na(df: pd.DataFrame, op: dict[str, Any]) -> pd.DataFrame:
    cols = require(df, op.get("columns") or list(df.columns))
    method, out = op.get("method", "value"), df.copy()
    for c in cols:
        if method == "value":
            if "value" not in op:
                raise InvalidArgumentError("fill_na with method 'value' needs `value`.")
            out[c] = out[c].fillna(op["value"])
        elif method in ("mean", "median"):
            out[c] = out[c].fillna(getattr(numeric(out, c), method)())
        elif method == "mode":
            mode = out[c].mode(dropna=True)
            out[c] = out[c].fillna(mode.iloc[0]) if len(mode) else out[c]
        elif method in ("ffill", "bfill"):
            out[c] = getattr(out[c], method)()
        else:
            raise InvalidArgumentError("fill_na method must be value, mean, median, mode, ffill or bfill.")
    return out


def _dedupe(df: pd.DataFrame, op: dict[str, Any]) -> pd.DataFrame:
    cols = require(df, op["columns"]) if op.get("columns") else None
    return df.drop_duplicates(subset=cols, keep=op.get("keep", "first"))


def _rename(df: pd.DataFrame, op: dict[str, Any]) -> pd.DataFrame:
    mapping = op.get("mapping") or {}
    require(df, mapping)
    return df.rename(columns=mapping)


def _cast(df: pd.DataFrame, op: dict[str, Any]) -> pd.DataFrame:
    col, to = require(df, [op.get("column", "")])[0], op.get("to")
    if to not in CAST_TYPES:
        raise InvalidArgumentError(f"cast `to` must be one of {list(CAST_TYPES)}")
    out = df.copy()
    try:
        if to == "datetime":
            out[col] = pd.to_datetime(out[col], errors="coerce", format=op.get("format"))
        elif to in ("int", "float"):
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(CAST_TYPES[to])
        else:
            out[col] = out[col].astype(CAST_TYPES[to])
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"Cannot cast {col!r} to {to}: {str(exc)[:200]}") from None
    return out


def _bin(df: pd.DataFrame, op: dict[str, Any]) -> pd.DataFrame:
    col = op.get("column", "")
    values, bins = numeric(df, col), op.get("bins", 5)
    new = op.get("new_column") or f"{col}_bin"
    out = df.copy()
    if op.get("method", "equal_width") == "quantile":
        out[new] = pd.qcut(values, q=bins, labels=op.get("labels"), duplicates="drop").astype("string")
    else:
        out[new] = pd.cut(values, bins=bins, labels=op.get("labels"), include_lowest=True).astype("string")
    return out


def _one_hot(df: pd.DataFrame, op: dict[str, Any]) -> pd.DataFrame:
    cols = require(df, op.get("columns") or [])
    for c in cols:
        if df[c].nunique() > MAX_ONE_HOT_LEVELS:
            raise InvalidArgumentError(
                f"{c!r} has more than {MAX_ONE_HOT_LEVELS} levels; bin or filter it before one_hot."
            )
    return pd.get_dummies(df, columns=cols, drop_first=bool(op.get("drop_first", False)), dtype="int8")


def _standardize(df: pd.DataFrame, op: dict[str, Any]) -> pd.DataFrame:
    cols, out = numeric_columns(df, op.get("columns")), df.copy()
    for c in cols:
        x = numeric(df, c)
        if op.get("method", "zscore") == "minmax":
            span = x.max() - x.min()
            out[c] = (x - x.min()) / span if span else 0.0
        else:
            sd = x.std(ddof=1)
            out[c] = (x - x.mean()) / sd if sd else 0.0
    return out


def _derive(df: pd.DataFrame, op: dict[str, Any]) -> pd.DataFrame:
    name, expr = op.get("new_column"), op.get("expression")
    if not name or not expr:
        raise InvalidArgumentError(
            "derive needs `new_column` and `expression`, e.g. "
            '{"new_column": "bmi", "expression": "weight / (height/100)**2"}.'
        )
    out = df.copy()
    out[name] = evaluate(str(expr), df)
    return out


_OPS = {
    "drop_na": _drop_na,
    "fill_na": _fill_na,
    "dedupe": _dedupe,
    "rename": _rename,
    "cast": _cast,
    "bin": _bin,
    "one_hot": _one_hot,
    "standardize": _standardize,
    "derive": _derive,
    "filter": lambda df, op: apply_filters(df, op.get("filters") or []),
    "drop_columns": lambda df, op: df.drop(columns=require(df, op.get("columns") or [])),
    "select_columns": lambda df, op: df[require(df, op.get("columns") or [])],
}
OPERATIONS = tuple(_OPS)


def apply_operations(frame: pd.DataFrame, operations: list[dict[str, Any]]) -> pd.DataFrame:
    """Apply operations in order and return the new frame.

    Raises:
        InvalidArgumentError: unknown op or bad arguments, prefixed with the failing step number.
        ColumnError: unknown column, also prefixed with the step.
    """
    if not operations:
        raise InvalidArgumentError(f"Give at least one operation; available: {list(OPERATIONS)}")
    out = frame
    for i, op in enumerate(operations, start=1):
        kind = op.get("op")
        if kind not in _OPS:
            raise InvalidArgumentError(f"Step {i}: unknown op {kind!r}; available: {list(OPERATIONS)}")
        try:
            out = _OPS[str(kind)](out, op)
        except AnalysisError as exc:
            raise type(exc)(f"Step {i} ({kind}): {exc}") from None
    if out is frame:
        out = frame.copy()
    return out.reset_index(drop=True) if not isinstance(out.index, pd.RangeIndex) else out
