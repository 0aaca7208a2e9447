"""Hypothesis tests with effect sizes, confidence intervals and a one-line plain reading.

Contract: `run_test(frame, spec)` dispatches on `spec.test` to a SciPy/statsmodels reference
implementation — never a hand-rolled formula where a reference exists — and returns a JSON-safe dict
with `statistic`, `p_value`, `df`, `n`, `effect_size` (with CI) and `interpretation`. Two-sample
t-tests default to Welch, because Student's pooled variance is wrong whenever group variances differ.
Missing values are dropped (pairwise for paired tests); `n` counts the values actually used.
Tests on counts and proportions live in `contingency.py`; shared argument/result plumbing in
`hypothesis.py`. This module keeps the numeric tests and the dispatch table.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multicomp import pairwise_tukeyhsd

from . import effects
from .caveats import warning
from .columns import finite, numeric
from .contingency import chi_gof, chi_independence, proportions
from .errors import InvalidArgumentError
from .hypothesis import TESTS, HypothesisSpec, enough, group_arrays, need, paired_arrays, reason_for, result

__all__ = ["TESTS", "HypothesisSpec", "run_test"]
SHAPIRO_MAX_N = 5000


def _t_one(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    x = enough(finite(numeric(frame, need(spec.column, "column", spec))), 2, spec, repr(spec.column))
    res = stats.ttest_1samp(x, spec.mu0, alternative=spec.alternative)
    ci = res.confidence_interval(spec.confidence)
    eff = effects.cohens_d_one(x, spec.mu0, spec.confidence)
    return result(
        spec,
        "t",
        res.statistic,
        res.pvalue,
        res.df,
        len(x),
        eff,
        f"mean of {spec.column} vs μ0 = {spec.mu0:g}",
        reason=reason_for(x),
        estimate=float(x.mean()),
        ci={"low": ci.low, "high": ci.high, "of": "mean"},
    )


def _t_two(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    (ga, a), (gb, b) = group_arrays(frame, spec, exactly_two=True).items()
    res = stats.ttest_ind(a, b, equal_var=spec.equal_var, alternative=spec.alternative)
    ci = res.confidence_interval(spec.confidence)
    kind = "Student (equal variances)" if spec.equal_var else "Welch (unequal variances)"
    return result(
        spec,
        "t",
        res.statistic,
        res.pvalue,
        res.df,
        {ga: len(a), gb: len(b)},
        effects.hedges_g(a, b, spec.confidence),
        f"{kind} t-test, mean {ga} − mean {gb}",
        reason=reason_for(a, b),
        method=kind,
        estimate=float(a.mean() - b.mean()),
        ci={"low": ci.low, "high": ci.high, "of": f"mean({ga}) - mean({gb})"},
    )


def _t_paired(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    a, b = paired_arrays(frame, spec)
    res = stats.ttest_rel(a, b, alternative=spec.alternative)
    ci = res.confidence_interval(spec.confidence)
    eff = effects.cohens_d_one(a - b, 0.0, spec.confidence)
    eff["name"] = "cohens_dz"
    return result(
        spec,
        "t",
        res.statistic,
        res.pvalue,
        res.df,
        len(a),
        eff,
        f"paired t-test {spec.column} − {spec.column_b}",
        reason=reason_for(a - b),
        estimate=float((a - b).mean()),
        ci={"low": ci.low, "high": ci.high, "of": "mean difference"},
    )


def _mann_whitney(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    (ga, a), (gb, b) = group_arrays(frame, spec, exactly_two=True).items()
    res = stats.mannwhitneyu(a, b, alternative=spec.alternative)
    if np.ptp(np.concatenate([a, b])) == 0:  # every value tied: U has zero variance, SciPy's p = 1 means nothing
        res = res._replace(statistic=np.nan, pvalue=np.nan)
    eff = effects.rank_biserial_independent(float(res.statistic), len(a), len(b), spec.confidence)
    return result(
        spec,
        "U",
        res.statistic,
        res.pvalue,
        None,
        {ga: len(a), gb: len(b)},
        eff,
        f"Mann-Whitney U, {ga} vs {gb}",
        reason=reason_for(np.concatenate([a, b])),
    )


def _wilcoxon(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    if spec.column_b:
        a, b = paired_arrays(frame, spec, minimum=1)
        diffs, what = a - b, f"Wilcoxon signed-rank {spec.column} − {spec.column_b}"
    else:
        diffs = enough(finite(numeric(frame, need(spec.column, "column", spec))), 1, spec, repr(spec.column)) - spec.mu0
        what = f"Wilcoxon signed-rank {spec.column} vs μ0 = {spec.mu0:g}"
    if not np.any(diffs):
        raise InvalidArgumentError(
            f"Every difference in {what[len('Wilcoxon signed-rank ') :]} is zero ({len(diffs)} values): the "
            "signed-rank test has nothing to rank. The data show no difference; a test is not needed (or check the "
            "columns)."
        )
    res = stats.wilcoxon(diffs, alternative=spec.alternative)
    return result(
        spec,
        "W",
        res.statistic,
        res.pvalue,
        None,
        len(diffs),
        effects.rank_biserial_paired(diffs, spec.confidence),
        what,
        reason=reason_for(diffs),
    )


def _kruskal(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    groups = group_arrays(frame, spec, exactly_two=False)
    res = stats.kruskal(*groups.values())
    n = sum(len(g) for g in groups.values())
    eff = effects.effect("epsilon_squared", float(res.statistic) / (n - 1), None, None, "no closed-form CI")
    return result(
        spec,
        "H",
        res.statistic,
        res.pvalue,
        len(groups) - 1,
        {k: len(v) for k, v in groups.items()},
        eff,
        f"Kruskal-Wallis across {len(groups)} groups of {spec.group_column}",
        reason=reason_for(np.concatenate(list(groups.values()))),
    )


def _anova(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    groups = group_arrays(frame, spec, exactly_two=False)
    if len(groups) < 2:
        raise InvalidArgumentError("anova_oneway needs at least two groups.")
    # F is shift-invariant; subtracting a data value (exact by Sterbenz) keeps the digits that the
    # NIST 'higher difficulty' sets (13 constant leading digits) otherwise lose in the sums of squares.
    shift = next(iter(groups.values()))[0]
    res = stats.f_oneway(*(g - shift for g in groups.values()))
    n = sum(len(g) for g in groups.values())
    df1, df2 = len(groups) - 1, n - len(groups)
    eff = effects.eta_squared(float(res.statistic), df1, df2, spec.confidence)
    return result(
        spec,
        "F",
        res.statistic,
        res.pvalue,
        [df1, df2],
        {k: len(v) for k, v in groups.items()},
        eff,
        f"one-way ANOVA across {len(groups)} groups of {spec.group_column}",
        reason=reason_for(*groups.values()),
        group_means={k: float(v.mean()) for k, v in groups.items()},
        tukey_hsd=_tukey(groups, spec.confidence),
    )


def _tukey(groups: dict[str, np.ndarray], confidence: float) -> list[dict[str, Any]]:
    """Pairwise Tukey HSD (statsmodels; SciPy's exact studentized range is too slow at large df), ≤ 20 groups."""
    if len(groups) > 20:
        return []
    endog = np.concatenate(list(groups.values()))
    labels = np.concatenate([np.full(len(v), k, dtype=object) for k, v in groups.items()])
    res = pairwise_tukeyhsd(endog, labels, alpha=1 - confidence)
    names = [str(g) for g in res.groupsunique]
    pairs = [(names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names))]
    return [
        {
            "group_a": a,
            "group_b": b,
            "mean_diff": float(res.meandiffs[k]),
            "mean_diff_of": "mean(group_b) - mean(group_a)",
            "p_value": float(res.pvalues[k]),
            "ci_low": float(res.confint[k][0]),
            "ci_high": float(res.confint[k][1]),
        }
        for k, (a, b) in enumerate(pairs)
    ]


