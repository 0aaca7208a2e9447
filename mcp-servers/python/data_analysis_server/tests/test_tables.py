"""Results sized for an LLM: row and character caps, JSON-safe values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mcp import Client

from conftest import call
from data_analysis_server.tables import cap_table, jsonable

pytestmark = pytest.mark.anyio


def test_jsonable_maps_nan_inf_numpy_and_timestamps() -> None:
    value = {
        "a": np.float64("nan"),
        "b": np.inf,
        "c": np.int64(3),
        "d": pd.Timestamp("2024-05-01"),
        "e": pd.NA,
        "f": [np.bool_(True)],
    }
    assert jsonable(value) == {"a": None, "b": None, "c": 3, "d": "2024-05-01T00:00:00", "e": None, "f": [True]}
    json.dumps(jsonable(value), allow_nan=False)  # strict JSON: would raise on NaN


def test_row_cap_and_truncation_flags() -> None:
    out = cap_table(pd.DataFrame({"x": range(10)}), max_rows=3, max_chars=10_000)
    assert (out["total_rows"], out["returned_rows"], out["truncated"]) == (10, 3, True)
    full = cap_table(pd.DataFrame({"x": range(3)}), max_rows=3, max_chars=10_000)
    assert full["truncated"] is False


def test_character_cap_trims_wide_rows() -> None:
    wide = pd.DataFrame({"text": ["x" * 1000] * 100})
    out = cap_table(wide, max_rows=100, max_chars=5_000)
    assert out["returned_rows"] == 4 and out["truncated"]
    assert len(json.dumps(out["rows"])) <= 5_000


async def test_sql_results_respect_the_character_budget(client: Client) -> None:
    frame = pd.DataFrame({"id": range(300), "text": ["lorem ipsum " * 50] * 300})
    ds = await call(client, "load_dataset", data=frame.to_csv(index=False), name="wide")
    out = await call(client, "sql", query="SELECT * FROM wide", limit=1000)
    assert out["total_rows"] == 300 and out["truncated"]
    assert len(json.dumps(out["rows"])) <= 40_000
    assert ds["table_name"] == "wide"
