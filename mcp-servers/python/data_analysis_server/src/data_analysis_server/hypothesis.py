"""The shared shape of hypothesis tests: the argument record, input helpers and the result record.

Contract: `HypothesisSpec` carries every `test_hypothesis` argument; `_groups`/`_paired` pull clean
float arrays (missing values dropped, groups checked, errors naming what the test needs); `_result`
builds the uniform JSON-safe result with a one-line plain-language reading. Used by `stats.py`
(numeric tests) and `contingency.py` (counts and proportions); it runs no test itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import effects
from .columns import finite, numeric, require
from .errors import InvalidArgumentError
from .tables import jsonable

TESTS = (
    "t_one_sample",
    "t_two_sample",
    "t_paired",
    "mann_whitney",
    "wilcoxon",
    "kruskal",
    "anova_oneway",
    "chi_square_independence",
    "chi_square_goodness_of_fit",
    "shapiro",
    "ks_2samp",
    "levene",
    "proportions_z",
)


@dataclass
class HypothesisSpec:
    """Arguments of `test_hypothesis`; which ones a test needs is listed in `_NEEDS`."""

    test: str
    column: str | None = None
    column_b: str | None = None
    group_column: str | None = None
    groups: list[str] | None = None
    mu0: float = 0.0
    p0: float = 0.5
    equal_var: bool = False
    alternative: str = "two-sided"
    expected: dict[str, float] | None = None
    success: Any = None
    correction: bool = True
    confidence: float = 0.95


_NEEDS = {
    "t_one_sample": "column (numeric) and mu0",
    "t_two_sample": "column (numeric) and group_column with two groups",
    "t_paired": "column and column_b (numeric, same rows)",
    "mann_whitney": "column and group_column with two groups",
    "wilcoxon": "column and column_b (paired) or column and mu0",
    "kruskal": "column and group_column",
    "anova_oneway": "column and group_column",
    "chi_square_independence": "column and column_b (categorical)",
    "chi_square_goodness_of_fit": "column (categorical), optional expected {category: proportion}",
    "shapiro": "column (numeric)",
    "ks_2samp": "column and group_column with two groups, or column and column_b",
    "levene": "column and group_column",
    "proportions_z": "column (binary) and group_column with two groups, or p0",
}


def need(value: str | None, what: str, spec: HypothesisSpec) -> str:
    if not value:
        raise InvalidArgumentError(f"Test {spec.test!r} needs `{what}`: it takes {_NEEDS[spec.test]}.")
    return value


def group_arrays(frame: pd.DataFrame, spec: HypothesisSpec, exactly_two: bool) -> dict[str, np.ndarray]:
    value = need(spec.column, "column", spec)
    group = need(spec.group_column, "group_column", spec)
    values = numeric(frame, value)
    require(frame, [group])
    keys = frame[group].astype("string")
    present = [str(g) for g in pd.unique(keys.dropna())]
    chosen = [str(g) for g in spec.groups] if spec.groups else sorted(present)
    unknown = [g for g in chosen if g not in present]
    if unknown:
        raise InvalidArgumentError(f"Group(s) {unknown} not found in {group!r}; present: {present[:50]}")
    if exactly_two and len(chosen) != 2:
        raise InvalidArgumentError(
            f"Test {spec.test!r} compares two groups but {group!r} has {len(chosen)}: {chosen[:20]}. Pass "
            "`groups` with two of them."
        )
    out = {g: finite(values[keys == g]) for g in chosen}
    small = [g for g, arr in out.items() if len(arr) < 2]
    if small:
        raise InvalidArgumentError(f"Group(s) {small} have fewer than 2 non-missing values in {value!r}.")
    return out


def paired_arrays(frame: pd.DataFrame, spec: HypothesisSpec) -> tuple[np.ndarray, np.ndarray]:
    a = numeric(frame, need(spec.column, "column", spec))
    b = numeric(frame, need(spec.column_b, "column_b", spec))
    mask = a.notna() & b.notna()
    return a[mask].to_numpy(), b[mask].to_numpy()


def _p_word(p: float, alpha: float) -> str:
    return "significant" if p < alpha else "not significant"


def _reading(spec: HypothesisSpec, what: str, p: float, eff: dict[str, Any] | None) -> str:
    alpha = 1 - spec.confidence
    size = ""
    if eff is not None:
        word = effects.magnitude(eff["name"], eff["value"])
        size = f"; {eff['name']} = {eff['value']:.3g}" + (f" ({word})" if word else "")
    verdict = "evidence" if p < alpha else "no evidence"
    return f"{what}: p = {p:.3g}, {_p_word(p, alpha)} at α = {alpha:.2g} ({verdict} against H0){size}."


def result(
    spec: HypothesisSpec,
    stat_name: str,
    stat: float,
    p: float,
    df: Any,
    n: Any,
    eff: dict[str, Any] | None,
    what: str,
    **extra: Any,
) -> dict[str, Any]:
    return jsonable(
        {
            "test": spec.test,
            "statistic_name": stat_name,
            "statistic": stat,
            "p_value": p,
            "df": df,
            "n": n,
            "alternative": spec.alternative,
            "effect_size": eff,
            "interpretation": _reading(spec, what, p, eff),
            **extra,
        }
    )
