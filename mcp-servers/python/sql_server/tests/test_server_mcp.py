"""The MCP face: tool schemas, strict arguments, the warnings convention, resources, prompt, both eras."""

from __future__ import annotations

import json

import pytest
from mcp import Client

from conftest import call, call_error, connected
from sql_server import server
from sql_server.config import Settings

pytestmark = pytest.mark.anyio

TOOLS = {"list_schemas", "list_tables", "describe_table", "sample_rows", "query", "explain", "execute_write"}
READ_ONLY = TOOLS - {"execute_write"}


@pytest.mark.parametrize("era", ["legacy", "2026-07-28"])
async def test_every_tool_is_typed_strict_and_annotated_in_both_eras(settings: Settings, era: str) -> None:
    async with connected(settings, mode=era) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.input_schema["type"] == "object" and tool.input_schema["additionalProperties"] is False, tool.name
        assert tool.output_schema is not None and "warnings" in tool.output_schema["properties"], tool.name
        assert "warnings" in tool.output_schema.get("required", []), tool.name
        assert tool.annotations is not None and tool.annotations.read_only_hint is (tool.name in READ_ONLY)
        assert not {"plan", "confirmation", "ctx"} & set(tool.input_schema.get("properties", {}))
    capped = {"total", "returned", "truncated"}
    for name in ("list_schemas", "list_tables", "describe_table", "sample_rows", "query"):
        assert capped <= set(tools[name].output_schema["properties"]), name  # type: ignore[index]


@pytest.mark.parametrize("era", ["legacy", "2026-07-28"])
async def test_an_unknown_argument_is_a_tool_error_naming_it_and_the_closest_valid_name(
    settings: Settings, era: str
) -> None:
    async with connected(settings, mode=era) as client:
        text = await call_error(client, "query", sql="SELECT 1", limt=5)
        assert (
            text
            == "unknown argument 'limt' for query; did you mean 'limit'? (query takes: sql, params, limit); nothing was run"
        )
        text = await call_error(client, "describe_table", tabel="orders")
        assert "unknown argument 'tabel'" in text and "did you mean 'table'?" in text
        assert "list_schemas takes: no arguments" in await call_error(client, "list_schemas", verbose=True)
        assert "'plan'" in await call_error(client, "execute_write", sql="DELETE FROM orders WHERE id = 1", plan="x")


async def test_wrongly_typed_arguments_are_tool_errors(client: Client) -> None:
    assert "limit" in await call_error(client, "query", sql="SELECT 1", limit=0)
    assert "sql" in await call_error(client, "query")


async def test_text_content_starts_with_one_warning_line_per_warning_then_the_summary_and_json(client: Client) -> None:
    result = await client.call_tool("query", {"sql": "SELECT id FROM orders ORDER BY id", "limit": 2})
    text = result.content[0].text  # type: ignore[union-attr]
    lines = text.splitlines()
    warnings = result.structured_content["warnings"]  # type: ignore[index]
    assert [line for line in lines if line.startswith("Warning: ")] == [f"Warning: {w['message']}" for w in warnings]
    assert lines[: len(warnings)] == [f"Warning: {w['message']}" for w in warnings]
    assert json.loads(lines[-1]) == {"columns": ["id"], "rows": [[1], [2]]}
    plain = await client.call_tool("query", {"sql": "SELECT 1 AS one"})
    assert plain.structured_content["warnings"] == [] and not plain.content[0].text.startswith("Warning")  # type: ignore[index, union-attr]


async def test_every_tool_result_carries_warnings(client: Client) -> None:
    for tool, args in [("list_schemas", {}), ("list_tables", {}), ("describe_table", {"table": "orders"}),
                       ("sample_rows", {"table": "orders", "n": 1}), ("query", {"sql": "SELECT 1"}),
                       ("explain", {"sql": "SELECT 1"})]:  # fmt: skip
        assert (await call(client, tool, **args))["warnings"] == [], tool


async def test_resources_expose_the_catalog_and_each_table(client: Client, backend_name: str) -> None:
    listed = {str(r.uri) for r in (await client.list_resources()).resources}
    assert "sql://schema" in listed
    templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
    assert "sql://table/{name}" in templates
    catalog = json.loads((await client.read_resource("sql://schema")).contents[0].text)  # type: ignore[union-attr]
    assert catalog["backend"] == backend_name and catalog["truncated"] is False
    assert {t["name"] for t in catalog["tables"]} >= {"orders", "customers", "products", "order_items"}
    orders = next(t for t in catalog["tables"] if t["name"] == "orders")
    assert [c["name"] for c in orders["columns"]] == ["id", "customer_id", "ordered_at", "status", "total"]
    table = json.loads((await client.read_resource("sql://table/products")).contents[0].text)  # type: ignore[union-attr]
    assert table["name"] == "products" and table["primary_key"] == ["id"]


async def test_an_unknown_table_resource_is_a_clear_error(client: Client) -> None:
    with pytest.raises(Exception, match="no table or view named 'nope'"):
        await client.read_resource("sql://table/nope")


async def test_the_prompt_teaches_inspection_before_querying(client: Client) -> None:
    prompts = {p.name for p in (await client.list_prompts()).prompts}
    assert "explore_database" in prompts
    text = (await client.get_prompt("explore_database", {"goal": "find top customers"})).messages[0].content.text  # type: ignore[union-attr]
    assert "find top customers" in text
    assert text.index("list_tables") < text.index("describe_table") < text.index("sample_rows") < text.index("query")
    assert "params" in text and "truncated" in text


def test_the_server_module_never_prints() -> None:
    import inspect

    assert "print(" not in inspect.getsource(server)
