"""Wilkinson formulas: parsed by formulaic's parser into terms, built here, never evaluated as code.

Contract: `parse(text, columns)` runs formulaic's `DefaultFormulaParser` only to turn the text into a
term tree (`+`, `-`, `:`, `*`, `/`, `(a+b)**2`, `1`/`0`/`-1` for the intercept, backticks for odd
names); formulaic's own evaluation (which runs Python code) is never called. Each factor is then
checked against an allow-list: a column name; `C(column)`; `poly(column, k)` (orthogonal, or
`raw=True` powers); `I(expression)` or an allow-listed function of columns (`log`, `sqrt`, `exp`, …
— the arithmetic of `expression.py`, which walks its own AST). `build(frame, formula)` computes
the factors with NumPy and encodes categorical factors the way patsy and formulaic do: treatment
(first level = reference) where a lower-order term already spans the intercept, full rank where it
does not, so `C(g):x` without `x`'s main effect gets one slope per level. Anything else is refused
with the grammar in the message.
"""

from __future__ import annotations

import ast
import itertools
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import expression
from .errors import ColumnError, InvalidArgumentError

MAX_LENGTH = 500
MAX_LEVELS = 50
MAX_POLY_DEGREE = 20
GRAMMAR = (
    "terms are columns (`backticks` for odd names), C(column), poly(column, k) or poly(column, k, raw=True), "
    "I(x**2)-style arithmetic, log/log10/log2/log1p/sqrt/exp/abs(...) of columns, a:b interactions, a*b "
    "(= a + b + a:b), (a+b)**2, and '- 1' or '0 +' to drop the intercept"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m|⧛|⧚")


@dataclass(frozen=True)
class Factor:
    """One checked factor: its text, and how to compute it (column, categorical, poly or expression)."""

    text: str
    kind: str  # "column" | "categorical" | "poly" | "expression"
    column: str | None = None
    degree: int = 0
    raw: bool = False


@dataclass(frozen=True)
class Formula:
    """A parsed formula: the response factor, the terms (each a tuple of factors) and the intercept flag."""

    response: str
    response_factor: Factor
    terms: tuple[tuple[Factor, ...], ...]
    intercept: bool


def _refuse(what: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{what}. Formula grammar: {GRAMMAR}.")


def _python(text: str) -> ast.expr:
    code = re.sub(r"`([^`]*)`", lambda m: "col(" + repr(m.group(1)) + ")", text)
    try:
        return ast.parse(code, mode="eval").body
    except SyntaxError:
        raise _refuse(f"Formula factor {text!r} is not valid") from None


def _column_arg(node: ast.expr, columns: set[str], text: str) -> str:
    if isinstance(node, ast.Name):
        name = node.id
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "col"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        name = node.args[0].value
    else:
        raise _refuse(f"In {text!r} the argument must be a column name")
    if name not in columns:
        raise ColumnError.missing([name], sorted(columns))
    return name


def _call_factor(node: ast.Call, columns: set[str], text: str) -> Factor | None:
    if not isinstance(node.func, ast.Name):
        raise _refuse(f"Formula factor {text!r} calls a method or attribute, which is not allowed")
    name = node.func.id
    if name == "C":
        if len(node.args) != 1 or node.keywords:
            raise _refuse(f"C() takes exactly one column, got {text!r}")
        return Factor(text, "categorical", _column_arg(node.args[0], columns, text))
    if name == "poly":
        keywords = {k.arg: k.value for k in node.keywords}
        degree = node.args[1] if len(node.args) == 2 else keywords.pop("degree", None)
        raw = keywords.pop("raw", ast.Constant(False))
        if len(node.args) not in (1, 2) or keywords or not isinstance(degree, ast.Constant):
            raise _refuse(f"poly() is poly(column, k) or poly(column, k, raw=True), got {text!r}")
        k = degree.value
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_POLY_DEGREE:
            raise _refuse(f"poly() degree must be an integer from 1 to {MAX_POLY_DEGREE}, got {text!r}")
        if not (isinstance(raw, ast.Constant) and isinstance(raw.value, bool)):
            raise _refuse(f"poly() raw must be True or False, got {text!r}")
        return Factor(text, "poly", _column_arg(node.args[0], columns, text), k, raw.value)
    return None


def _check_expression(node: ast.expr, columns: set[str], text: str) -> None:
    """Every name in an arithmetic factor is a column, every call an allow-listed function (no evaluation)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id not in expression.FUNCTIONS and sub.id not in ("col", "I"):
            if sub.id not in columns:
                raise ColumnError.missing([sub.id], sorted(columns))
        if isinstance(sub, ast.Call):
            func = sub.func.id if isinstance(sub.func, ast.Name) else None
            if func not in (*expression.FUNCTIONS, "col", "I"):
                raise _refuse(f"Function {ast.unparse(sub.func)!r} in {text!r} is not allowed")
            if func == "col":
                _column_arg(sub, columns, text)


def _factor(text: str, method: str, columns: set[str]) -> Factor:
    if method == "LOOKUP":
        if text not in columns:
            raise ColumnError.missing([text], sorted(columns))
        return Factor(text, "column", text)
    if method != "PYTHON":
        raise _refuse(f"Formula term {text!r} is not allowed (only 1 or 0 may appear as a number)")
    node = _python(text)
    if isinstance(node, ast.Call):
        special = _call_factor(node, columns, text)
        if special is not None:
            return special
    _check_expression(node, columns, text)
    return Factor(text, "expression")


def _no_bare_powers(rhs: str) -> None:
    """`x**2` is Wilkinson for x (interactions up to degree 2): refuse it rather than silently fit x."""
    flat = rhs
    while True:
        reduced = re.sub(r"[A-Za-z_][A-Za-z0-9_.]*\s*\([^()]*\)", "f", flat)
        if reduced == flat:
            break
        flat = reduced
    match = re.search(r"(`[^`]*`|[A-Za-z_][A-Za-z0-9_.]*)\s*(\*\*|\^)\s*\d", flat)
    if match:
        raise _refuse(
            f"{match.group(0)!r} in a formula means interactions of {match.group(1)} up to that degree, which is just "
            f"{match.group(1)}; write I({match.group(1)}**2) for a power or poly({match.group(1)}, 2)"
        )


def parse(text: str, columns: list[str]) -> Formula:
    """Parse and check `text` against the frame's columns.

    Raises:
        InvalidArgumentError: malformed formula or a construct outside the grammar. ColumnError: unknown column.
    """
    from formulaic.parser import DefaultFormulaParser  # loads on the first formula, not at server start

    if len(text) > MAX_LENGTH or text.count("~") != 1:
        raise _refuse("A formula has one '~' and at most 500 characters, e.g. 'y ~ x1 + C(group) + log(x2)'")
    _no_bare_powers(text.split("~", 1)[1])
    try:
        parsed = DefaultFormulaParser().get_terms(text)
        lhs, rhs = list(parsed.lhs), list(parsed.rhs)
        if not all(hasattr(t, "factors") for t in [*lhs, *rhs]):
            raise ValueError("multi-part formulas ('|') are not supported")
    except Exception as exc:  # formulaic raises several of its own and Python's errors on bad syntax
        reason = _ANSI.sub("", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise _refuse(f"Cannot parse formula {text!r}: {reason}") from None
    cols = set(columns)
    if len(lhs) != 1 or len(lhs[0].factors) != 1:
        raise _refuse("The left of '~' must be one response, e.g. 'y ~ …' or 'log(y) ~ …'")
    lhs_factor = lhs[0].factors[0]
    response = _factor(str(lhs_factor.expr), lhs_factor.eval_method.name, cols)
    if response.kind in ("categorical", "poly"):
        raise _refuse("The response must be a column or an arithmetic expression of columns")
    intercept, terms = False, []
    for term in rhs:
        factors = [(str(f.expr), f.eval_method.name) for f in term.factors]
        if factors == [("1", "LITERAL")]:
            intercept = True
            continue
        terms.append(tuple(_factor(t, m, cols) for t, m in factors))
    if not terms and not intercept:
        raise _refuse("The formula has no terms on the right of '~'")
    terms.sort(key=len)  # patsy's order: intercept, main effects, then interactions by degree
    return Formula(response.text, response, tuple(terms), intercept)


def _numeric(frame: pd.DataFrame, factor: Factor) -> dict[str, pd.Series]:
    """The columns one numeric factor contributes (poly gives k of them), NaN where undefined."""
    if factor.kind == "column":
        col = frame[factor.text]
        return {factor.text: col.astype("float64")}
    if factor.kind == "poly":
        return _poly(frame, factor)
    node = _python(factor.text)
    inner = node.args[0] if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "I" else node
    with np.errstate(all="ignore"):
        values = pd.Series(expression.evaluate(ast.unparse(inner), frame), index=frame.index).astype("float64")
    return {factor.text: values.where(np.isfinite(values))}


def _poly(frame: pd.DataFrame, factor: Factor) -> dict[str, pd.Series]:
    x = frame[str(factor.column)].astype("float64")
    ok = x.notna().to_numpy()
    if factor.raw:
        return {f"{factor.text}[{p}]": x**p for p in range(1, factor.degree + 1)}
    if len(np.unique(x[ok])) <= factor.degree:
        raise InvalidArgumentError(
            f"{factor.text} needs more than {factor.degree} distinct values of {factor.column!r}; it has "
            f"{len(np.unique(x[ok]))}. Lower the degree."
        )
    # Orthogonal polynomials as R's poly(): QR of the centred Vandermonde matrix (columns 1..k).
    xv = x[ok].to_numpy()
    q, r = np.linalg.qr(np.vander(xv - xv.mean(), factor.degree + 1, increasing=True))
    basis = q * np.diag(r)
    basis = basis / np.linalg.norm(basis, axis=0)
    out = {}
    for p in range(1, factor.degree + 1):
        col = np.full(len(x), np.nan)
        col[ok] = basis[:, p]
        out[f"{factor.text}[{p}]"] = pd.Series(col, index=frame.index)
    return out


def _levels(frame: pd.DataFrame, factor: Factor) -> tuple[pd.Series, list[str]]:
    col = frame[str(factor.column)]
    keys = col.astype("string").where(col.notna())
    levels = sorted(keys.dropna().unique().tolist())
    if len(levels) > MAX_LEVELS:
        raise ColumnError(f"{factor.text} has {len(levels)} levels (max {MAX_LEVELS}); bin or filter it first.")
    if len(levels) < 2:
        raise InvalidArgumentError(f"{factor.text} has {len(levels)} level(s); a categorical term needs at least 2.")
    return keys, levels


def _is_categorical(frame: pd.DataFrame, factor: Factor) -> bool:
    if factor.kind == "categorical":
        return True
    if factor.kind != "column":
        return False
    col = frame[factor.text]
    return not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col))


def _scoped(terms: list[tuple[Factor, ...]], categorical: set[Factor], intercept: bool) -> list[dict[Factor, bool]]:
    """Per term, the sub-terms to encode as {factor: reduced?} — formulaic's full-rank scoping rules."""
    spanned: set[frozenset[tuple[Factor, bool]]] = {frozenset()} if intercept else set()
    out: list[dict[Factor, bool]] = []
    for term in terms:
        options = [[(f, True), None] if f in categorical else [(f, False)] for f in term]
        span = {frozenset(p for p in prod if p is not None) for prod in itertools.product(*options)} - spanned
        spanned |= span
        for piece in _simplify(list(span)):
            order = {f: i for i, f in enumerate(term)}
            out.append(dict(sorted(piece, key=lambda p: order[p[0]])))
    return out


def _simplify(pieces: list[frozenset[tuple[Factor, bool]]]) -> list[frozenset[tuple[Factor, bool]]]:
    """(anything):(reduced f) + (anything) ↦ (anything):(full f), until nothing merges."""
    kept: list[frozenset[tuple[Factor, bool]]] = []
    for piece in sorted(pieces, key=len):
        kept = _merge(kept, piece)
    return kept


def _merge(
    kept: list[frozenset[tuple[Factor, bool]]], piece: frozenset[tuple[Factor, bool]]
) -> list[frozenset[tuple[Factor, bool]]]:
    for existing in kept:
        diff = piece - existing
        if len(piece) == len(existing) + 1 and len(diff) == 1 and next(iter(diff))[1]:
            merged = (piece - diff) | {(next(iter(diff))[0], False)}
            return _merge([e for e in kept if e != existing], merged)
    return [*kept, piece]


def build(frame: pd.DataFrame, parsed: Formula) -> tuple[pd.Series, pd.DataFrame]:
    """The response and the design matrix ('const' first when the formula has an intercept).

    Raises:
        InvalidArgumentError / ColumnError: a categorical factor with < 2 or too many levels, a poly degree
            the data cannot support, a non-numeric column in arithmetic.
    """
    factor = parsed.response_factor
    if factor.kind == "column":
        response = frame[factor.text]
    else:
        response = next(iter(_numeric(frame, factor).values()))
    categorical = {f for term in parsed.terms for f in term if _is_categorical(frame, f)}
    columns: dict[str, pd.Series] = {}
    if parsed.intercept:
        columns["const"] = pd.Series(1.0, index=frame.index)
    cache: dict[Factor, dict[str, pd.Series]] = {}
    for piece in _scoped(list(parsed.terms), categorical, parsed.intercept):
        parts: list[dict[str, pd.Series]] = []
        for f, reduced in piece.items():
            if f in categorical:
                keys, levels = _levels(frame, f)
                label = f.text if f.kind == "categorical" else str(f.column)
                parts.append(
                    {f"{label}={lv}": (keys == lv).astype("float64").where(keys.notna()) for lv in levels[reduced:]}
                )
            else:
                cache.setdefault(f, _numeric(frame, f))
                parts.append(cache[f])
        for combo in itertools.product(*(list(p.items()) for p in parts)):
            name = ":".join(n for n, _ in combo)
            value = combo[0][1]
            for _, v in combo[1:]:
                value = value * v
            columns[name] = value
    return response, pd.DataFrame(columns, index=frame.index)
