"""Validated Wilkinson-style formulas, parsed here and never evaluated as code.

Contract: `parse(text, columns)` accepts `y ~ term + term ...` where a term is a column, a
`C(column)` categorical, `log(column)`/`log10`/`log2`/`sqrt`/`exp`, a numeric interaction `a:b`, or
`a*b` (= a + b + a:b); `- 1` or `+ 0` drops the intercept; odd column names go in backticks. Every
name must be an existing column and every function must be on the allow-list. `expand` then builds
the derived columns with NumPy, so the result feeds `regression.regress` unchanged. Patsy/formulaic
are deliberately not used: they evaluate arbitrary Python inside formulas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .columns import numeric, require
from .errors import ColumnError, InvalidArgumentError

FUNCTIONS = {"log": np.log, "log10": np.log10, "log2": np.log2, "sqrt": np.sqrt, "exp": np.exp}
MAX_LENGTH = 500
_FACTOR = re.compile(
    r"^(?:(?P<func>[A-Za-z_][A-Za-z0-9_]*)\((?P<arg>[^()]+)\)|(?P<name>`[^`]+`|[A-Za-z_][A-Za-z0-9_.]*))$"
)


@dataclass(frozen=True)
class Formula:
    """A parsed formula: response, terms (each a tuple of factors) and whether to fit an intercept."""

    response: str
    terms: tuple[tuple[str, ...], ...]
    intercept: bool


def _factor(text: str, columns: set[str]) -> str:
    """Validate one factor and return its canonical spelling (column, 'C(col)' or 'func(col)')."""
    m = _FACTOR.match(text.strip())
    if not m:
        raise InvalidArgumentError(
            f"Formula term {text.strip()!r} is not allowed; use column, C(column), {sorted(FUNCTIONS)}(column), "
            "a:b, a*b, and `backticks` for odd column names."
        )
    if m.group("name"):
        name = m.group("name").strip("`")
        func = None
    else:
        func, name = m.group("func"), m.group("arg").strip().strip("`")
        if func != "C" and func not in FUNCTIONS:
            raise InvalidArgumentError(
                f"Formula function {func!r} is not allowed; allowed: C, {', '.join(sorted(FUNCTIONS))}."
            )
    if name not in columns:
        raise ColumnError.missing([name], sorted(columns))
    return name if func is None else f"{func}({name})"


def _terms(rhs: str, columns: set[str]) -> tuple[list[tuple[str, ...]], bool]:
    intercept = True
    terms: list[tuple[str, ...]] = []
    for sign, raw in re.findall(r"([+-]?)\s*([^+-]+)", rhs):
        raw = raw.strip()
        if raw in ("0", "1"):
            intercept = not (sign == "-" and raw == "1" or raw == "0")
            continue
        if sign == "-":
            raise InvalidArgumentError("Only '- 1' may be subtracted in a formula.")
        if "*" in raw:
            a, b = (_factor(p, columns) for p in raw.split("*", 1))
            terms += [(a,), (b,), (a, b)]
        else:
            terms.append(tuple(_factor(p, columns) for p in raw.split(":")))
    return list(dict.fromkeys(terms)), intercept


def parse(text: str, columns: list[str]) -> Formula:
    """Parse and validate `text` against the frame's columns.

    Raises:
        InvalidArgumentError: malformed formula or disallowed construct. ColumnError: unknown column.
    """
    if len(text) > MAX_LENGTH or text.count("~") != 1:
        raise InvalidArgumentError("A formula looks like 'y ~ x1 + C(group) + log(x2)' (one '~', ≤ 500 characters).")
    lhs, rhs = text.split("~")
    response = _factor(lhs, set(columns))
    if response not in columns:
        raise InvalidArgumentError("The response (left of '~') must be a plain column name; transform it first.")
    terms, intercept = _terms(rhs, set(columns))
    if not terms:
        raise InvalidArgumentError("The formula has no predictors on the right of '~'.")
    return Formula(response, tuple(terms), intercept)


def _values(frame: pd.DataFrame, factor: str) -> pd.Series:
    if factor.startswith("C("):
        col = frame[factor[2:-1]]
        return col.astype("string").where(col.notna())
    if "(" in factor:
        func, name = factor[:-1].split("(", 1)
        with np.errstate(all="ignore"):
            out = FUNCTIONS[func](numeric(frame, name))
        return out.where(np.isfinite(out))
    return frame[factor]


def expand(frame: pd.DataFrame, formula: Formula) -> tuple[pd.DataFrame, list[str]]:
    """A frame holding the response and one column per term, and the term column names in order.

    Raises:
        InvalidArgumentError: an interaction involving a categorical factor (not supported).
    """
    require(frame, [formula.response])
    out = {formula.response: frame[formula.response]}
    for term in formula.terms:
        parts = [_values(frame, f) for f in term]
        if len(parts) > 1 and any(not pd.api.types.is_numeric_dtype(p) for p in parts):
            raise InvalidArgumentError(
                f"Interaction {':'.join(term)} involves a categorical factor; only numeric interactions are supported."
            )
        value = parts[0]
        for p in parts[1:]:
            value = value.astype("float64") * p.astype("float64")
        out[":".join(term)] = value
    names = [":".join(t) for t in formula.terms]
    return pd.DataFrame(out, index=frame.index), names
