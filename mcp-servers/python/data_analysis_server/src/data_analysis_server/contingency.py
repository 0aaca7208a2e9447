"""Tests on counts and proportions: χ² independence and goodness of fit, z-tests for proportions.

Contract: categories are compared as strings; 2×2 χ² uses Yates' correction unless told otherwise;
proportions come from a 0/1/boolean column or a named `success` value. Effect sizes: Cramér's V and
Cohen's w with noncentral-χ² CIs, Cohen's h. Reference implementations: SciPy and statsmodels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from . import effects
from .columns import require
from .errors import InvalidArgumentError
from .hypothesis import HypothesisSpec, enough, group_arrays, need, result


def chi_independence(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    a, b = need(spec.column, "column", spec), need(spec.column_b, "column_b", spec)
    require(frame, [a, b])
    table = pd.crosstab(frame[a], frame[b])
    if min(table.shape) < 2:
        raise InvalidArgumentError(
            f"chi_square_independence needs ≥2 categories in both {a!r} and {b!r}; got {table.shape}."
        )
    chi2, p, dof, expected = stats.chi2_contingency(table.to_numpy(), correction=spec.correction)
    n = int(table.to_numpy().sum())
    eff = effects.cramers_v(float(chi2), n, int(dof), min(table.shape) - 1, spec.confidence)
    low_expected = float((expected < 5).mean())
    return result(
        spec,
        "chi2",
        chi2,
        p,
        dof,
        n,
        eff,
        f"χ² independence of {a} and {b}",
        share_expected_below_5=low_expected,
        table_shape=list(table.shape),
    )


def chi_gof(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    col = need(spec.column, "column", spec)
    require(frame, [col])
    observed = frame[col].dropna().astype("string").value_counts().sort_index()
    if spec.expected:
        keys = [str(k) for k in spec.expected]
        missing = sorted(set(observed.index) - set(keys))
        if missing:
            raise InvalidArgumentError(f"`expected` lacks categories {missing[:20]} present in {col!r}.")
        observed = observed.reindex(keys, fill_value=0)
        probs = np.array([spec.expected[k] for k in keys], dtype=float)
    else:
        probs = np.ones(len(observed))
    if len(observed) < 2:
        raise InvalidArgumentError(
            f"chi_square_goodness_of_fit needs at least 2 categories in {col!r}; it has {len(observed)}"
            + (f" ({list(observed.index)})" if len(observed) else " (all values missing)")
            + ". Pass `expected` with every category you expect, or test another column."
        )
    n = int(observed.sum())
    f_exp = probs / probs.sum() * n
    chi2, p = stats.chisquare(observed.to_numpy(), f_exp)
    eff = effects.cramers_v(float(chi2), n, len(observed) - 1, 1, spec.confidence, name="cohens_w")
    return result(
        spec,
        "chi2",
        chi2,
        p,
        len(observed) - 1,
        n,
        eff,
        f"χ² goodness of fit of {col}",
        observed=observed.to_dict(),
        expected=dict(zip(observed.index, f_exp, strict=True)),
    )


def _binary(frame: pd.DataFrame, spec: HypothesisSpec) -> pd.Series:
    col = need(spec.column, "column", spec)
    require(frame, [col])
    values = frame[col]
    if spec.success is not None:
        return (values.astype("string") == str(spec.success)).where(values.notna())
    uniq = set(values.dropna().unique().tolist())
    if not uniq <= {0, 1}:
        raise InvalidArgumentError(
            f"Column {col!r} is not 0/1 or boolean; pass `success` = the value counted as a success."
        )
    return (values.astype("float64") == 1).where(values.notna())


def proportions(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    hits = _binary(frame, spec)
    if spec.group_column is None:
        x = enough(hits.dropna().astype(bool).to_numpy(), 1, spec, repr(spec.column))
        count, nobs = int(x.sum()), len(x)
        z, p = proportions_ztest(count, nobs, value=spec.p0, alternative=_sm_alt(spec.alternative), prop_var=spec.p0)
        lo, hi = proportion_confint(count, nobs, alpha=1 - spec.confidence, method="wilson")
        eff = effects.effect("cohens_h", effects.cohens_h(count / nobs, spec.p0), None, None, "no CI")
        return result(
            spec,
            "z",
            z,
            p,
            None,
            nobs,
            eff,
            f"one-sample proportion of {spec.column} vs p0 = {spec.p0:g}",
            estimate=count / nobs,
            ci={"low": lo, "high": hi, "of": "proportion (Wilson)"},
        )
    keyed = frame.assign(_hit=hits)
    (ga, _), (gb, _) = group_arrays(
        keyed.assign(_hitf=hits.astype("float64")), _with(spec, "_hitf"), exactly_two=True
    ).items()
    keys = frame[spec.group_column].astype("string")
    counts = [int(hits[keys == g].sum()) for g in (ga, gb)]
    nobs = [int(hits[keys == g].notna().sum()) for g in (ga, gb)]
    z, p = proportions_ztest(counts, nobs, alternative=_sm_alt(spec.alternative))
    p1, p2 = counts[0] / nobs[0], counts[1] / nobs[1]
    se = np.sqrt(p1 * (1 - p1) / nobs[0] + p2 * (1 - p2) / nobs[1])
    zc = stats.norm.ppf(0.5 + spec.confidence / 2)
    eff = effects.effect("cohens_h", effects.cohens_h(p1, p2), None, None, "no CI")
    return result(
        spec,
        "z",
        z,
        p,
        None,
        {ga: nobs[0], gb: nobs[1]},
        eff,
        f"two-proportion z-test, {ga} vs {gb}",
        estimate=p1 - p2,
        proportions={ga: p1, gb: p2},
        ci={"low": p1 - p2 - zc * se, "high": p1 - p2 + zc * se, "of": f"p({ga}) - p({gb}) (Wald)"},
    )


def _with(spec: HypothesisSpec, column: str) -> HypothesisSpec:
    return HypothesisSpec(**{**spec.__dict__, "column": column})


def _sm_alt(alternative: str) -> str:
    return {"two-sided": "two-sided", "less": "smaller", "greater": "larger"}[alternative]
