"""The adversarial corpus against each defence layer alone, and through the `query` tool.

Layer 1 (the sqlglot AST allow-list) must refuse every statement. Then the same statements are forced past
it, straight into each backend's read path (layer 2: read-only transaction + least-privilege role on
PostgreSQL; mode=ro + query_only + authorizer on SQLite), which must refuse each one or leave it without
effect; the role and the SQLite authorizer are also tested on their own. After every run the data's
checksums (and the catalogue's, and the files on disk) prove that nothing was written.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import asyncpg
import pytest

from conftest import BACKENDS, call_error, connected, pg_checksum, sqlite_checksum, sqlite_copy, started
from corpus import CORPUS, RESOURCE_CASES, Case
from pg_cluster import ADMIN_PASSWORD, READER_PASSWORD, WRITER_PASSWORD, Cluster
from sql_server.backends.postgres import DIALECT as POSTGRES
from sql_server.backends.sqlite import DIALECT as SQLITE
from sql_server.backends.sqlite import Authorizer
from sql_server.config import Settings
from sql_server.errors import LimitExceeded, RejectedStatement, SqlServerError, SqlSyntaxError
from sql_server.validation import Statement, validate_read

DIALECTS = {"postgresql": POSTGRES, "sqlite": SQLITE}
LEAKS = (ADMIN_PASSWORD, READER_PASSWORD, WRITER_PASSWORD, "127.0.0.1", "harbor_reader", "Traceback", "postgresql://")
FILES = [Path(p) for p in ("/tmp/harbor-stolen.sqlite3", "/tmp/harbor-attached.sqlite3", "/tmp/harbor-orders.csv",
                           "/tmp/harbor-lo", "/tmp/harbor-x")]  # fmt: skip


def cases(backend: str) -> list[Case]:
    return [case for case in CORPUS if case.applies(backend)]


def test_the_corpus_has_at_least_80_distinct_statements_covering_both_backends() -> None:
    assert len({case.sql for case in CORPUS}) >= 80
    assert len(cases("postgresql")) >= 80 and len(cases("sqlite")) >= 40


@pytest.mark.parametrize(
    ("backend", "case"),
    [(b, c) for c in CORPUS for b in BACKENDS if c.applies(b)],
    ids=lambda v: v if isinstance(v, str) else v.sql[:50],
)
def test_layer1_alone_refuses_every_corpus_statement(backend: str, case: Case) -> None:
    with pytest.raises((RejectedStatement, SqlSyntaxError)) as refused:
        validate_read(case.sql, DIALECTS[backend])
    assert "Traceback" not in str(refused.value) and str(refused.value)


def _forced(sql: str) -> Statement:
    """The raw text as if layer 1 had accepted it: the backend gets it unchanged."""
    return Statement(sql=sql, kind="select")


def _no_files_left() -> None:
    left = [str(f) for f in FILES if f.exists()]
    assert not left, f"a refused statement created {left}"


@pytest.mark.anyio
@pytest.mark.postgres
async def test_postgres_read_path_alone_refuses_or_neutralizes_every_statement(pg: Cluster, sample_dir: Path) -> None:
    settings = Settings(
        dsn=pg.reader_dsn, sample_dir=sample_dir, statement_timeout_s=1, count_timeout_s=0.5, pool_size=1
    )
    before = await pg_checksum(pg)
    wrong: list[str] = []
    async with started(settings) as backend:
        for case in cases("postgresql"):
            with anyio.fail_after(20):
                try:
                    await backend.read(_forced(case.sql), [], 10)
                    outcome, message = "inert", ""
                except SqlServerError as exc:
                    outcome, message = "refused", str(exc)
            if outcome != case.engine:
                wrong.append(f"{case.sql!r}: {outcome} (expected {case.engine}) {message}")
            leaked = [leak for leak in LEAKS if leak in message]
            if leaked:
                wrong.append(f"{case.sql!r}: the error leaks {leaked}: {message}")
        # the single pooled connection ran every statement: nothing it was told to change stuck
        settings_now = [
            (await backend.read(_forced(f"SHOW {name}"), [], 1)).rows[0][0]
            for name in ("statement_timeout", "default_transaction_read_only", "transaction_read_only", "role")
        ]
        assert settings_now == ["1s", "on", "on", "none"]  # (inside the server's own READ ONLY transaction)
    assert not wrong, "\n".join(wrong)
    admin = await asyncpg.connect(pg.admin_dsn)
    try:
        assert await admin.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0
        assert await admin.fetchval("SELECT count(*) FROM pg_replication_slots") == 0
    finally:
        await admin.close()
    assert await pg_checksum(pg) == before
    _no_files_left()


@pytest.mark.anyio
@pytest.mark.postgres
async def test_postgres_role_alone_refuses_its_cases_even_in_a_read_write_transaction(pg: Cluster) -> None:
    """No layer 1, no READ ONLY: the least-privilege role's grants still refuse the statement."""
    before = await pg_checksum(pg)
    conn = await asyncpg.connect(pg.reader_dsn, server_settings={"statement_timeout": "2000"})
    allowed: list[str] = []
    try:
        for case in [c for c in cases("postgresql") if c.role]:
            await conn.execute("BEGIN READ WRITE")
            try:
                await conn.execute(case.sql)  # the simple protocol: even more permissive than the server's
                allowed.append(case.sql)
            except (asyncpg.PostgresError, asyncpg.InterfaceError):
                pass
            finally:
                await conn.execute("ROLLBACK")
    finally:
        await conn.close()
    assert not allowed, f"the role alone allowed: {allowed}"
    assert await pg_checksum(pg) == before
    _no_files_left()


