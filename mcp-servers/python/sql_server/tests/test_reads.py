"""The read tools on both backends: results, typing, caps and truncation, params, plans and the catalog."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from mcp import Client

from conftest import TABLES, call, call_error, connected, pg_checksum, sqlite_checksum
from pg_cluster import Cluster
from sql_server.backends.postgres import DIALECT as POSTGRES
from sql_server.config import Settings
from sql_server.errors import RejectedStatement, SqlServerError
from sql_server.validation import validate_read

pytestmark = pytest.mark.anyio


def ph(backend_name: str, n: int = 1) -> str:
    return f"${n}" if backend_name == "postgresql" else "?"


async def test_both_backends_hold_the_same_sample(client: Client) -> None:
    counts = await call(client, "query", sql="SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM products), "
                        "(SELECT count(*) FROM orders), (SELECT count(*) FROM order_items)")  # fmt: skip
    assert counts["rows"] == [[500, 120, 3000, 7810]]
    by_status = await call(
        client, "query", sql="SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY status"
    )
    assert by_status["rows"] == [["cancelled", 402], ["delivered", 1093], ["paid", 386], ["pending", 355],
                                 ["refunded", 379], ["shipped", 385]]  # fmt: skip
    assert [c["name"] for c in by_status["columns"]] == ["status", "n"]
    assert by_status["total"] == by_status["returned"] == 6 and by_status["truncated"] is False
    assert by_status["warnings"] == []


async def test_a_capped_result_reports_the_exact_total_and_warns(client: Client) -> None:
    result = await client.call_tool("query", {"sql": "SELECT id FROM orders ORDER BY id", "limit": 7})
    data = result.structured_content
    assert data is not None
    assert (data["returned"], data["total"], data["truncated"], data["truncated_by"]) == (7, 3000, True, "rows")
    assert [r[0] for r in data["rows"]] == [1, 2, 3, 4, 5, 6, 7]
    assert data["warnings"][0]["code"] == "truncated_rows"
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith("Warning: result truncated: showing the first 7 of 3000 rows")
    assert text.splitlines()[1].startswith("query: 7 of 3000 row(s)")


async def test_exactly_limit_rows_is_not_truncated(client: Client) -> None:
    data = await call(client, "query", sql="SELECT id FROM orders WHERE id <= 5", limit=5)
    assert (data["returned"], data["total"], data["truncated"], data["warnings"]) == (5, 5, False, [])


async def test_a_limit_above_the_servers_cap_is_clamped_with_a_warning(settings: Settings) -> None:
    async with connected(replace(settings, max_rows=20)) as client:
        data = await call(client, "query", sql="SELECT id FROM orders", limit=500)
    assert data["returned"] == 20 and data["total"] == 3000
    assert [w["code"] for w in data["warnings"]] == ["limit_clamped", "truncated_rows"]


async def test_the_byte_cap_truncates_between_rows_and_says_so(settings: Settings) -> None:
    async with connected(replace(settings, max_result_bytes=2000)) as client:
        data = await call(client, "query", sql="SELECT id, name, email FROM customers ORDER BY id")
    assert data["truncated_by"] == "bytes" and 0 < data["returned"] < 100 and data["total"] == 500
    assert "SQL_SERVER_MAX_RESULT_BYTES (2,000 bytes)" in data["warnings"][0]["message"]
    assert [r[0] for r in data["rows"]] == list(range(1, data["returned"] + 1))


async def test_counting_disabled_leaves_total_unknown_and_says_why(settings: Settings) -> None:
    async with connected(replace(settings, count_timeout_s=0)) as client:
        data = await call(client, "query", sql="SELECT id FROM orders", limit=3)
    assert data["total"] is None and data["truncated"] is True
    assert [w["code"] for w in data["warnings"]] == ["truncated_rows", "total_unknown"]


HOSTILE = [
    "'; DROP TABLE orders; --",
    "x' OR '1'='1",
    "Robert'); DELETE FROM customers;--",
    "\\'; SELECT pg_sleep(10); --",
    "$1 :name ? %s {0}",
    "/* */ -- \n UNION SELECT password FROM pg_shadow",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ✓ — ﬁ",
    "a" * 200_000,
]


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v[:20]))
async def test_hostile_parameter_values_are_bound_not_interpolated(
    client: Client, backend_name: str, value: str
) -> None:
    cast = "::text" if backend_name == "postgresql" else ""
    data = await call(client, "query", sql=f"SELECT {ph(backend_name)}{cast} AS v", params=[value])
    assert data["rows"] == [[value]]
    found = await call(client, "query", sql="SELECT count(*) FROM customers WHERE name = :n", params={"n": value})
    assert found["rows"] == [[0]]


async def test_hostile_values_left_every_table_unchanged(request: pytest.FixtureRequest, backend_name: str,
                                                         settings: Settings) -> None:  # fmt: skip
    if backend_name == "postgresql":
        cluster: Cluster = request.getfixturevalue("pg")
        before = await pg_checksum(cluster)
    else:
        before = sqlite_checksum(settings.sample_dir / "shop-sample-v1.sqlite3")
    async with connected(settings) as client:
        for value in HOSTILE:
            await call(client, "query", sql="SELECT count(*) FROM orders WHERE status = :s", params={"s": value})
    after = (
        await pg_checksum(request.getfixturevalue("pg"))
        if backend_name == "postgresql"
        else sqlite_checksum(settings.sample_dir / "shop-sample-v1.sqlite3")
    )
    assert after == before


async def test_a_nul_byte_in_a_parameter_is_a_clear_error_on_postgres_and_kept_on_sqlite(
    client: Client, backend_name: str
) -> None:
    if backend_name == "postgresql":
        text = await call_error(client, "query", sql="SELECT $1::text", params=["a\x00b"])
        assert "0x00" in text and "PostgreSQL refused" in text
    else:
        assert (await call(client, "query", sql="SELECT ?", params=["a\x00b"]))["rows"] == [["a\x00b"]]


@pytest.mark.parametrize("backend_name", ["postgresql"])
async def test_postgres_result_types_are_exact_json(client: Client) -> None:
    sql = (
        "SELECT 12345678901234567890.123456789::numeric AS n, 'NaN'::numeric AS nn, 1.5::float8 AS f, "
        "'NaN'::float8 AS fnan, '-Infinity'::float8 AS finf, 9223372036854775807::int8 AS big, true AS b, "
        "'2024-02-29'::date AS d, '2024-02-29 13:14:15.5+02'::timestamptz AS ts, '1 day 02:03:04'::interval AS i, "
        "'{\"a\": [1, 2.5, null]}'::jsonb AS j, ARRAY[1, NULL, 3] AS ai, ARRAY['x', 'y'] AS at, "
        "ARRAY[1.5, 2]::numeric[] AS an, '\\x00ff10'::bytea AS raw, NULL::text AS nothing, "
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, int4range(1, 5) AS r, '192.168.1.1'::inet AS ip"
    )
    data = await call(client, "query", sql=sql)
    row = dict(zip([c["name"] for c in data["columns"]], data["rows"][0], strict=True))
    types = {c["name"]: c["type"] for c in data["columns"]}
    assert row["n"] == "12345678901234567890.123456789" and types["n"] == "numeric"
    assert row["nn"] == "NaN" and row["f"] == 1.5 and row["fnan"] == "NaN" and row["finf"] == "-Infinity"
    assert row["big"] == 9223372036854775807 and row["b"] is True
    assert row["d"] == "2024-02-29" and row["ts"] == "2024-02-29 11:14:15.5+00" and row["i"] == "1 day 02:03:04"
    assert row["j"] == {"a": [1, 2.5, None]} and row["ai"] == [1, None, 3] and row["at"] == ["x", "y"]
    assert row["an"] == ["1.5", "2"] and base64.b64decode(row["raw"]) == b"\x00\xff\x10" and types["raw"] == "bytea"
    assert row["nothing"] is None and row["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert row["r"] == "[1,5)" and row["ip"] == "192.168.1.1"


@pytest.mark.parametrize("backend_name", ["postgresql"])
async def test_postgres_params_are_coerced_to_the_parameters_types(client: Client) -> None:
    data = await call(
        client, "query",
        sql="SELECT $1::date + 1, $2::numeric * 2, $3::jsonb -> 'k', $4::int + 1, $5::bool, $6::bytea, $7::int[]",
        params=["2024-02-28", "1.25", {"k": [1]}, "41", "true", base64.b64encode(b"\x01\x02").decode(), ["1", 2]],
    )  # fmt: skip
    assert data["rows"] == [["2024-02-29", "2.50", [1], 42, True, "AQI=", [1, 2]]]
    text = await call_error(client, "query", sql="SELECT $1::int", params=["forty-two"])
    assert "does not fit a parameter of type int4" in text


@pytest.mark.parametrize("backend_name", ["sqlite"])
async def test_sqlite_result_types_are_json(client: Client) -> None:
    data = await call(client, "query", sql="SELECT 1 AS i, 1.5 AS f, 'x' AS t, x'00ff' AS b, NULL AS n, 1e999 AS inf, "
                      "json_object('a', 1) AS j, ? AS flag, ? AS doc", params=[True, {"k": [1]}])  # fmt: skip
    assert data["rows"] == [[1, 1.5, "x", "AP8=", None, "Infinity", '{"a":1}', 1, '{"k": [1]}']]
    assert [c["type"] for c in data["columns"]] == [
        "integer",
        "real",
        "text",
        "blob",
        "null",
        "real",
        "text",
        "integer",
        "text",
    ]


TRICKY_LITERALS = [
    "SELECT 'it''s' AS v",
    "SELECT E'a\\'b' AS v",
    "SELECT $$dollar 'quoted' \\n$$ AS v",
    "SELECT $tag$x$y$tag$ AS v",
    "SELECT 'back\\slash' AS v",
    "SELECT '/* not a comment */' AS v",
    "SELECT '-- not a comment' AS v",
    'SELECT "x""y" FROM (SELECT 1 AS "x""y") s',
    "SELECT 'semi;colon' AS v",
    "SELECT E'\\x41\\u00e9' AS v",
]


@pytest.mark.parametrize("sql", TRICKY_LITERALS)
@pytest.mark.parametrize("backend_name", ["postgresql"])
async def test_the_regenerated_statement_returns_what_the_callers_text_returns(
    client: Client, pg: Cluster, sql: str
) -> None:
    """Differential: layer 1 executes sqlglot's regeneration, so quoting and escapes must survive it exactly."""
    conn = await asyncpg.connect(pg.reader_dsn)
    try:
        expected = await conn.fetchval(sql)
    finally:
        await conn.close()
    try:
        validate_read(sql, POSTGRES)
    except (RejectedStatement, SqlServerError):
        pytest.skip("layer 1 refuses it (fails closed)")
    assert (await call(client, "query", sql=sql))["rows"] == [[expected]]


