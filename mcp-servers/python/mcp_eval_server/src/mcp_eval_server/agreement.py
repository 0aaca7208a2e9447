"""Agreement and significance statistics: Cohen's κ (plain, linear, quadratic), Spearman ρ, Pearson r, and paired
tests for run comparison (bootstrap and sign-flip permutation).

Implemented here in plain Python (no numpy/scipy dependency) and checked against hand-computed values in the tests.
Spearman uses average ranks for ties, i.e. Pearson on ranks, as `scipy.stats.spearmanr` does. The resampling tests
take a seed so a stored comparison can be reproduced.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any, Literal

from mcp_eval_server.errors import InvalidInputError

Weights = Literal["none", "linear", "quadratic"]


def cohen_kappa(a: Sequence[float], b: Sequence[float], weights: Weights = "none") -> float | None:
    """Cohen's κ over the union of observed categories; weighted κ orders categories numerically and measures
    distance in category steps, as `sklearn.metrics.cohen_kappa_score` does. None when chance agreement is total
    (e.g. one category only), where κ is undefined.

    Raises:
        InvalidInputError: unequal lengths or fewer than 2 items.
    """
    _check_pairs(a, b)
    cats = sorted(set(a) | set(b))
    k, n = len(cats), len(a)
    if k == 1:
        return None
    index = {c: i for i, c in enumerate(cats)}
    observed = [[0.0] * k for _ in range(k)]
    for x, y in zip(a, b, strict=True):
        observed[index[x]][index[y]] += 1 / n
    row = [sum(r) for r in observed]
    col = [sum(observed[i][j] for i in range(k)) for j in range(k)]

    def w(i: int, j: int) -> float:
        if weights == "none":
            return 0.0 if i == j else 1.0
        d = abs(i - j) / (k - 1)
        return d if weights == "linear" else d * d

    obs = sum(w(i, j) * observed[i][j] for i in range(k) for j in range(k))
    exp = sum(w(i, j) * row[i] * col[j] for i in range(k) for j in range(k))
    return 1.0 - obs / exp if exp else None


def rank(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties receive the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pearson(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Pearson r (two-pass, numerically stable); None when either side is constant."""
    _check_pairs(a, b)
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    va, vb = sum((x - ma) ** 2 for x in a), sum((y - mb) ** 2 for y in b)
    return None if va == 0 or vb == 0 else cov / math.sqrt(va * vb)


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    return pearson(rank(a), rank(b))


def _check_pairs(a: Sequence[float], b: Sequence[float]) -> None:
    if len(a) != len(b) or len(a) < 2:
        raise InvalidInputError(f"need two equally long lists of at least 2 values, got {len(a)} and {len(b)}")


def paired_bootstrap(diffs: Sequence[float], n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Two-sided p-value for mean(diffs) != 0 by bootstrap of the centred differences, plus a 95% CI of the mean."""
    n = len(diffs)
    mean = sum(diffs) / n
    rng = random.Random(seed)
    centred = [d - mean for d in diffs]
    extreme, means = 0, []
    for _ in range(n_resamples):
        sample = rng.choices(range(n), k=n)
        extreme += abs(sum(centred[i] for i in sample) / n) >= abs(mean) - 1e-12
        means.append(sum(diffs[i] for i in sample) / n)
    means.sort()
    lo, hi = means[int(0.025 * n_resamples)], means[min(n_resamples - 1, int(0.975 * n_resamples))]
    return {"p_value": (extreme + 1) / (n_resamples + 1), "ci95": [lo, hi]}


def sign_flip_permutation(diffs: Sequence[float], n_resamples: int = 2000, seed: int = 0) -> float:
    """Two-sided p-value of the paired permutation (random sign flips) test of mean(diffs) = 0."""
    n = len(diffs)
    observed = abs(sum(diffs) / n)
    rng = random.Random(seed)
    extreme = 0
    for _ in range(n_resamples):
        extreme += abs(sum(d if rng.random() < 0.5 else -d for d in diffs) / n) >= observed - 1e-12
    return (extreme + 1) / (n_resamples + 1)
