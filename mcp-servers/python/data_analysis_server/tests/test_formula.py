"""Validated formulas: same fit as statsmodels' formula API, and nothing outside the allow-list runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from mcp import Client

from conftest import call, call_error
from data_analysis_server.errors import ColumnError, InvalidArgumentError
from data_analysis_server.formula import parse
from data_analysis_server.regression import regress_formula

pytestmark = pytest.mark.anyio

RNG = np.random.default_rng(0)
N = 300
FRAME = pd.DataFrame(
    {
        "x1": RNG.normal(size=N),
        "x2": RNG.normal(size=N),
        "x3": RNG.exponential(size=N) + 0.1,
        "g": RNG.choice(["a", "b", "c"], N),
    }
)
FRAME["y"] = (
    1
    + FRAME.x1
    - 2 * FRAME.x2
    + 0.5 * FRAME.x1 * FRAME.x2
    + np.log(FRAME.x3)
    + (FRAME.g == "b") * 1.5
    + RNG.normal(size=N)
)


def test_formula_fit_matches_statsmodels_formula_api() -> None:
    ours = regress_formula(FRAME, "y ~ x1*x2 + log(x3) + C(g)")
    ref = smf.ols("y ~ x1*x2 + np.log(x3) + C(g)", FRAME).fit()
    mapping = {
        "const": "Intercept",
        "x1": "x1",
        "x2": "x2",
        "x1:x2": "x1:x2",
        "log(x3)": "np.log(x3)",
        "C(g)=b": "C(g)[T.b]",
        "C(g)=c": "C(g)[T.c]",
    }
    table = {c["term"]: c for c in ours["coefficients"]}
    assert set(table) == set(mapping)
    for ours_name, ref_name in mapping.items():
        assert table[ours_name]["estimate"] == pytest.approx(ref.params[ref_name], rel=1e-9)
        assert table[ours_name]["std_error"] == pytest.approx(ref.bse[ref_name], rel=1e-9)
    assert ours["r_squared"] == pytest.approx(ref.rsquared, rel=1e-12)


def test_intercept_removal_and_backticks() -> None:
    frame = FRAME.rename(columns={"x1": "first x"})
    out = regress_formula(frame, "y ~ `first x` - 1")
    assert [c["term"] for c in out["coefficients"]] == ["first x"]
    assert not parse("y ~ 0 + x1", list(FRAME.columns)).intercept


@pytest.mark.parametrize(
    "text",
    [
        "y ~ __import__('os').system('id')",
        "y ~ np.log(x1)",
        "y ~ x1 + eval(x2)",
        "y ~ x1 ~ x2",
        "y ~ I(__import__('os').getcwd())",
        "y ~ x1.__class__",
        "y ~ (lambda: 1)()",
        "y ~ I(x1[0])",
        "y ~ C(g, Treatment('a'))",
        "y ~ poly(x1, 100)",
        "y ~ poly(x1, k)",
        "y ~ x1**2",
        "y ~ x1 | x2",
        "y + x1 ~ x2",
        "y ~ .",
        "y ~ x1 + 2",
        "~ x1",
        "C(g) ~ x1",
    ],
)
def test_constructs_outside_the_allow_list_are_refused(text: str) -> None:
    with pytest.raises((InvalidArgumentError, ColumnError)):
        regress_formula(FRAME, text)


def test_unknown_column_in_formula_lists_columns() -> None:
    with pytest.raises(ColumnError, match="'x1', 'x2'"):
        parse("y ~ os.system", list(FRAME.columns))


async def test_regress_tool_accepts_formula_or_columns_not_both(client: Client) -> None:
    ds = (await call(client, "load_dataset", data=FRAME.to_csv(index=False), name="f"))["dataset_id"]
    out = await call(client, "regress", dataset_id=ds, formula="y ~ x1 + C(g)")
    assert out["formula"] == "y ~ x1 + C(g)" and out["y"] == "y"
    assert "not both" in await call_error(client, "regress", dataset_id=ds, formula="y ~ x1", y="y", x=["x1"])
    assert "formula" in await call_error(client, "regress", dataset_id=ds)
