"""Detecting perfect and quasi-complete separation in a binary-response design.

Contract: with separation the logit maximum-likelihood estimate does not exist (a coefficient runs
off to ±∞), so statsmodels returns a huge estimate with a huge standard error and p ≈ 1 — a normal-
looking wrong answer. `check` tests each predictor alone (a threshold, or a dummy level, that sorts y
perfectly) in one vectorised pass; `check_combined` solves the linear program of Konis (2007) — is
there a direction b with (2y−1)·Xb ≥ 0 for every row and > 0 for some — which also finds separation
by a combination of predictors. Both raise `SeparationError` naming the predictor(s) and what to do.
Pure NumPy/SciPy; no statsmodels, no mcp.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize

from .errors import InvalidArgumentError

MAX_LP_ROWS = 200_000
_REMEDY = (
    "The maximum-likelihood estimate does not exist (the coefficient is infinite), so no logit estimate, SE or "
    "p-value would be meaningful. Drop or coarsen the predictor, merge the category with another, or collect rows "
    "where it does not decide y."
)


class SeparationError(InvalidArgumentError):
    """The response is perfectly (or quasi-perfectly) predicted by the named predictors."""

    def __init__(self, message: str, code: str, predictors: list[str]) -> None:
        super().__init__(message)
        self.code = code
        self.predictors = predictors


def _describe(name: str, values: np.ndarray, y: np.ndarray) -> str:
    if set(np.unique(values)) <= {0.0, 1.0}:
        for level in (1.0, 0.0):
            ys = y[values == level]
            if len(ys) and np.all(ys == ys[0]):
                return f"every row with {name!r} = {level:g} has y = {ys[0]:g}"
    lo, hi = values[y == 0], values[y == 1]
    if lo.max() <= hi.min():
        return f"y = 0 wherever {name!r} ≤ {lo.max():.6g} and y = 1 wherever {name!r} ≥ {hi.min():.6g}"
    return f"y = 1 wherever {name!r} ≤ {hi.max():.6g} and y = 0 wherever {name!r} ≥ {lo.min():.6g}"


def check(y: np.ndarray, design: pd.DataFrame) -> None:
    """Raise if a single predictor separates y (0/1 floats, complete cases).

    Raises:
        SeparationError: code `perfect_separation` or `quasi_separation`, naming the predictor.
    """
    for name in design.columns:
        if name == "const":
            continue
        values = design[name].to_numpy(dtype="float64")
        lo, hi = values[y == 0], values[y == 1]
        if not len(lo) or not len(hi) or np.ptp(values) == 0:
            continue
        complete = lo.max() < hi.min() or hi.max() < lo.min()
        quasi = lo.max() <= hi.min() or hi.max() <= lo.min()
        if complete or quasi:
            kind = "perfect" if complete else "quasi-complete"
            raise SeparationError(
                f"{kind.capitalize()} separation: predictor {name!r} predicts y "
                f"{'perfectly' if complete else 'perfectly for part of the data'} "
                f"({_describe(str(name), values, y)}). {_REMEDY}",
                "perfect_separation" if complete else "quasi_separation",
                [str(name)],
            )


def check_combined(y: np.ndarray, design: pd.DataFrame) -> None:
    """Raise if some combination of predictors separates y (linear program; skipped past MAX_LP_ROWS rows).

    Raises:
        SeparationError: code `perfect_separation` or `quasi_separation`, naming the predictors involved.
    """
    if len(y) > MAX_LP_ROWS:
        return
    x = design.to_numpy(dtype="float64")
    x = x / np.maximum(np.abs(x).max(axis=0), 1e-300)
    signed = x * (2 * y - 1)[:, None]
    res = optimize.linprog(
        -signed.sum(axis=0), A_ub=-signed, b_ub=np.zeros(len(y)), bounds=[(-1, 1)] * x.shape[1], method="highs"
    )
    if res.status != 0 or -res.fun <= 1e-7 * len(y):
        return
    margin = signed @ res.x
    involved = [str(c) for c, b in zip(design.columns, res.x, strict=True) if abs(b) > 1e-7 and c != "const"]
    complete = bool(np.all(margin > 1e-9))
    kind = "Perfect" if complete else "Quasi-complete"
    share = f"{int((margin > 1e-9).sum())} of {len(y)} rows"
    raise SeparationError(
        f"{kind} separation: a combination of {involved} predicts y exactly for {share}. {_REMEDY}",
        "perfect_separation" if complete else "quasi_separation",
        involved,
    )
