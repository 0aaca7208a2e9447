"""κ, weighted κ, Spearman and the paired tests against values computed by hand (derivations in comments) and
against sklearn/scipy called directly."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score as sklearn_kappa

from mcp_eval_server.agreement import cohen_kappa, paired_bootstrap, pearson, sign_flip_permutation, spearman
from mcp_eval_server.errors import InvalidInputError

HUMAN = [1, 1, 2, 2, 3, 3]
JUDGE = [1, 2, 2, 2, 3, 1]


def test_unweighted_kappa() -> None:
    # po = 4/6; marginals human (1/3, 1/3, 1/3), judge (1/3, 1/2, 1/6) -> pe = 1/3; κ = (2/3 - 1/3) / (2/3)
    assert cohen_kappa(HUMAN, JUDGE) == pytest.approx(0.5)


def test_quadratic_weighted_kappa() -> None:
    # weights ((i-j)/2)^2; observed disagreement 5/24, expected 7/24 -> 1 - 5/7
    assert cohen_kappa(HUMAN, JUDGE, "quadratic") == pytest.approx(2 / 7)


def test_linear_weighted_kappa() -> None:
    # weights |i-j|/2; observed 1/4, expected 5/12 -> 1 - 3/5
    assert cohen_kappa(HUMAN, JUDGE, "linear") == pytest.approx(0.4)


def test_kappa_of_perfect_and_chance_level_agreement() -> None:
    assert cohen_kappa([1, 2, 3], [1, 2, 3]) == 1.0
    assert cohen_kappa([2, 2, 2], [2, 2, 2]) is None  # pe = 1: undefined, not "perfect"
    # po = 1/2, pe = 1/2 -> 0
    assert cohen_kappa([1, 1, 2, 2], [1, 2, 1, 2]) == pytest.approx(0.0)


def test_spearman_averages_tied_ranks() -> None:
    # ranks J = (1.5, 4, 4, 4, 6, 1.5): Pearson of these with (1, ..., 6) is Spearman of J with an untied ramp
    ranks_j = [1.5, 4.0, 4.0, 4.0, 6.0, 1.5]
    assert spearman([1, 2, 3, 4, 5, 6], JUDGE) == pytest.approx(pearson([1, 2, 3, 4, 5, 6], ranks_j))


def test_spearman_with_ties() -> None:
    # ranks H = (1.5,1.5,3.5,3.5,5.5,5.5), J = (1.5,4,4,4,6,1.5); cov 4, var 16 and 15 -> 4/sqrt(240)
    assert spearman(HUMAN, JUDGE) == pytest.approx(4 / 240**0.5)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_pearson_of_constant_input_is_undefined() -> None:
    assert pearson([1, 1, 1], [1, 2, 3]) is None


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="equally long"):
        cohen_kappa([1, 2], [1])


def test_paired_tests_separate_a_real_shift_from_noise() -> None:
    shift = [0.5 + (0.1 if i % 2 else -0.1) for i in range(50)]
    noise = [0.1 if i % 2 else -0.1 for i in range(50)]
    assert paired_bootstrap(shift, 1000)["p_value"] < 0.01
    assert sign_flip_permutation(shift, 1000) < 0.01
    assert paired_bootstrap(noise, 1000)["p_value"] > 0.5
    assert sign_flip_permutation(noise, 1000) > 0.5
    lo, hi = paired_bootstrap(shift, 1000)["ci95"]
    assert lo <= 0.5 <= hi


def test_resampling_is_reproducible_with_a_seed() -> None:
    diffs = [0.1, -0.3, 0.4, 0.2, 0.0, 0.25]
    assert paired_bootstrap(diffs, 500, seed=3) == paired_bootstrap(diffs, 500, seed=3)


def test_weighted_kappa_counts_steps_of_the_declared_scale_including_unused_categories() -> None:
    # scores 1, 2 and 5 on a 1-5 scale: 2 -> 5 is three steps, not the one step between observed categories
    human = [1, 2, 5, 5, 2, 1]
    judge = [1, 5, 5, 2, 2, 2]
    labels = [1, 2, 3, 4, 5]
    for weights in ("linear", "quadratic"):
        got = cohen_kappa(human, judge, weights, labels)  # type: ignore[arg-type]
        assert got == sklearn_kappa(human, judge, labels=labels, weights=weights)
        assert got != pytest.approx(cohen_kappa(human, judge, weights))  # type: ignore[arg-type]


def test_statistics_equal_sklearn_and_scipy_on_random_ratings() -> None:
    rng = random.Random(5)
    a = [rng.randint(1, 7) for _ in range(40)]
    b = [min(7, max(1, x + rng.randint(-2, 2))) for x in a]
    assert cohen_kappa(a, b) == sklearn_kappa(a, b)
    assert cohen_kappa(a, b, "quadratic", range(1, 8)) == sklearn_kappa(a, b, weights="quadratic", labels=range(1, 8))
    assert spearman(a, b) == stats.spearmanr(a, b).statistic
    assert pearson(a, b) == stats.pearsonr(a, b).statistic


def test_paired_tests_are_scipys() -> None:
    diffs = [0.1, -0.3, 0.4, 0.2, 0.0, 0.25, 0.3, 0.15]
    perm = stats.permutation_test(
        (np.asarray(diffs),),
        lambda x, axis: np.mean(x, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=2000,
        alternative="two-sided",
        rng=np.random.default_rng(4),
    )
    assert sign_flip_permutation(diffs, 2000, seed=4) == perm.pvalue  # exact here: 2^8 sign patterns
    boot = stats.bootstrap(
        (np.asarray(diffs),), np.mean, n_resamples=500, method="percentile", rng=np.random.default_rng(4)
    )
    assert paired_bootstrap(diffs, 500, seed=4)["ci95"] == [boot.confidence_interval.low, boot.confidence_interval.high]