@pytest.mark.anyio
@pytest.mark.postgres
async def test_a_read_only_transaction_alone_stops_writes_but_not_file_reads_which_is_why_the_role_matters(
    pg: Cluster,
) -> None:
    """As a superuser (no role protection), READ ONLY refuses writes yet lets pg_read_file through."""
    conn = await asyncpg.connect(pg.admin_dsn)
    try:
        for sql in ("DELETE FROM orders", "CREATE TABLE t (a int)", "SELECT * INTO stolen FROM orders",
                    "WITH x AS (DELETE FROM orders RETURNING 1) SELECT 1", "COPY orders FROM STDIN"):  # fmt: skip
            await conn.execute("BEGIN READ ONLY")
            with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError):
                await conn.execute(sql)
            await conn.execute("ROLLBACK")
        async with conn.transaction(readonly=True):
            assert await conn.fetchval("SELECT length(pg_read_file('/etc/passwd'))") > 0
    finally:
        await conn.close()


@pytest.mark.anyio
async def test_sqlite_read_path_alone_refuses_or_neutralizes_every_statement(sample_dir: Path, tmp_path: Path) -> None:
    path = sqlite_copy(sample_dir, tmp_path)
    before, files = sqlite_checksum(path), sorted(p.name for p in tmp_path.iterdir())
    settings = Settings(dsn=f"sqlite:///{path}", sample_dir=sample_dir, statement_timeout_s=1, pool_size=1)
    wrong: list[str] = []
    async with started(settings) as backend:
        for case in cases("sqlite"):
            with anyio.fail_after(20):
                try:
                    await backend.read(_forced(case.sql), [], 10)
                    outcome, message = "inert", ""
                except SqlServerError as exc:
                    outcome, message = "refused", str(exc)
            if outcome != case.engine:
                wrong.append(f"{case.sql!r}: {outcome} (expected {case.engine}) {message}")
            if "Traceback" in message or str(path) in message:
                wrong.append(f"{case.sql!r}: the error leaks internals: {message}")
        with pytest.raises(SqlServerError):  # the connection that ran them all still refuses a write
            await backend.read(_forced("DELETE FROM orders"), [], 1)
    assert not wrong, "\n".join(wrong)
    assert sqlite_checksum(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == files
    _no_files_left()


def test_sqlite_authorizer_alone_refuses_its_cases_on_a_writable_connection(sample_dir: Path, tmp_path: Path) -> None:
    """No layer 1, no mode=ro, no query_only: the authorizer still refuses the statement."""
    path = sqlite_copy(sample_dir, tmp_path)
    before = sqlite_checksum(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.set_authorizer(Authorizer(SQLITE.functions))
    allowed = []
    try:
        for case in [c for c in cases("sqlite") if c.authorizer]:
            try:
                conn.execute(case.sql).fetchall()
                allowed.append(case.sql)
            except sqlite3.Error:
                pass
    finally:
        conn.close()
    assert not allowed, f"the authorizer alone allowed: {allowed}"
    assert sqlite_checksum(path) == before
    _no_files_left()


def test_read_only_sqlite_without_the_authorizer_still_attaches_and_turns_query_only_off(
    sample_dir: Path, tmp_path: Path
) -> None:
    """Why the authorizer exists: mode=ro and query_only alone let ATTACH (a new file) and PRAGMA writes through."""
    path = sqlite_copy(sample_dir, tmp_path)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.execute(f"ATTACH '{tmp_path / 'other.sqlite3'}' AS other")
        conn.execute("PRAGMA query_only = OFF")
        assert conn.execute("PRAGMA query_only").fetchone() == (0,)
    finally:
        conn.close()


@pytest.mark.anyio
async def test_every_corpus_statement_is_a_clear_tool_error_through_query(
    settings: Settings, backend_name: str
) -> None:
    before = await _checksum(settings, backend_name)
    async with connected(settings, mode="legacy") as client:
        for case in cases(backend_name):
            text = await call_error(client, "query", sql=case.sql)
            assert text.startswith("Error executing tool query: ") and "Traceback" not in text, text
            assert any(
                word in text for word in ("not allowed", "syntax error", "statements were given", "allow-list")
            ), text
    assert await _checksum(settings, backend_name) == before


async def _checksum(settings: Settings, backend_name: str) -> str:
    if backend_name == "sqlite":
        return sqlite_checksum(settings.sample_dir / "shop-sample-v1.sqlite3")
    return await _pg_sum(settings)


async def _pg_sum(settings: Settings) -> str:
    conn = await asyncpg.connect(settings.dsn)
    try:
        return str(await conn.fetchval("SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM orders t"))
    finally:
        await conn.close()


@pytest.mark.anyio
@pytest.mark.parametrize("backend", BACKENDS)
async def test_accepted_but_heavy_statements_are_bounded_by_the_caps_and_timeouts(
    backend: str, request: pytest.FixtureRequest, sample_dir: Path
) -> None:
    dsn = request.getfixturevalue("pg").reader_dsn if backend == "postgresql" else None
    settings = Settings(dsn=dsn, sample_dir=sample_dir, statement_timeout_s=1.5, count_timeout_s=0.5, max_rows=100,
                        max_result_bytes=1_000_000)  # fmt: skip
    async with started(settings) as b:
        for sql, bound in RESOURCE_CASES[backend]:
            statement = validate_read(sql, b.dialect)  # layer 1 accepts these on purpose
            with anyio.fail_after(10):
                if bound in ("timeout", "too big"):
                    with pytest.raises(LimitExceeded) as stopped:
                        await b.read(statement, [], 100)
                    assert ("SQL_SERVER_STATEMENT_TIMEOUT" if bound == "timeout" else "size limit") in str(
                        stopped.value
                    )
                    continue
                result = await b.read(statement, [], 100)
            assert result.truncated == bound
            if bound == "rows":
                assert (
                    len(result.rows) == 100
                    and result.total is None
                    and "SQL_SERVER_COUNT_TIMEOUT" in str(result.count_note)
                )
