"""Issue 13 for this server: strict arguments per tool, no working-directory root, error messages that list only
the caller's own datasets, and the one `warnings` convention on every tool — all through the MCP face."""

from __future__ import annotations

import os
import sys
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from conftest import call, call_error

pytestmark = pytest.mark.anyio

CSV = "a,b,g\n1,2.5,x\n2,3.5,y\n3,1.5,x\n4,7.5,y\n5,2.0,x\n"
# tool -> (arguments with one misspelled key, the misspelling, the suggestion); "DS" is replaced by a dataset id
MISSPELLED: dict[str, tuple[dict[str, Any], str, str | None]] = {
    "load_dataset": ({"data": CSV, "fromat": "csv"}, "fromat", "format"),
    "list_datasets": ({"verbose": True}, "verbose", None),
    "describe_dataset": ({"dataset_id": "DS", "dataset_idd": "x"}, "dataset_idd", "dataset_id"),
    "drop_dataset": ({"dataset_id": "DS", "dataset": "x"}, "dataset", "dataset_id"),
    "profile": ({"dataset_id": "DS", "column": ["a"]}, "column", "columns"),
    "correlate": ({"dataset_id": "DS", "methd": "spearman"}, "methd", "method"),
    "test_hypothesis": (
        {"dataset_id": "DS", "test": "t_two_sample", "column": "b", "group_column": "g", "equal_variance": True},
        "equal_variance",
        "equal_var",
    ),
    "regress": ({"dataset_id": "DS", "y": "b", "x": ["a"], "robst": True}, "robst", "robust"),
    "time_series": (
        {"dataset_id": "DS", "time_column": "a", "value_column": "b", "operation": "rolling", "windw": 2},
        "windw",
        "window",
    ),
    "query": (
        {"dataset_id": "DS", "filters": [{"colum": "a", "op": ">", "value": 1}]},
        "filters[0].colum",
        "column",
    ),
    "sql": ({"query": "SELECT 1", "limt": 5}, "limt", "limit"),
    "transform": (
        {"dataset_id": "DS", "operations": [{"op": "drop_na", "colums": ["a"]}]},
        "operations[0].colums",
        "columns",
    ),
    "plot": ({"dataset_id": "DS", "kind": "histogram", "x": "a", "bin": 10}, "bin", "bins"),
}


async def test_every_tool_schema_closes_its_objects(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == set(MISSPELLED)
    for tool in tools.values():
        assert tool.input_schema["additionalProperties"] is False, tool.name
        for name, sub in tool.input_schema.get("$defs", {}).items():
            if "properties" in sub:
                assert sub["additionalProperties"] is False, (tool.name, name)


@pytest.mark.parametrize("tool", sorted(MISSPELLED))
async def test_an_unknown_argument_is_an_error_naming_the_closest_valid_one(client: Client, tool: str) -> None:
    ds = (await call(client, "load_dataset", data=CSV, name="strict"))["dataset_id"]
    arguments, wrong, suggestion = MISSPELLED[tool]
    arguments = {k: ds if v == "DS" else v for k, v in arguments.items()}
    text = await call_error(client, tool, **arguments)
    assert f"unknown argument `{wrong}`" in text.lower()
    if suggestion:
        assert f"did you mean `{suggestion}`" in text
    # nothing ran: the dataset is still there and nothing new was registered
    assert [d["dataset_id"] for d in (await call(client, "list_datasets"))["datasets"]] == [ds]


async def test_alternative_misspelled_no_longer_returns_the_two_sided_p(client: Client) -> None:
    ds = (await call(client, "load_dataset", data=CSV))["dataset_id"]
    text = await call_error(
        client, "test_hypothesis", dataset_id=ds, test="t_one_sample", column="a", alternativ="greater"
    )
    assert "did you mean `alternative`" in text


async def test_every_tool_result_carries_warnings_and_text_prefix(client: Client) -> None:
    ds = (await call(client, "load_dataset", data=CSV, name="w"))["dataset_id"]
    calls = {
        "list_datasets": {},
        "describe_dataset": {"dataset_id": ds},
        "profile": {"dataset_id": ds},
        "correlate": {"dataset_id": ds, "columns": ["a", "b"]},
        "test_hypothesis": {"dataset_id": ds, "test": "t_one_sample", "column": "b"},
        "regress": {"dataset_id": ds, "y": "b", "x": ["a"]},
        "time_series": {"dataset_id": ds, "time_column": "a", "value_column": "b", "operation": "rolling", "window": 2},
        "query": {"dataset_id": ds},
        "sql": {"query": "SELECT * FROM w"},
        "transform": {"dataset_id": ds, "operations": [{"op": "drop_na"}]},
        "plot": {"dataset_id": ds, "kind": "histogram", "x": "a"},
    }
    for tool, arguments in calls.items():
        assert (await call(client, tool, **arguments))["warnings"] == [], tool
    result = await client.call_tool("regress", {"dataset_id": ds, "y": "b", "x": ["a", "g"], "drop_collinear": False})
    assert not result.is_error
    dropped = await client.call_tool(
        "load_dataset",
        {"data": "t,v\n2024-01-01,1\nnope,2\n" + "".join(f"2024-01-{d:02d},{d}\n" for d in range(2, 40))},
    )
    assert dropped.structured_content["warnings"] == []  # loading never drops; time_series reports it
    assert (await call(client, "drop_dataset", dataset_id=ds))["warnings"] == []


async def test_error_messages_list_only_the_callers_own_datasets(client: Client) -> None:
    secret = (await call(client, "load_dataset", data=CSV, name="ds_private"))["dataset_id"]
    mine = (await call(client, "load_dataset", data=CSV, name="mine"))["dataset_id"]
    await call(client, "drop_dataset", dataset_id=secret)
    visible = {d["dataset_id"] for d in (await call(client, "list_datasets"))["datasets"]}
    assert visible == {mine}
    unknown = await call_error(client, "profile", dataset_id="ds99_nope")
    bad_sql = await call_error(client, "sql", query="SELECT * FROM nope")
    for text in (unknown, bad_sql):
        assert "private" not in text and "mine" in text


@pytest.mark.e2e
async def test_started_from_root_without_roots_no_file_of_the_machine_is_readable() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATA_ANALYSIS_")}
    params = StdioServerParameters(command=sys.executable, args=["-m", "data_analysis_server"], env=env, cwd="/")
    with anyio.fail_after(60):
        async with Client(params) as client:
            for source in ("/etc/passwd", "etc/passwd", "../../etc/hostname"):
                result = await client.call_tool("load_dataset", {"source": source, "format": "csv"})
                assert result.is_error, source
                assert "outside the allowed roots" in result.content[0].text or "not found" in result.content[0].text
                assert "root:" not in result.content[0].text
            sample = await client.call_tool("load_dataset", {"source": "sales.csv"})
            assert not sample.is_error  # the package's sample data is the only default root
