"""Structured queries and the hardened DuckDB SQL tool."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mcp import Client

from conftest import call, call_error
from data_analysis_server.errors import ColumnError, InvalidArgumentError, LimitExceededError
from data_analysis_server.query import run_query
from data_analysis_server.sql import run_sql

pytestmark = pytest.mark.anyio

FRAME = pd.DataFrame(
    {
        "city": ["Oslo", "Rome", "Oslo", "Lima", "Rome", None],
        "temp": [3.0, 18.5, -1.0, 22.0, 21.0, 10.0],
        "day": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02", "2024-01-03", "2024-01-03"]),
    }
)


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"column": "temp", "op": ">", "value": 15}, 3),
        ({"column": "temp", "op": "between", "value": [0, 20]}, 3),
        ({"column": "city", "op": "in", "value": ["Oslo", "Lima"]}, 3),
        ({"column": "city", "op": "not_in", "value": ["Oslo"]}, 3),
        ({"column": "city", "op": "contains", "value": "o"}, 4),
        ({"column": "city", "op": "startswith", "value": "R"}, 2),
        ({"column": "city", "op": "is_null"}, 1),
        ({"column": "day", "op": ">=", "value": "2024-01-02"}, 4),
        ({"column": "city", "op": "==", "value": "__import__('os').system('id')"}, 0),
    ],
)
def test_filter_operators(flt: dict, expected: int) -> None:
    assert len(run_query(FRAME, filters=[flt])) == expected


def test_group_by_with_named_aggregations_and_sort() -> None:
    out = run_query(
        FRAME,
        filters=[{"column": "city", "op": "not_null"}],
        group_by=["city"],
        aggregations=[{"column": "temp", "func": "mean", "as": "avg"}, {"column": "temp", "func": "count"}],
        sort=[{"column": "avg", "descending": True}],
    )
    assert out.to_dict("list") == {"city": ["Lima", "Rome", "Oslo"], "avg": [22.0, 19.75, 1.0], "temp_count": [1, 2, 2]}


def test_pivot() -> None:
    out = run_query(FRAME.dropna(), pivot={"index": "city", "columns": "day", "values": "temp", "func": "max"})
    assert list(out["city"]) == ["Lima", "Oslo", "Rome"] and out.shape == (3, 4)


def test_query_errors_name_the_fix() -> None:
    with pytest.raises(ColumnError, match="Available columns: 'city', 'temp', 'day'"):
        run_query(FRAME, filters=[{"column": "tmp", "op": ">", "value": 1}])
    with pytest.raises(InvalidArgumentError, match="one of"):
        run_query(FRAME, filters=[{"column": "temp", "op": "~=", "value": 1}])
    with pytest.raises(InvalidArgumentError, match="Cannot compare"):
        run_query(FRAME, filters=[{"column": "day", "op": ">", "value": 5}])


async def test_query_tool_caps_rows_and_reports_truncation(client: Client) -> None:
    frame = pd.DataFrame({"i": np.arange(500)})
    ds = (await call(client, "load_dataset", data=frame.to_csv(index=False)))["dataset_id"]
    out = await call(client, "query", dataset_id=ds, filters=[{"column": "i", "op": ">=", "value": 100}], limit=10)
    assert (out["total_rows"], out["returned_rows"], out["truncated"]) == (400, 10, True)
    default = await call(client, "query", dataset_id=ds)
    assert (default["total_rows"], default["returned_rows"], default["truncated"]) == (500, 100, True)


def test_sql_counts_total_rows_beyond_the_limit() -> None:
    rows, _, total = run_sql({"t": pd.DataFrame({"x": np.arange(250_000)})}, "SELECT x FROM t WHERE x % 2 = 0", 5, 10)
    assert total == 125_000 and [r["x"] for r in rows] == [0, 2, 4, 6, 8]


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "disabled by configuration"),
        ("SELECT * FROM read_parquet('https://example.com/x.parquet')", "disabled by configuration"),
        ("SELECT * FROM glob('/*')", "disabled by configuration"),
        ("COPY t TO '/tmp/leak.csv'", "Only read-only SELECT"),
        ("ATTACH '/tmp/x.duckdb' AS x", "Only read-only SELECT"),
        ("SET enable_external_access = true", "Only read-only SELECT"),
        ("SELECT 1; DROP TABLE t", "exactly one"),
        ("INSTALL httpfs", "Only read-only SELECT"),
        ("LOAD httpfs", "Only read-only SELECT"),
        ("CREATE TABLE x AS SELECT 1", "Only read-only SELECT"),
        ("PRAGMA database_list", "Only read-only SELECT"),
        ("SELECT * FROM frame_in_python_scope", "does not exist"),
    ],
)
def test_sql_cannot_touch_files_settings_or_python_objects(statement: str, reason: str) -> None:
    frame_in_python_scope = pd.DataFrame({"secret": [1]})  # noqa: F841 - DuckDB replacement scans would find it
    with pytest.raises(InvalidArgumentError, match=reason):
        run_sql({"t": pd.DataFrame({"x": [1]})}, statement, 10, 10)


def test_sql_configuration_is_locked_even_via_select_functions() -> None:
    with pytest.raises(InvalidArgumentError):
        run_sql({}, "SELECT set_config('enable_external_access', 'true')", 10, 10)


def test_sql_time_limit_interrupts_long_queries() -> None:
    with pytest.raises(LimitExceededError, match="time limit"):
        run_sql({}, "SELECT count(*) FROM range(1000000000000) a", 10, 0.5)


async def test_sql_tool_sees_datasets_by_table_name(client: Client) -> None:
    ds = await call(client, "load_dataset", data=FRAME.to_csv(index=False), name="weather")
    out = await call(
        client,
        "sql",
        query=f"SELECT city, max(temp) AS hi FROM {ds['table_name']} "
        "WHERE city IS NOT NULL GROUP BY city ORDER BY hi DESC",
    )
    assert out["rows"][0] == {"city": "Lima", "hi": 22.0} and out["total_rows"] == 3 and not out["truncated"]
    text = await call_error(client, "sql", query="SELECT * FROM nowhere")
    assert "weather" in text
