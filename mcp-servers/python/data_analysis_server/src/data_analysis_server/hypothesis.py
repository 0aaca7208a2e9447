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
from .caveats import Warning_, defined, is_number, warning
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


def enough(values: np.ndarray, minimum: int, spec: HypothesisSpec, what: str) -> np.ndarray:
    """`values` if it holds at least `minimum` values, else an error saying how many there are and what to change.

    Raises:
        InvalidArgumentError: too few non-missing values.
    """
    if len(values) < minimum:
        raise InvalidArgumentError(
            f"Test {spec.test!r} needs at least {minimum} non-missing value(s) in {what}; it has {len(values)}. "
            "Pick a column or groups with more data, or fill missing values first (transform fill_na)."
        )
    return values


def reason_for(*samples: np.ndarray) -> str:
    """Why a statistic came out NaN/inf: constant data, too few values, or (fallback) the data themselves."""
    if samples and all(len(s) and np.ptp(s) == 0 for s in samples):
        values = sorted({float(s[0]) for s in samples})
        return f"constant data (every value is {values[0]:g})" if len(values) == 1 else "each sample is constant"
    if any(len(s) < 2 for s in samples):
        return "n too small"
    if any(len(s) and np.ptp(s) == 0 for s in samples):
        return "a sample is constant (zero variance)"
    return "the statistic is undefined for these data"


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
    small = {g: len(arr) for g, arr in out.items() if len(arr) < 2}
    if small:
        raise InvalidArgumentError(
            f"Group(s) {list(small)} have fewer than 2 non-missing values in {value!r} ({small}); test "
            f"{spec.test!r} needs at least 2 per group: pick other `groups` or fill missing values first."
        )
    return out


def paired_arrays(frame: pd.DataFrame, spec: HypothesisSpec, minimum: int = 2) -> tuple[np.ndarray, np.ndarray]:
    a = numeric(frame, need(spec.column, "column", spec))
    b = numeric(frame, need(spec.column_b, "column_b", spec))
    mask = (a.notna() & b.notna() & np.isfinite(a) & np.isfinite(b)).to_numpy()
    enough(a.to_numpy()[mask], minimum, spec, f"pairs of {spec.column!r} and {spec.column_b!r} (both present)")
    return a[mask].to_numpy(), b[mask].to_numpy()


def _reading(spec: HypothesisSpec, what: str, p: float | None, eff: dict[str, Any] | None, why: str) -> str:
    alpha = 1 - spec.confidence
    size = ""
    if eff is not None:
        if eff["value"] is None:
            size = f"; {eff['name']} undefined ({eff.get('value_reason', why)})"
        else:
            word = effects.magnitude(eff["name"], eff["value"])
            size = f"; {eff['name']} = {eff['value']:.3g}" + (f" ({word})" if word else "")
    if p is None:
        return f"{what}: p-value undefined ({why}), so no significance verdict{size}."
    verdict = "significant" if p < alpha else "not significant"
    evidence = "evidence" if p < alpha else "no evidence"
    return f"{what}: p = {p:.3g}, {verdict} at α = {alpha:.2g} ({evidence} against H0){size}."


def _clean_effect(eff: dict[str, Any] | None, why: str) -> dict[str, Any] | None:
    if eff is None:
        return None
    out = dict(eff)
    defined(out, "value", eff["value"], why)
    for bound in ("ci_low", "ci_high"):
        if eff.get(bound) is not None and not is_number(eff[bound]):
            out[bound] = None
    return out


def result(
    spec: HypothesisSpec,
    stat_name: str,
    stat: float,
    p: float,
    df: Any,
    n: Any,
    eff: dict[str, Any] | None,
    what: str,
    reason: str = "the statistic is undefined for these data",
    warnings: list[Warning_] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The uniform result; a NaN/inf statistic or p-value is null with `<key>_reason` and gets no verdict."""
    out: dict[str, Any] = {"test": spec.test, "statistic_name": stat_name}
    statistic = defined(out, "statistic", stat, reason)
    # An infinite statistic (zero variance with a nonzero difference) comes with p = 0: no verdict on that either.
    p_value = defined(out, "p_value", p if statistic is not None or stat is None else float("nan"), reason)
    eff = _clean_effect(eff, reason)
    notes = list(warnings or [])
    if p_value is None:
        notes.append(
            warning(
                "undefined_statistic",
                f"The {stat_name} statistic or its p-value is undefined ({reason}); no significance verdict is given. "
                "Check the data (constant or too few values) before testing.",
            )
        )
    out.update(
        df=df,
        n=n,
        alternative=spec.alternative,
        effect_size=eff,
        interpretation=_reading(spec, what, p_value, eff, reason),
        warnings=notes,
        **extra,
    )
    return jsonable(out)