def _shapiro(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    x = enough(finite(numeric(frame, need(spec.column, "column", spec))), 3, spec, repr(spec.column))
    note, notes = None, []
    if len(x) > SHAPIRO_MAX_N:
        note = (
            f"tested a seeded random sample of {SHAPIRO_MAX_N} of {len(x)} values "
            "(Shapiro-Wilk p-values are unreliable beyond that)"
        )
        notes.append(warning("sampled", f"Shapiro-Wilk {note}; use ks_2samp or a Q-Q plot for the full data."))
        x = np.random.default_rng(0).choice(x, SHAPIRO_MAX_N, replace=False)
    stat, p = stats.shapiro(x) if np.ptp(x) > 0 else (np.nan, np.nan)  # SciPy says W = 1, p = 1 for constant data
    return result(
        spec,
        "W",
        stat,
        p,
        None,
        len(x),
        None,
        f"Shapiro-Wilk normality of {spec.column}",
        reason=reason_for(x),
        warnings=notes,
        note=note,
    )


def _two_samples(frame: pd.DataFrame, spec: HypothesisSpec) -> tuple[str, np.ndarray, str, np.ndarray]:
    if spec.column_b:
        a, b = numeric(frame, need(spec.column, "column", spec)), numeric(frame, spec.column_b)
        a_, b_ = enough(finite(a), 1, spec, repr(spec.column)), enough(finite(b), 1, spec, repr(spec.column_b))
        return str(spec.column), a_, spec.column_b, b_
    (ga, a), (gb, b) = group_arrays(frame, spec, exactly_two=True).items()
    return ga, a, gb, b


def _ks(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    ga, a, gb, b = _two_samples(frame, spec)
    res = stats.ks_2samp(a, b, alternative=spec.alternative)
    eff = effects.effect("ks_d", float(res.statistic), None, None, "the statistic is itself the effect size")
    return result(
        spec,
        "D",
        res.statistic,
        res.pvalue,
        None,
        {ga: len(a), gb: len(b)},
        eff,
        f"two-sample KS, {ga} vs {gb}",
        reason=reason_for(a, b),
    )


def _levene(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    groups = group_arrays(frame, spec, exactly_two=False)
    res = stats.levene(*groups.values(), center="median")
    n = sum(len(g) for g in groups.values())
    return result(
        spec,
        "W",
        res.statistic,
        res.pvalue,
        [len(groups) - 1, n - len(groups)],
        {k: len(v) for k, v in groups.items()},
        None,
        f"Levene (Brown-Forsythe, median-centred) equality of variances across {spec.group_column}",
        reason=reason_for(*groups.values()),
    )


_DISPATCH: dict[str, Callable[[pd.DataFrame, HypothesisSpec], dict[str, Any]]] = {
    "t_one_sample": _t_one,
    "t_two_sample": _t_two,
    "t_paired": _t_paired,
    "mann_whitney": _mann_whitney,
    "wilcoxon": _wilcoxon,
    "kruskal": _kruskal,
    "anova_oneway": _anova,
    "chi_square_independence": chi_independence,
    "chi_square_goodness_of_fit": chi_gof,
    "shapiro": _shapiro,
    "ks_2samp": _ks,
    "levene": _levene,
    "proportions_z": proportions,
}


def run_test(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    """Run one hypothesis test.

    Raises:
        InvalidArgumentError: unknown test, missing arguments (says which the test needs), bad groups.
        ColumnError: unknown or non-numeric column.
    """
    if spec.test not in _DISPATCH:
        raise InvalidArgumentError(f"Unknown test {spec.test!r}; choose one of {list(TESTS)}")
    if spec.alternative not in ("two-sided", "less", "greater"):
        raise InvalidArgumentError("alternative must be 'two-sided', 'less' or 'greater'.")
    if not 0.5 <= spec.confidence < 1:
        raise InvalidArgumentError("confidence must be in [0.5, 1), e.g. 0.95.")
    # A NaN/inf result is reported as null with its reason, so the libraries' runtime warnings add nothing.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _DISPATCH[spec.test](frame, spec)
