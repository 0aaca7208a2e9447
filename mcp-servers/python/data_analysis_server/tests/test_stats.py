"""Hypothesis tests against published values (iris) and against independent reference computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mcp import Client
from sklearn.datasets import load_iris

from conftest import call, call_error
from data_analysis_server.errors import ColumnError, InvalidArgumentError
from data_analysis_server.stats import TESTS, HypothesisSpec, run_test

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["species"] = frame["target"].map(dict(enumerate(data.target_names)))
    return frame.drop(columns="target")


async def _load(client: Client, frame: pd.DataFrame, name: str) -> str:
    return (await call(client, "load_dataset", data=frame.to_csv(index=False), name=name))["dataset_id"]


async def test_iris_welch_versus_student_match_published_values(client: Client, iris: pd.DataFrame) -> None:
    ds = await _load(client, iris, "iris")
    args = dict(
        dataset_id=ds,
        test="t_two_sample",
        column="sepal_length",
        group_column="species",
        groups=["setosa", "versicolor"],
    )
    welch = await call(client, "test_hypothesis", **args)
    student = await call(client, "test_hypothesis", **args, equal_var=True)
    assert welch["p_value"] == pytest.approx(3.75e-17, rel=5e-3)
    assert welch["df"] == pytest.approx(86.5, abs=0.05)
    assert student["p_value"] == pytest.approx(8.99e-18, rel=5e-3)
    assert student["df"] == 98
    assert welch["method"].startswith("Welch") and student["method"].startswith("Student")
    assert welch["estimate"] == pytest.approx(5.006 - 5.936)
    assert welch["ci"]["low"] < welch["estimate"] < welch["ci"]["high"] < 0
    assert welch["effect_size"]["name"] == "hedges_g" and welch["effect_size"]["value"] < -1.5
    assert "significant" in welch["interpretation"]


def test_anova_reports_eta_squared_with_ci_and_tukey(iris: pd.DataFrame) -> None:
    out = run_test(iris, HypothesisSpec("anova_oneway", column="sepal_length", group_column="species"))
    assert out["statistic"] == pytest.approx(119.26450218, rel=1e-8)  # R: summary(aov(Sepal.Length ~ Species))
    eff = out["effect_size"]
    assert eff["value"] == pytest.approx(0.6187057, rel=1e-6)
    assert eff["ci_low"] < eff["value"] < eff["ci_high"]
    pair = next(p for p in out["tukey_hsd"] if {p["group_a"], p["group_b"]} == {"setosa", "versicolor"})
    assert pair["mean_diff"] == pytest.approx(0.930, abs=1e-9) and pair["p_value"] < 1e-10  # R TukeyHSD: diff 0.930


def test_mann_whitney_rank_biserial_matches_its_definition(iris: pd.DataFrame) -> None:
    out = run_test(
        iris,
        HypothesisSpec("mann_whitney", column="sepal_length", group_column="species", groups=["setosa", "versicolor"]),
    )
    a = iris.loc[iris.species == "setosa", "sepal_length"].to_numpy()
    b = iris.loc[iris.species == "versicolor", "sepal_length"].to_numpy()
    wins = (a[:, None] > b[None, :]).sum() + 0.5 * (a[:, None] == b[None, :]).sum()
    assert out["effect_size"]["value"] == pytest.approx(2 * wins / (len(a) * len(b)) - 1)
    assert out["effect_size"]["value"] < 0  # setosa is smaller


def test_paired_tests_use_the_same_rows(iris: pd.DataFrame) -> None:
    frame = iris.copy()
    frame.loc[0, "petal_length"] = np.nan
    t = run_test(frame, HypothesisSpec("t_paired", column="sepal_length", column_b="petal_length"))
    w = run_test(frame, HypothesisSpec("wilcoxon", column="sepal_length", column_b="petal_length"))
    assert t["n"] == w["n"] == 149
    assert t["df"] == 148


def test_one_sample_t_and_ci_cover_the_mean() -> None:
    frame = pd.DataFrame({"x": [5.1, 4.9, 5.0, 5.2, 5.3, 4.8]})
    out = run_test(frame, HypothesisSpec("t_one_sample", column="x", mu0=5.0))
    assert out["statistic"] == pytest.approx(0.6546537, rel=1e-6)  # t = (5.05 - 5) / (0.1870829 / sqrt(6))
    assert out["ci"]["low"] < 5.05 < out["ci"]["high"]


def test_chi_square_independence_and_cramers_v() -> None:
    frame = pd.DataFrame({"a": ["x"] * 30 + ["y"] * 30, "b": ["p"] * 25 + ["q"] * 5 + ["p"] * 10 + ["q"] * 20})
    out = run_test(frame, HypothesisSpec("chi_square_independence", column="a", column_b="b", correction=False))
    # 2x2 table [[25, 5], [10, 20]]: chi2 = 60 * (25*20 - 5*10)^2 / (30*30*35*25)
    assert out["statistic"] == pytest.approx(60 * (25 * 20 - 5 * 10) ** 2 / (30 * 30 * 35 * 25))
    assert out["effect_size"]["value"] == pytest.approx(np.sqrt(out["statistic"] / 60))
    assert out["effect_size"]["ci_low"] < out["effect_size"]["value"] < out["effect_size"]["ci_high"]


def test_goodness_of_fit_with_expected_proportions() -> None:
    frame = pd.DataFrame({"die": list("1" * 10 + "2" * 10 + "3" * 10 + "4" * 10 + "5" * 10 + "6" * 30)})
    fair = run_test(frame, HypothesisSpec("chi_square_goodness_of_fit", column="die"))
    loaded = run_test(
        frame,
        HypothesisSpec(
            "chi_square_goodness_of_fit", column="die", expected={"1": 1, "2": 1, "3": 1, "4": 1, "5": 1, "6": 3}
        ),
    )
    assert fair["p_value"] < 0.001 and loaded["p_value"] == pytest.approx(1.0)


def test_proportions_z_two_groups_and_one_sample() -> None:
    frame = pd.DataFrame({"g": ["a"] * 100 + ["b"] * 100, "hit": [1] * 30 + [0] * 70 + [1] * 50 + [0] * 50})
    two = run_test(frame, HypothesisSpec("proportions_z", column="hit", group_column="g"))
    pooled = 0.4
    z = (0.3 - 0.5) / np.sqrt(pooled * (1 - pooled) * (2 / 100))
    assert two["statistic"] == pytest.approx(z)
    assert two["estimate"] == pytest.approx(-0.2)
    one = run_test(frame, HypothesisSpec("proportions_z", column="hit", p0=0.4))
    assert one["estimate"] == pytest.approx(0.4) and one["p_value"] == pytest.approx(1.0)


def test_shapiro_levene_ks_kruskal_run(iris: pd.DataFrame) -> None:
    normal = pd.DataFrame(
        {"x": np.random.default_rng(1).normal(size=300), "y": np.random.default_rng(2).exponential(size=300)}
    )
    assert run_test(normal, HypothesisSpec("shapiro", column="x"))["p_value"] > 0.01
    assert run_test(normal, HypothesisSpec("shapiro", column="y"))["p_value"] < 1e-6
    assert run_test(normal, HypothesisSpec("ks_2samp", column="x", column_b="y"))["p_value"] < 1e-6
    assert run_test(iris, HypothesisSpec("levene", column="petal_length", group_column="species"))["p_value"] < 1e-3
    assert run_test(iris, HypothesisSpec("kruskal", column="petal_length", group_column="species"))["df"] == 2


def test_every_listed_test_has_an_implementation() -> None:
    with pytest.raises(InvalidArgumentError, match="Unknown test"):
        run_test(pd.DataFrame({"x": [1]}), HypothesisSpec("z_magic"))
    assert len(TESTS) == 13


def test_missing_arguments_say_what_the_test_needs(iris: pd.DataFrame) -> None:
    with pytest.raises(InvalidArgumentError, match="needs `group_column`"):
        run_test(iris, HypothesisSpec("t_two_sample", column="sepal_length"))
    with pytest.raises(InvalidArgumentError, match="two groups but 'species' has 3"):
        run_test(iris, HypothesisSpec("t_two_sample", column="sepal_length", group_column="species"))
    with pytest.raises(ColumnError, match="not numeric"):
        run_test(iris, HypothesisSpec("t_one_sample", column="species"))


async def test_unknown_group_is_a_tool_error_listing_groups(client: Client, iris: pd.DataFrame) -> None:
    ds = await _load(client, iris, "iris")
    text = await call_error(
        client,
        "test_hypothesis",
        dataset_id=ds,
        test="t_two_sample",
        column="sepal_length",
        group_column="species",
        groups=["setosa", "virginca"],
    )
    assert "virginca" in text and "virginica" in text
