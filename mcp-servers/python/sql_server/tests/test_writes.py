"""execute_write on both backends: disabled by default, confirmed by elicitation (both eras), guarded rules."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import mcp.types as types
import pytest

from conftest import call, call_error, connected, sqlite_copy, with_writes
from pg_cluster import Cluster
from sql_server.config import Settings

pytestmark = pytest.mark.anyio
LEDGER = [("apples", 3), ("pears", 0), ("plums", 7), ("figs", 2), ("dates", 5)]
ERAS = ["legacy", "2026-07-28"]


@pytest.fixture
async def writable(
    settings: Settings, backend_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Settings]:
    """Writes enabled, on a fresh ledger: a private SQLite copy, or the cluster's ledger as the writer role."""
    if backend_name == "sqlite":
        path = sqlite_copy(settings.sample_dir, tmp_path)
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE ledger (id INTEGER PRIMARY KEY, item TEXT NOT NULL, qty INTEGER NOT NULL)")
            conn.executemany("INSERT INTO ledger (item, qty) VALUES (?, ?)", LEDGER)
        conn.close()
        yield with_writes(settings, path)
        return
    cluster: Cluster = request.getfixturevalue("pg")
    await _admin(cluster, "TRUNCATE ledger RESTART IDENTITY", [])
    await _admin(cluster, "INSERT INTO ledger (item, qty) SELECT * FROM unnest($1::text[], $2::int[])",
                 [[i for i, _ in LEDGER], [q for _, q in LEDGER]])  # fmt: skip
    yield with_writes(replace(settings, dsn=cluster.writer_dsn))


