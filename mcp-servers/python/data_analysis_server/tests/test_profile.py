"""Profiles and correlations: Anscombe's quartet through MCP, outliers, missing data, hard-precision data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mcp import Client
from vega_datasets import local_data

from conftest import call
from data_analysis_server.profile import correlate, profile

pytestmark = pytest.mark.anyio


async def test_anscombe_quartet_has_identical_summaries(client: Client) -> None:
    quartet = local_data.anscombe()
    results = []
    for series in ["I", "II", "III", "IV"]:
        part = quartet[quartet.Series == series][["X", "Y"]]
        ds = (await call(client, "load_dataset", data=part.to_csv(index=False), name=f"anscombe_{series}"))[
            "dataset_id"
        ]
        cols = {c["name"]: c for c in (await call(client, "profile", dataset_id=ds))["columns"]}
        r = (await call(client, "correlate", dataset_id=ds))["r"]["X"]["Y"]
        fit = await call(client, "regress", dataset_id=ds, y="Y", x=["X"])
        results.append((cols, r, fit))
    for cols, r, fit in results:
        assert cols["X"]["mean"] == pytest.approx(9.0)
        assert cols["X"]["sd"] ** 2 == pytest.approx(11.0)
        assert cols["Y"]["mean"] == pytest.approx(7.50, abs=0.005)
        assert cols["Y"]["sd"] ** 2 == pytest.approx(4.125, abs=0.01)  # vega copy: 4.123-4.133
        assert r == pytest.approx(0.816, abs=0.001)
        b0, b1 = (c["estimate"] for c in fit["coefficients"])
        assert b0 == pytest.approx(3.00, abs=0.005) and b1 == pytest.approx(0.500, abs=0.001)
        assert fit["r_squared"] == pytest.approx(0.67, abs=0.005)
    # ...while the distributions differ: the skew of Y tells series II and III apart from I.
    skews = [cols["Y"]["skew"] for cols, _, _ in results]
    assert max(skews) - min(skews) > 1.0


def test_outliers_by_iqr_and_robust_z() -> None:
    frame = pd.DataFrame({"x": [10.0, 11, 12, 11, 10, 12, 11, 100]})
    col = profile(frame)["columns"][0]
    assert col["outliers"]["iqr_count"] == 1
    assert col["outliers"]["robust_z_count"] == 1
    assert col["median"] == 11 and col["max"] == 100


def test_missing_distinct_and_top_values() -> None:
    frame = pd.DataFrame({"c": ["a", "b", "a", None, "a"], "n": [1.0, np.nan, 1.0, 2.0, 3.0]})
    cols = {c["name"]: c for c in profile(frame)["columns"]}
    assert cols["c"]["missing"] == 1 and cols["c"]["distinct"] == 2
    assert cols["c"]["top_values"][0] == {"value": "a", "count": 3}
    assert cols["n"]["missing"] == 1 and cols["n"]["distinct"] == 3
    assert cols["n"]["top_values"][0] == {"value": 1.0, "count": 2}


def test_moments_survive_many_constant_leading_digits() -> None:
    # NIST NumAcc4-style data: 1e9 + {0.2, 0.1, 0.3, ...}; certified sd 0.1 — one-pass formulas give 0 or NaN.
    x = 1_000_000_000.2 + np.tile([0.0, -0.1, 0.1], 334)[:1001]
    col = profile(pd.DataFrame({"x": x}))["columns"][0]
    assert col["sd"] == pytest.approx(np.std(x, ddof=1), rel=1e-9)
    assert col["sd"] == pytest.approx(0.0816, rel=0.01)


def test_quantiles_match_numpy() -> None:
    x = np.random.default_rng(3).normal(size=1001)
    col = profile(pd.DataFrame({"x": x}))["columns"][0]
    q = np.quantile(x, [0.05, 0.25, 0.5, 0.75, 0.95])
    assert [col["p05"], col["q1"], col["median"], col["q3"], col["p95"]] == pytest.approx(q.tolist())


def test_correlation_p_values_and_pairwise_n() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    frame = pd.DataFrame({"x": x, "y": x + rng.normal(scale=0.5, size=200), "z": rng.normal(size=200)})
    frame.loc[:9, "z"] = np.nan
    for method in ("pearson", "spearman", "kendall"):
        out = correlate(frame, method=method)
        assert out["r"]["x"]["y"] > 0.6 and out["p_value"]["x"]["y"] < 1e-10
        assert out["n"]["x"]["z"] == 190 and out["n"]["x"]["y"] == 200
        assert out["strongest_pairs"][0]["a"] == "x" and out["strongest_pairs"][0]["b"] == "y"


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_fast_matrix_path_matches_scipy_pairwise(method: str) -> None:
    from scipy import stats

    rng = np.random.default_rng(5)
    x = rng.normal(size=500)
    frame = pd.DataFrame({"x": x, "y": 0.1 * x + rng.normal(size=500), "z": rng.exponential(size=500)})
    out = correlate(frame, method=method)  # no missing values: the one-pass matrix path
    ref = stats.pearsonr if method == "pearson" else stats.spearmanr
    for a, b in (("x", "y"), ("x", "z"), ("y", "z")):
        res = ref(frame[a], frame[b])
        assert out["r"][a][b] == pytest.approx(res.statistic, rel=1e-10)
        assert out["p_value"][a][b] == pytest.approx(res.pvalue, rel=1e-6)