async def test_explain_shows_the_plan_without_running_the_statement(client: Client, backend_name: str) -> None:
    data = await call(client, "explain", sql=f"SELECT * FROM orders WHERE customer_id = {ph(backend_name)}", params=[7])
    assert data["analyze"] is False and data["warnings"] == []
    if backend_name == "postgresql":
        assert data["plan"][0]["Plan"]["Node Type"] in ("Bitmap Heap Scan", "Index Scan")
    else:
        assert any("orders_customer_id_idx" in step["detail"] for step in data["plan"])
    text = await call_error(client, "explain", sql="DELETE FROM orders")
    assert "DELETE is not allowed in explain" in text


async def test_catalog_tools_describe_the_sample(client: Client, backend_name: str) -> None:
    schemas = await call(client, "list_schemas")
    default = "public" if backend_name == "postgresql" else "main"
    assert schemas["backend"] == backend_name and default in [s["name"] for s in schemas["schemas"]]
    tables = await call(client, "list_tables")
    names = [t["name"] for t in tables["tables"]]
    assert set(TABLES) <= set(names) and tables["total"] == tables["returned"] == len(names)
    orders = next(t for t in tables["tables"] if t["name"] == "orders")
    assert orders["row_estimate"] == 3000 and orders["type"] == "table"
    items = await call(client, "describe_table", table="order_items")
    assert [c["name"] for c in items["columns"]] == ["id", "order_id", "product_id", "quantity", "unit_price"]
    assert items["primary_key"] == ["id"] and items["columns"][0]["primary_key"] is True
    assert items["columns"][1]["nullable"] is False
    assert sorted(fk["references_table"].split(".")[-1] for fk in items["foreign_keys"]) == ["orders", "products"]
    assert {tuple(i["columns"]) for i in items["indexes"]} >= {("order_id",), ("product_id",)}
    assert items["row_estimate"] == 7810
    qualified = await call(client, "describe_table", table=f"{default}.customers")
    assert qualified["name"] == "customers" and qualified["schema"] == default