async def _admin(cluster: Cluster, sql: str, args: list[Any]) -> Any:
    conn = await asyncpg.connect(cluster.admin_dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def ledger(settings: Settings) -> list[tuple[str, int]]:
    async with connected(replace(settings, enable_writes=False)) as client:
        rows = (await call(client, "query", sql="SELECT item, qty FROM ledger ORDER BY id"))["rows"]
    return [tuple(r) for r in rows]  # type: ignore[misc]


def answering(action: str, confirm: bool = True, seen: list[str] | None = None,
              before: Callable[[], Any] | None = None) -> Any:  # fmt: skip
    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        if seen is not None:
            seen.append(params.message)
        if before is not None:
            await before()
        return types.ElicitResult(action=action, content={"confirm": confirm} if action == "accept" else None)  # type: ignore[arg-type]

    return callback


async def test_execute_write_is_refused_when_writes_are_disabled(settings: Settings) -> None:
    async with connected(settings) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "DISABLED on this server" in (tools["execute_write"].description or "")
        text = await call_error(client, "execute_write", sql="DELETE FROM orders WHERE id = 1")
    assert "execute_write is disabled on this server" in text and "--enable-writes" in text


@pytest.mark.parametrize("era", ERAS)
async def test_an_accepted_confirmation_runs_exactly_the_confirmed_statement(
    writable: Settings, backend_name: str, era: str
) -> None:
    seen: list[str] = []
    placeholder = "$1" if backend_name == "postgresql" else "?"
    async with connected(writable, mode=era, elicitation_callback=answering("accept", seen=seen)) as client:
        data = await call(
            client, "execute_write", sql=f"UPDATE ledger SET qty = qty + 10 WHERE qty > {placeholder}", params=[2]
        )
    assert (data["affected_rows"], data["estimated_rows"], data["confirmation"], data["committed"]) == (
        3,
        3,
        "user",
        True,
    )
    assert data["kind"] == "update" and data["warnings"] == []
    assert (
        len(seen) == 1 and data["statement"] in seen[0] and "changed 3 row(s) of ledger" in seen[0] and "[2]" in seen[0]
    )
    assert await ledger(writable) == [("apples", 13), ("pears", 0), ("plums", 17), ("figs", 2), ("dates", 15)]


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize(("action", "confirm"), [("decline", True), ("cancel", True), ("accept", False)])
async def test_a_declined_confirmation_runs_nothing(writable: Settings, era: str, action: str, confirm: bool) -> None:
    async with connected(writable, mode=era, elicitation_callback=answering(action, confirm)) as client:
        text = await call_error(client, "execute_write", sql="DELETE FROM ledger WHERE qty = 0")
    assert "did not confirm" in text and "nothing was run" in text
    assert await ledger(writable) == LEDGER


@pytest.mark.parametrize("era", ERAS)
async def test_a_client_without_elicitation_is_refused_unless_the_server_runs_with_no_confirm(
    writable: Settings, era: str
) -> None:
    async with connected(writable, mode=era) as client:
        text = await call_error(client, "execute_write", sql="DELETE FROM ledger WHERE qty = 0")
    assert "does not support elicitation" in text and "--no-confirm" in text
    assert await ledger(writable) == LEDGER
    async with connected(replace(writable, confirm_writes=False), mode=era) as client:
        data = await call(client, "execute_write", sql="DELETE FROM ledger WHERE qty = 0")
    assert (data["affected_rows"], data["estimated_rows"], data["confirmation"]) == (1, None, "not required")
    assert ("pears", 0) not in await ledger(writable)


async def test_a_count_that_changes_after_the_confirmation_rolls_back(writable: Settings, backend_name: str,
                                                                      request: pytest.FixtureRequest) -> None:  # fmt: skip
    """The user confirmed 3 rows; a concurrent insert makes it 4: nothing is changed, the call says why."""

    async def concurrent_insert() -> None:
        if backend_name == "postgresql":
            await _admin(request.getfixturevalue("pg"), "INSERT INTO ledger (item, qty) VALUES ('kiwi', 9)", [])
        else:
            with sqlite3.connect(writable.dsn.removeprefix("sqlite:///")) as conn:  # type: ignore[union-attr]
                conn.execute("INSERT INTO ledger (item, qty) VALUES ('kiwi', 9)")
            conn.close()

    async with connected(
        writable, mode="legacy", elicitation_callback=answering("accept", before=concurrent_insert)
    ) as client:
        text = await call_error(client, "execute_write", sql="DELETE FROM ledger WHERE qty > 2")
    assert "changed 4 row(s), not the 3 the user confirmed" in text and "rolled back" in text
    assert await ledger(writable) == [*LEDGER, ("kiwi", 9)]


async def test_in_the_2026_era_a_changed_count_is_asked_again_before_anything_runs(
    writable: Settings, backend_name: str, request: pytest.FixtureRequest
) -> None:
    """Each input-required round re-measures the statement; an answer only counts for the question it saw."""
    inserted: list[bool] = []

    async def insert_once() -> None:
        if inserted:
            return
        inserted.append(True)
        if backend_name == "postgresql":
            await _admin(request.getfixturevalue("pg"), "INSERT INTO ledger (item, qty) VALUES ('kiwi', 9)", [])
        else:
            with sqlite3.connect(writable.dsn.removeprefix("sqlite:///")) as conn:  # type: ignore[union-attr]
                conn.execute("INSERT INTO ledger (item, qty) VALUES ('kiwi', 9)")
            conn.close()

    seen: list[str] = []
    callback = answering("accept", seen=seen, before=insert_once)
    async with connected(writable, mode="2026-07-28", elicitation_callback=callback) as client:
        data = await call(client, "execute_write", sql="DELETE FROM ledger WHERE qty > 2")
    assert ["changed 3 row(s)" in seen[0], "changed 4 row(s)" in seen[1], len(seen)] == [True, True, 2]
    assert data["affected_rows"] == data["estimated_rows"] == 4
    assert await ledger(writable) == [("pears", 0), ("figs", 2)]


async def test_update_or_delete_of_every_row_needs_allow_full_table(writable: Settings) -> None:
    seen: list[str] = []
    async with connected(writable, elicitation_callback=answering("accept", seen=seen)) as client:
        text = await call_error(client, "execute_write", sql="DELETE FROM ledger")
        assert "allow_full_table=true" in text and not seen
        assert "names no column" in await call_error(
            client, "execute_write", sql="UPDATE ledger SET qty = 0 WHERE 1 = 1"
        )
        data = await call(client, "execute_write", sql="UPDATE ledger SET qty = 0", allow_full_table=True)
    assert data["affected_rows"] == 5 and "changed 5 row(s)" in seen[0]
    assert [q for _, q in await ledger(writable)] == [0] * 5


async def test_inserts_return_their_returning_rows(writable: Settings, backend_name: str) -> None:
    marks = "$1, $2" if backend_name == "postgresql" else "?, ?"
    async with connected(writable, elicitation_callback=answering("accept")) as client:
        data = await call(client, "execute_write", sql=f"INSERT INTO ledger (item, qty) VALUES ({marks}) RETURNING id, item",
                          params=["quince", 4])  # fmt: skip
    assert data["affected_rows"] == 1 and [c["name"] for c in data["columns"]] == ["id", "item"]
    # the trial runs (one per confirmation round) advance PostgreSQL's sequence: ids are > 5, not always 6
    assert data["rows"][0][0] > 5 and data["rows"][0][1] == "quince"


async def test_writes_keep_the_read_rules_and_refuse_other_statements(writable: Settings) -> None:
    async with connected(writable, elicitation_callback=answering("accept")) as client:
        assert "use query" in await call_error(client, "execute_write", sql="SELECT * FROM ledger")
        assert "allow-list" in await call_error(client, "execute_write",
                                                sql="INSERT INTO ledger (item, qty) VALUES (lower(load_extension('x')), 1)")  # fmt: skip
        assert "statements were given" in await call_error(client, "execute_write",
                                                           sql="DELETE FROM ledger WHERE id = 1; DROP TABLE ledger")  # fmt: skip
        assert "DDL is disabled on this server" in await call_error(
            client, "execute_write", sql="DROP TABLE ledger", allow_ddl=True
        )
        assert "allow_ddl=true" in await call_error(client, "execute_write", sql="DROP TABLE ledger")
    assert await ledger(writable) == LEDGER


@pytest.mark.parametrize("backend_name", ["sqlite"])
async def test_ddl_runs_only_with_the_server_flag_and_the_call_flag(writable: Settings) -> None:
    seen: list[str] = []
    async with connected(
        replace(writable, allow_ddl=True), elicitation_callback=answering("accept", seen=seen)
    ) as client:
        data = await call(
            client, "execute_write", sql="CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)", allow_ddl=True
        )
        assert data["kind"] == "ddl" and data["affected_rows"] is None and "This is DDL" in seen[0]
        assert "not allowed" in await call_error(
            client, "execute_write", sql="CREATE VIRTUAL TABLE v USING fts5(x)", allow_ddl=True
        )
        tables = [t["name"] for t in (await call(client, "list_tables"))["tables"]]
    assert "notes" in tables


@pytest.mark.parametrize("backend_name", ["postgresql"])
async def test_the_database_still_enforces_the_roles_grants_on_writes(writable: Settings) -> None:
    async with connected(writable, elicitation_callback=answering("accept")) as client:
        text = await call_error(client, "execute_write", sql="DELETE FROM orders WHERE id = 1")
    assert "permission denied for table orders" in text


@pytest.mark.parametrize("backend_name", ["postgresql"])
async def test_the_reader_role_gets_permission_denied_even_with_writes_enabled(settings: Settings) -> None:
    async with connected(with_writes(settings), elicitation_callback=answering("accept")) as client:
        text = await call_error(client, "execute_write", sql="DELETE FROM ledger WHERE id = 1")
    assert "permission denied" in text
