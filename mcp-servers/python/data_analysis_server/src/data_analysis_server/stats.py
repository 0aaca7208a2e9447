"""Hypothesis tests with effect sizes, confidence intervals and a one-line plain reading.

Contract: `run_test(frame, spec)` dispatches on `spec.test` to a SciPy/statsmodels reference
implementation — never a hand-rolled formula where a reference exists — and returns a JSON-safe dict
with `statistic`, `p_value`, `df`, `n`, `effect_size` (with CI) and `interpretation`. Two-sample
t-tests default to Welch, because Student's pooled variance is wrong whenever group variances differ.
Missing values are dropped (pairwise for paired tests) and the dropped count is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multicomp import pairwise_tukeyhsd
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

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
SHAPIRO_MAX_N = 5000


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


def _need(value: str | None, what: str, spec: HypothesisSpec) -> str:
    if not value:
        raise InvalidArgumentError(f"Test {spec.test!r} needs `{what}`: it takes {_NEEDS[spec.test]}.")
    return value


def _groups(frame: pd.DataFrame, spec: HypothesisSpec, exactly_two: bool) -> dict[str, np.ndarray]:
    value = _need(spec.column, "column", spec)
    group = _need(spec.group_column, "group_column", spec)
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


def _paired(frame: pd.DataFrame, spec: HypothesisSpec) -> tuple[np.ndarray, np.ndarray]:
    a = numeric(frame, _need(spec.column, "column", spec))
    b = numeric(frame, _need(spec.column_b, "column_b", spec))
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


def _result(
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


def _t_one(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    x = finite(numeric(frame, _need(spec.column, "column", spec)))
    res = stats.ttest_1samp(x, spec.mu0, alternative=spec.alternative)
    ci = res.confidence_interval(spec.confidence)
    eff = effects.cohens_d_one(x, spec.mu0, spec.confidence)
    return _result(
        spec,
        "t",
        res.statistic,
        res.pvalue,
        res.df,
        len(x),
        eff,
        f"mean of {spec.column} vs μ0 = {spec.mu0:g}",
        estimate=float(x.mean()),
        ci={"low": ci.low, "high": ci.high, "of": "mean"},
    )


def _t_two(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    (ga, a), (gb, b) = _groups(frame, spec, exactly_two=True).items()
    res = stats.ttest_ind(a, b, equal_var=spec.equal_var, alternative=spec.alternative)
    ci = res.confidence_interval(spec.confidence)
    kind = "Student (equal variances)" if spec.equal_var else "Welch (unequal variances)"
    return _result(
        spec,
        "t",
        res.statistic,
        res.pvalue,
        res.df,
        {ga: len(a), gb: len(b)},
        effects.hedges_g(a, b, spec.confidence),
        f"{kind} t-test, mean {ga} − mean {gb}",
        method=kind,
        estimate=float(a.mean() - b.mean()),
        ci={"low": ci.low, "high": ci.high, "of": f"mean({ga}) - mean({gb})"},
    )


def _t_paired(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    a, b = _paired(frame, spec)
    res = stats.ttest_rel(a, b, alternative=spec.alternative)
    ci = res.confidence_interval(spec.confidence)
    eff = effects.cohens_d_one(a - b, 0.0, spec.confidence)
    eff["name"] = "cohens_dz"
    return _result(
        spec,
        "t",
        res.statistic,
        res.pvalue,
        res.df,
        len(a),
        eff,
        f"paired t-test {spec.column} − {spec.column_b}",
        estimate=float((a - b).mean()),
        ci={"low": ci.low, "high": ci.high, "of": "mean difference"},
    )


def _mann_whitney(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    (ga, a), (gb, b) = _groups(frame, spec, exactly_two=True).items()
    res = stats.mannwhitneyu(a, b, alternative=spec.alternative)
    eff = effects.rank_biserial_independent(float(res.statistic), len(a), len(b), spec.confidence)
    return _result(
        spec, "U", res.statistic, res.pvalue, None, {ga: len(a), gb: len(b)}, eff, f"Mann-Whitney U, {ga} vs {gb}"
    )


def _wilcoxon(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    if spec.column_b:
        a, b = _paired(frame, spec)
        diffs, what = a - b, f"Wilcoxon signed-rank {spec.column} − {spec.column_b}"
    else:
        diffs = finite(numeric(frame, _need(spec.column, "column", spec))) - spec.mu0
        what = f"Wilcoxon signed-rank {spec.column} vs μ0 = {spec.mu0:g}"
    res = stats.wilcoxon(diffs, alternative=spec.alternative)
    return _result(
        spec,
        "W",
        res.statistic,
        res.pvalue,
        None,
        len(diffs),
        effects.rank_biserial_paired(diffs, spec.confidence),
        what,
    )


def _kruskal(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    groups = _groups(frame, spec, exactly_two=False)
    res = stats.kruskal(*groups.values())
    n = sum(len(g) for g in groups.values())
    eff = effects.effect("epsilon_squared", float(res.statistic) / (n - 1), None, None, "no closed-form CI")
    return _result(
        spec,
        "H",
        res.statistic,
        res.pvalue,
        len(groups) - 1,
        {k: len(v) for k, v in groups.items()},
        eff,
        f"Kruskal-Wallis across {len(groups)} groups of {spec.group_column}",
    )


def _anova(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    groups = _groups(frame, spec, exactly_two=False)
    if len(groups) < 2:
        raise InvalidArgumentError("anova_oneway needs at least two groups.")
    # F is shift-invariant; subtracting a data value (exact by Sterbenz) keeps the digits that the
    # NIST 'higher difficulty' sets (13 constant leading digits) otherwise lose in the sums of squares.
    shift = next(iter(groups.values()))[0]
    res = stats.f_oneway(*(g - shift for g in groups.values()))
    n = sum(len(g) for g in groups.values())
    df1, df2 = len(groups) - 1, n - len(groups)
    eff = effects.eta_squared(float(res.statistic), df1, df2, spec.confidence)
    return _result(
        spec,
        "F",
        res.statistic,
        res.pvalue,
        [df1, df2],
        {k: len(v) for k, v in groups.items()},
        eff,
        f"one-way ANOVA across {len(groups)} groups of {spec.group_column}",
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


def _chi_independence(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    a, b = _need(spec.column, "column", spec), _need(spec.column_b, "column_b", spec)
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
    return _result(
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


def _chi_gof(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    col = _need(spec.column, "column", spec)
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
    n = int(observed.sum())
    f_exp = probs / probs.sum() * n
    chi2, p = stats.chisquare(observed.to_numpy(), f_exp)
    eff = effects.cramers_v(float(chi2), n, len(observed) - 1, 1, spec.confidence, name="cohens_w")
    return _result(
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


def _shapiro(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    x = finite(numeric(frame, _need(spec.column, "column", spec)))
    note = None
    if len(x) > SHAPIRO_MAX_N:
        x = np.random.default_rng(0).choice(x, SHAPIRO_MAX_N, replace=False)
        note = (
            f"tested a seeded random sample of {SHAPIRO_MAX_N} values "
            "(Shapiro-Wilk p-values are unreliable beyond that)"
        )
    res = stats.shapiro(x)
    return _result(
        spec, "W", res.statistic, res.pvalue, None, len(x), None, f"Shapiro-Wilk normality of {spec.column}", note=note
    )


def _two_samples(frame: pd.DataFrame, spec: HypothesisSpec) -> tuple[str, np.ndarray, str, np.ndarray]:
    if spec.column_b:
        a, b = numeric(frame, _need(spec.column, "column", spec)), numeric(frame, spec.column_b)
        return str(spec.column), finite(a), spec.column_b, finite(b)
    (ga, a), (gb, b) = _groups(frame, spec, exactly_two=True).items()
    return ga, a, gb, b


def _ks(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    ga, a, gb, b = _two_samples(frame, spec)
    res = stats.ks_2samp(a, b, alternative=spec.alternative)
    eff = effects.effect("ks_d", float(res.statistic), None, None, "the statistic is itself the effect size")
    return _result(
        spec, "D", res.statistic, res.pvalue, None, {ga: len(a), gb: len(b)}, eff, f"two-sample KS, {ga} vs {gb}"
    )


def _levene(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    groups = _groups(frame, spec, exactly_two=False)
    res = stats.levene(*groups.values(), center="median")
    n = sum(len(g) for g in groups.values())
    return _result(
        spec,
        "W",
        res.statistic,
        res.pvalue,
        [len(groups) - 1, n - len(groups)],
        {k: len(v) for k, v in groups.items()},
        None,
        f"Levene (Brown-Forsythe, median-centred) equality of variances across {spec.group_column}",
    )


def _binary(frame: pd.DataFrame, spec: HypothesisSpec) -> pd.Series:
    col = _need(spec.column, "column", spec)
    require(frame, [col])
    values = frame[col]
    if spec.success is not None:
        return (values.astype("string") == str(spec.success)).where(values.notna())
    uniq = set(values.dropna().unique().tolist())
    if not uniq <= {0, 1}:
        raise InvalidArgumentError(
            f"Column {col!r} is not 0/1 or boolean; pass `success` = the value counted as a success."
        )
    return values.astype("float64") == 1


def _proportions(frame: pd.DataFrame, spec: HypothesisSpec) -> dict[str, Any]:
    hits = _binary(frame, spec)
    if spec.group_column is None:
        x = hits.dropna().astype(bool)
        count, nobs = int(x.sum()), len(x)
        z, p = proportions_ztest(count, nobs, value=spec.p0, alternative=_sm_alt(spec.alternative), prop_var=spec.p0)
        lo, hi = proportion_confint(count, nobs, alpha=1 - spec.confidence, method="wilson")
        eff = effects.effect("cohens_h", effects.cohens_h(count / nobs, spec.p0), None, None, "no CI")
        return _result(
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
    (ga, _), (gb, _) = _groups(
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
    return _result(
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


_DISPATCH: dict[str, Callable[[pd.DataFrame, HypothesisSpec], dict[str, Any]]] = {
    "t_one_sample": _t_one,
    "t_two_sample": _t_two,
    "t_paired": _t_paired,
    "mann_whitney": _mann_whitney,
    "wilcoxon": _wilcoxon,
    "kruskal": _kruskal,
    "anova_oneway": _anova,
    "chi_square_independence": _chi_independence,
    "chi_square_goodness_of_fit": _chi_gof,
    "shapiro": _shapiro,
    "ks_2samp": _ks,
    "levene": _levene,
    "proportions_z": _proportions,
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
    return _DISPATCH[spec.test](frame, spec)
