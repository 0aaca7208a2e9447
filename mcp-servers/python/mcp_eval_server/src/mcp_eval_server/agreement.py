"""Agreement and significance statistics, computed by the libraries of the field, with undefined values as `None`.

Cohen's κ (plain, linear, quadratic) is `sklearn.metrics.cohen_kappa_score` with `labels` set to every category of
the declared scale, so a weighted κ measures distance in steps of the scale even where a category was never used
(scores 1, 2 and 5 on a 1-5 scale are three steps apart, not one). Spearman ρ and Pearson r are `scipy.stats`
`spearmanr`/`pearsonr`. The paired tests of `compare_runs` are `scipy.stats.permutation_test` (sign flips of the
per-item differences; exact when 2^n is at most the number of resamples) and `scipy.stats.bootstrap` (percentile
CI of the mean difference); the bootstrap p-value is the share of centred bootstrap means at least as far from 0 as
the observed mean, with the usual +1 correction. Each test takes a seed so a stored comparison can be reproduced.

Where a statistic is undefined (a constant rater, chance agreement of 1) the function returns `None` instead of
NaN; `undefined_reason` says why in words. scipy and sklearn are imported on first use: together they add about a
second to the server's start-up, which every client (and the gateway's handshake deadline) would pay. Never
imports `mcp`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from mcp_eval_server.errors import InvalidInputError

Weights = Literal["none", "linear", "quadratic"]


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None


def _check_pairs(a: Sequence[float], b: Sequence[float]) -> None:
    if len(a) != len(b) or len(a) < 2:
        raise InvalidInputError(f"need two equally long lists of at least 2 values, got {len(a)} and {len(b)}")


def cohen_kappa(
    a: Sequence[float], b: Sequence[float], weights: Weights = "none", labels: Sequence[float] | None = None
) -> float | None:
    """Cohen's κ of two raters over `labels` (default: the categories either rater used); None when undefined.

    Raises:
        InvalidInputError: unequal lengths or fewer than 2 items.
    """
    _check_pairs(a, b)
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns and returns NaN when chance agreement is total
        value = cohen_kappa_score(
            list(a),
            list(b),
            labels=list(labels) if labels is not None else None,
            weights=None if weights == "none" else weights,
        )
    return _finite(value)


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman ρ (ties get average ranks) from `scipy.stats.spearmanr`; None when either side is constant."""
    _check_pairs(a, b)
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _finite(stats.spearmanr(a, b).statistic)


def pearson(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Pearson r from `scipy.stats.pearsonr`; None when either side is constant."""
    _check_pairs(a, b)
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _finite(stats.pearsonr(a, b).statistic)


def undefined_reason(name: str, a: Sequence[float], b: Sequence[float], label_a: str, label_b: str) -> str:
    """Why `name` is undefined for these ratings, in a sentence that says what to change."""
    constant = [(label, values[0]) for label, values in ((label_a, a), (label_b, b)) if len(set(values)) == 1]
    if constant:
        which = " and ".join(f"every {label} is {value:g}" for label, value in constant)
        return f"{name} is undefined because {which}; it needs items that differ on both sides."
    return f"{name} is undefined for these ratings (chance agreement is total); label more varied items."


def paired_bootstrap(diffs: Sequence[float], n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Two-sided p-value for mean(diffs) != 0 and a 95% percentile CI of the mean, from `scipy.stats.bootstrap`."""
    from scipy import stats

    data = np.asarray(diffs, dtype=float)
    mean = float(data.mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant differences make scipy warn about a degenerate distribution
        result = stats.bootstrap(
            (data,),
            np.mean,
            n_resamples=n_resamples,
            confidence_level=0.95,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    centred = result.bootstrap_distribution - mean
    extreme = int(np.sum(np.abs(centred) >= abs(mean) - 1e-12))
    ci = result.confidence_interval
    return {"p_value": (extreme + 1) / (n_resamples + 1), "ci95": [_finite(ci.low), _finite(ci.high)]}


def sign_flip_permutation(diffs: Sequence[float], n_resamples: int = 2000, seed: int = 0) -> float:
    """Two-sided p-value of the paired permutation test (random sign flips) of mean(diffs) = 0 (`permutation_test`)."""
    from scipy import stats

    data = np.asarray(diffs, dtype=float)
    result = stats.permutation_test(
        (data,),
        lambda x, axis: np.mean(x, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return float(result.pvalue)