async def test_an_unknown_table_suggests_the_closest(client: Client) -> None:
    text = await call_error(client, "describe_table", table="order")
    assert "no table or view named 'order'" in text and "'orders'" in text
    assert "list_tables" in await call_error(client, "sample_rows", table="zzz")


async def test_sample_rows_returns_typed_rows(client: Client) -> None:
    data = await call(client, "sample_rows", table="customers", n=3)
    assert data["returned"] == 3 and [c["name"] for c in data["columns"]][:3] == ["id", "name", "email"]
    assert data["rows"][0][:2] == [1, "Dana Haas"]
    assert "n" in await call_error(client, "sample_rows", table="customers", n=51)


async def test_list_tables_of_an_unknown_schema_warns(client: Client) -> None:
    data = await call(client, "list_tables", schema="nope")
    assert data["tables"] == [] and data["warnings"][0]["code"] == "unknown_schema"


async def test_database_errors_are_the_databases_message_without_internals(client: Client, backend_name: str) -> None:
    text = await call_error(client, "query", sql="SELECT no_such_column FROM orders")
    assert "no_such_column" in text and "Traceback" not in text
    text = await call_error(client, "query", sql="SELECT * FROM no_such_table")
    assert "no_such_table" in text


async def test_a_statement_timeout_names_the_limit(settings: Settings, backend_name: str) -> None:
    heavy = (
        "SELECT count(*) FROM generate_series(1, 100000000000)" if backend_name == "postgresql"
        else "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    )  # fmt: skip
    async with connected(replace(settings, statement_timeout_s=0.5)) as client:
        text = await call_error(client, "query", sql=heavy)
    assert "SQL_SERVER_STATEMENT_TIMEOUT (0.5 s)" in text


@pytest.mark.parametrize("backend_name", ["sqlite"])
async def test_the_sample_file_is_never_modified_by_reads(sample_dir: Path, settings: Settings) -> None:
    before = (sample_dir / "shop-sample-v1.sqlite3").stat().st_mtime_ns
    async with connected(settings) as client:
        await call(client, "query", sql="SELECT count(*) FROM orders")
    assert (sample_dir / "shop-sample-v1.sqlite3").stat().st_mtime_ns == before


@pytest.mark.parametrize("backend_name", ["sqlite"])
async def test_a_long_sqlite_read_moves_off_the_event_loop(settings: Settings) -> None:
    """Reads start inline with a 2 ms budget; a long one must not stall the server's other work."""
    import time as clock

    import anyio

    gaps: list[float] = []

    async def ticker() -> None:
        last = clock.monotonic()
        while True:
            await anyio.sleep(0.005)
            now = clock.monotonic()
            gaps.append(now - last)
            last = now

    heavy = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 3000000) SELECT count(*) FROM c"
    async with connected(settings) as client, anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        data = await call(client, "query", sql=heavy)
        tg.cancel_scope.cancel()
    assert data["rows"] == [[3000000]]
    assert len(gaps) > 5 and max(gaps) < 0.25, f"the event loop stalled for {max(gaps):.3f} s"


async def test_explain_analyze_runs_only_when_the_operator_enables_it(settings: Settings, backend_name: str) -> None:
    async with connected(replace(settings, explain_analyze=True)) as client:
        data = await call(client, "explain", sql="SELECT count(*) FROM orders WHERE status = :s", params={"s": "paid"})
    if backend_name == "postgresql":
        assert data["analyze"] is True and data["plan"][0]["Plan"]["Actual Rows"] == 1
    else:
        assert data["analyze"] is False and data["warnings"][0]["code"] == "analyze_unsupported"
