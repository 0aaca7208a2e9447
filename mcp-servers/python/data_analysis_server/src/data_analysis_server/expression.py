"""Arithmetic expressions for derived columns, evaluated by walking an allow-listed AST.

Contract: `evaluate(text, frame)` parses `text` with `ast.parse(mode="eval")` and interprets only
numbers, strings (as `col("name")` arguments), column names, + − * / // % **, unary ±, comparisons,
`and`/`or`/`not` (element-wise), and a fixed set of NumPy functions. Attribute access, subscripts,
lambdas, comprehensions, keyword arguments and every other node are refused before anything runs.
It never calls `eval`, `exec`, `compile` on an AST it did not check, or `DataFrame.eval`.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from .errors import ColumnError, InvalidArgumentError

MAX_LENGTH = 500
MAX_NODES = 200

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "log": np.log,
    "log10": np.log10,
    "log2": np.log2,
    "log1p": np.log1p,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "floor": np.floor,
    "ceil": np.ceil,
    "round": np.round,
    "sin": np.sin,
    "cos": np.cos,
    "minimum": np.minimum,
    "maximum": np.maximum,
    "where": np.where,
    "clip": np.clip,
    "isnull": pd.isna,
}


class _Evaluator:
    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise InvalidArgumentError(
                f"Expression element {type(node).__name__!r} is not allowed; use column names, numbers, "
                f'+ - * / // % **, comparisons, and/or/not, and functions {sorted(FUNCTIONS)} (col("name") for '
                "odd names)."
            )
        return method(node)

    def _Expression(self, node: ast.Expression) -> Any:
        return self.visit(node.body)

    def _Constant(self, node: ast.Constant) -> Any:
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise InvalidArgumentError(f"Only numeric literals are allowed outside col(...); got {node.value!r}.")
        # Floats, not ints: Python int powers like 9**9**9 would run for hours before any check.
        return float(node.value)

    def _column(self, name: str) -> pd.Series:
        if name not in self.frame.columns:
            raise ColumnError.missing([name], self.frame.columns)
        return self.frame[name]

    def _Name(self, node: ast.Name) -> Any:
        return self._column(node.id)

    def _BinOp(self, node: ast.BinOp) -> Any:
        return (
            _BINOPS[type(node.op)](self.visit(node.left), self.visit(node.right))
            if type(node.op) in _BINOPS
            else self._refuse(node.op)
        )

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.UAdd):
            return value
        if isinstance(node.op, ast.Not):
            return ~value.astype(bool) if isinstance(value, pd.Series) else not value
        return self._refuse(node.op)

    def _Compare(self, node: ast.Compare) -> Any:
        left, result = self.visit(node.left), None
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if type(op) not in _CMPOPS:
                return self._refuse(op)
            right = self.visit(comparator)
            part = _CMPOPS[type(op)](left, right)
            result = part if result is None else result & part
            left = right
        return result

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        values = [self.visit(v) for v in node.values]
        out = values[0]
        for v in values[1:]:
            out = (out & v) if isinstance(node.op, ast.And) else (out | v)
        return out

    def _Call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise InvalidArgumentError("Only plain calls like log(x) are allowed (no methods, no keyword arguments).")
        name = node.func.id
        if name == "col":
            arg = node.args[0] if len(node.args) == 1 else None
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                raise InvalidArgumentError('col() takes one string literal: col("column name").')
            return self._column(arg.value)
        if name not in FUNCTIONS:
            raise InvalidArgumentError(f"Function {name!r} is not allowed; allowed: {sorted(FUNCTIONS)}")
        return FUNCTIONS[name](*(self.visit(a) for a in node.args))

    def _refuse(self, op: ast.AST) -> Any:
        raise InvalidArgumentError(f"Operator {type(op).__name__!r} is not allowed.")


def evaluate(text: str, frame: pd.DataFrame) -> pd.Series:
    """Evaluate an arithmetic expression over `frame`'s columns; returns a Series aligned to the frame.

    Raises:
        InvalidArgumentError: syntax error, disallowed construct, too long/complex.
        ColumnError: unknown column.
    """
    if len(text) > MAX_LENGTH:
        raise InvalidArgumentError(f"Expression longer than {MAX_LENGTH} characters.")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise InvalidArgumentError(f"Expression syntax error: {exc.msg} at column {exc.offset}.") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise InvalidArgumentError(
            f"Expression has more than {MAX_NODES} elements; split it into several derive steps."
        )
    with np.errstate(all="ignore"):
        try:
            result = _Evaluator(frame).visit(tree)
        except TypeError as exc:
            raise InvalidArgumentError(f"Expression mixes incompatible types: {str(exc)[:200]}") from None
        except (OverflowError, ZeroDivisionError) as exc:
            raise InvalidArgumentError(f"Expression overflowed or divided by zero: {exc}.") from None
    if isinstance(result, pd.Series):
        return result
    return pd.Series(np.broadcast_to(result, len(frame)) if np.ndim(result) <= 1 else result, index=frame.index)
