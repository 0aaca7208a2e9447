"""Effect sizes and their confidence intervals.

Why a module of its own: a p-value says nothing about magnitude, so every test in `stats.py` reports
an effect size with a CI. Closed forms are used where the literature has them (Hedges & Olkin SE for
standardized mean differences, noncentral-F / noncentral-chi-square inversion for eta-squared and
Cramér's V, the usual normal approximation for rank-biserial correlations). Pure functions of numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import optimize, stats


def effect(name: str, value: float, lo: float | None, hi: float | None, method: str) -> dict[str, Any]:
    """The uniform effect-size record every test returns."""
    return {"name": name, "value": value, "ci_low": lo, "ci_high": hi, "ci_method": method}


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def cohens_d_one(x: np.ndarray, mu0: float, confidence: float) -> dict[str, Any]:
    """Standardized mean difference from mu0 with the Hedges & Olkin normal-approximation CI."""
    n = len(x)
    d = float((x.mean() - mu0) / x.std(ddof=1))
    se = math.sqrt(1 / n + d * d / (2 * n))
    z = _z(confidence)
    return effect("cohens_d", d, d - z * se, d + z * se, "normal approximation (Hedges & Olkin)")


def hedges_g(a: np.ndarray, b: np.ndarray, confidence: float) -> dict[str, Any]:
    """Bias-corrected standardized difference of two independent means (pooled SD)."""
    n1, n2 = len(a), len(b)
    pooled = math.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    d = float((a.mean() - b.mean()) / pooled)
    g = d * (1 - 3 / (4 * (n1 + n2) - 9))
    se = math.sqrt((n1 + n2) / (n1 * n2) + g * g / (2 * (n1 + n2)))
    z = _z(confidence)
    return effect("hedges_g", g, g - z * se, g + z * se, "normal approximation (Hedges & Olkin)")


def rank_biserial_independent(u1: float, n1: int, n2: int, confidence: float) -> dict[str, Any]:
    """r = 2·U1/(n1·n2) − 1: positive when the first group tends to be larger."""
    r = 2 * u1 / (n1 * n2) - 1
    se = math.sqrt((n1 + n2 + 1) / (3 * n1 * n2))
    z = _z(confidence)
    return effect("rank_biserial", r, max(-1.0, r - z * se), min(1.0, r + z * se), "normal approximation")


def rank_biserial_paired(diffs: np.ndarray, confidence: float) -> dict[str, Any]:
    """Matched-pairs rank-biserial (W+ − W−)/S with the null-variance normal approximation."""
    d = diffs[diffs != 0]
    n = len(d)
    ranks = stats.rankdata(np.abs(d))
    total = n * (n + 1) / 2
    r = float((ranks[d > 0].sum() - ranks[d < 0].sum()) / total)
    se = 2 * math.sqrt(n * (n + 1) * (2 * n + 1) / 24) / total
    z = _z(confidence)
    return effect("rank_biserial", r, max(-1.0, r - z * se), min(1.0, r + z * se), "normal approximation")


def _invert_noncentral(raw_cdf: Any, target: float, upper_bound: float) -> float:
    """Smallest noncentrality λ ≥ 0 with cdf(λ) = target (cdf decreases in λ); 0 if already below."""

    def cdf_at(lam: float) -> float:
        # SciPy's noncentral CDFs return NaN far in the tail (huge λ), where the true value is ~0.
        value = raw_cdf(lam)
        return 0.0 if math.isnan(value) else value

    if cdf_at(0.0) <= target:
        return 0.0
    hi = max(upper_bound, 10.0)
    while cdf_at(hi) > target:
        hi *= 2
        if hi > 1e9:
            return hi
    return float(optimize.brentq(lambda lam: cdf_at(lam) - target, 0.0, hi, xtol=1e-10))


def eta_squared(f: float, df1: float, df2: float, confidence: float) -> dict[str, Any]:
    """Eta-squared from F with a CI from inverting the noncentral F distribution (Steiger 2004)."""
    n = df1 + df2 + 1
    if not math.isfinite(f):
        return effect("eta_squared", float("nan"), None, None, "undefined: F is not a finite number")
    value = f * df1 / (f * df1 + df2)
    alpha = 1 - confidence
    cdf = lambda lam: float(stats.ncf.cdf(f, df1, df2, lam)) if lam > 0 else float(stats.f.cdf(f, df1, df2))  # noqa: E731
    method = "noncentral F inversion"
    lo = _invert_noncentral(cdf, 1 - alpha / 2, f * df1)
    hi = _invert_noncentral(cdf, alpha / 2, f * df1 * 4)
    return effect("eta_squared", value, lo / (lo + n), hi / (hi + n), method)


def cramers_v(chi2: float, n: int, df: int, m: int, confidence: float, name: str = "cramers_v") -> dict[str, Any]:
    """sqrt(χ²/(n·m)) with bounds sqrt((λ+df)/(n·m)) from the noncentral chi-square (MBESS convention)."""
    if not math.isfinite(chi2) or n == 0:
        return effect(name, float("nan"), None, None, "undefined: χ² is not a finite number")
    alpha = 1 - confidence
    cdf = lambda lam: float(stats.ncx2.cdf(chi2, df, lam)) if lam > 0 else float(stats.chi2.cdf(chi2, df))  # noqa: E731
    lo = _invert_noncentral(cdf, 1 - alpha / 2, chi2)
    hi = _invert_noncentral(cdf, alpha / 2, chi2 * 4)
    bound = lambda lam: min(1.0, math.sqrt((lam + df) / (n * m))) if lam > 0 else 0.0  # noqa: E731
    return effect(name, math.sqrt(chi2 / (n * m)), bound(lo), bound(hi), "noncentral chi-square inversion")


def cohens_h(p1: float, p2: float) -> float:
    """Arcsine-transformed difference of two proportions."""
    return 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2))


def magnitude(name: str, value: float) -> str:
    """Cohen's conventional words, so the one-line reading can say 'small'/'large'."""
    v = abs(value)
    cuts = {
        "cohens_d": (0.2, 0.5, 0.8),
        "cohens_dz": (0.2, 0.5, 0.8),
        "hedges_g": (0.2, 0.5, 0.8),
        "cohens_h": (0.2, 0.5, 0.8),
        "rank_biserial": (0.1, 0.3, 0.5),
        "cramers_v": (0.1, 0.3, 0.5),
        "cohens_w": (0.1, 0.3, 0.5),
        "eta_squared": (0.01, 0.06, 0.14),
        "epsilon_squared": (0.01, 0.06, 0.14),
    }.get(name)
    if cuts is None:
        return ""
    return "negligible" if v < cuts[0] else "small" if v < cuts[1] else "medium" if v < cuts[2] else "large"
