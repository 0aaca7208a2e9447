"""Transform operations and the AST allow-list for derived columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mcp import Client

from conftest import call, call_error
from data_analysis_server.errors import ColumnError, InvalidArgumentError
from data_analysis_server.expression import evaluate
from data_analysis_server.transform import apply_operations

pytestmark = pytest.mark.anyio

FRAME = pd.DataFrame({"w": [70.0, 80.0, np.nan, 80.0], "h": [175, 180, 165, 180], "kind": ["a", "b", "a", "b"]})


def test_derived_column_arithmetic_and_functions() -> None:
    out = apply_operations(FRAME, [{"op": "derive", "new_column": "bmi", "expression": "w / (h / 100) ** 2"}])
    assert out["bmi"].iloc[0] == pytest.approx(70 / 1.75**2)
    logged = evaluate('log(col("h")) + where(w > 75, 1, 0)', FRAME)
    assert logged.iloc[1] == pytest.approx(np.log(180) + 1)


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('touch /tmp/pwned')",
        "w.__class__.__mro__",
        "[c for c in w]",
        "(lambda: 1)()",
        "w[0]",
        "open('/etc/passwd')",
        "getattr(w, 'values')",
        "log(w, base=2)",
        "'text' * 3",
        "9 ** 9 ** 9 ** 9",
        "x := 1",
        "{1: 2}",
    ],
)
def test_expressions_outside_the_allow_list_are_refused(expression: str) -> None:
    with pytest.raises(InvalidArgumentError):
        evaluate(expression, FRAME)


def test_expression_unknown_column_lists_columns() -> None:
    with pytest.raises(ColumnError, match="'w', 'h', 'kind'"):
        evaluate("weight * 2", FRAME)


def test_pipeline_of_operations_never_mutates_the_source() -> None:
    before = FRAME.copy()
    out = apply_operations(
        FRAME,
        [
            {"op": "fill_na", "columns": ["w"], "method": "median"},
            {"op": "dedupe"},
            {"op": "rename", "mapping": {"h": "height"}},
            {"op": "cast", "column": "height", "to": "float"},
            {"op": "standardize", "columns": ["height"]},
            {"op": "one_hot", "columns": ["kind"]},
            {"op": "bin", "column": "w", "bins": 2, "new_column": "w_bin"},
        ],
    )
    pd.testing.assert_frame_equal(FRAME, before)
    assert len(out) == 3  # the duplicated (80, 180, b) row is gone
    assert out["w"].isna().sum() == 0 and out["w"].iloc[2] == 80.0
    assert out["height"].mean() == pytest.approx(0.0) and out["height"].std() == pytest.approx(1.0)
    assert {"kind_a", "kind_b", "w_bin"} <= set(out.columns)


def test_filter_drop_select_and_drop_na() -> None:
    out = apply_operations(
        FRAME, [{"op": "drop_na"}, {"op": "filter", "filters": [{"column": "h", "op": ">", "value": 176}]}]
    )
    assert out["w"].tolist() == [80.0, 80.0]
    assert list(apply_operations(FRAME, [{"op": "select_columns", "columns": ["kind"]}]).columns) == ["kind"]
    assert "kind" not in apply_operations(FRAME, [{"op": "drop_columns", "columns": ["kind"]}]).columns


def test_errors_name_the_failing_step() -> None:
    with pytest.raises(ColumnError, match=r"Step 2 \(cast\)"):
        apply_operations(FRAME, [{"op": "dedupe"}, {"op": "cast", "column": "nope", "to": "int"}])
    with pytest.raises(InvalidArgumentError, match="unknown op"):
        apply_operations(FRAME, [{"op": "pivot_longer"}])


async def test_transform_tool_creates_a_new_dataset(client: Client) -> None:
    src = await call(client, "load_dataset", data=FRAME.to_csv(index=False), name="people")
    new = await call(
        client,
        "transform",
        dataset_id=src["dataset_id"],
        new_name="people_bmi",
        operations=[{"op": "derive", "new_column": "bmi", "expression": "w / (h/100)**2"}, {"op": "drop_na"}],
    )
    assert new["dataset_id"] != src["dataset_id"] and new["rows"] == 3 and new["table_name"] == "people_bmi"
    assert "bmi" not in {
        c["name"] for c in (await call(client, "describe_dataset", dataset_id=src["dataset_id"]))["schema"]
    }
    text = await call_error(
        client,
        "transform",
        dataset_id=src["dataset_id"],
        operations=[{"op": "derive", "new_column": "x", "expression": "__import__('os')"}],
    )
    assert "not allowed" in text
