"""PostgreSQL operations: the role check at start, sanitized connection errors, pool reuse, restart recovery."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import anyio
import asyncpg
import pytest

from conftest import call, call_error, connected, started
from pg_cluster import ADMIN, ADMIN_PASSWORD, READER_PASSWORD, Cluster
from sql_server.config import Settings
from sql_server.errors import StartupRefused

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]
LEAKS = (ADMIN_PASSWORD, READER_PASSWORD, "127.0.0.1", "harbor_reader", "harbor_admin", "postgresql://", "Traceback")


def pg_settings(pg: Cluster, sample_dir: Path, **overrides: object) -> Settings:
    return replace(Settings(dsn=pg.reader_dsn, sample_dir=sample_dir, pool_size=3), **overrides)  # type: ignore[arg-type]


async def test_a_superuser_dsn_is_refused_at_start_unless_allowed(pg: Cluster, sample_dir: Path) -> None:
    superuser = pg_settings(pg, sample_dir, dsn=pg.admin_dsn)
    with pytest.raises(StartupRefused) as refused:
        async with started(superuser):
            pass
    message = str(refused.value)
    assert "a superuser" in message and "--allow-superuser" in message
    assert ADMIN_PASSWORD not in message and "127.0.0.1" not in message
    async with connected(replace(superuser, allow_superuser=True)) as client:
        assert (await call(client, "query", sql="SELECT 1 AS one"))["rows"] == [[1]]


async def test_a_member_of_pg_read_server_files_is_refused_too(pg: Cluster, sample_dir: Path) -> None:
    admin = await asyncpg.connect(pg.admin_dsn)
    try:
        await admin.execute("DROP ROLE IF EXISTS harbor_filereader")
        await admin.execute("CREATE ROLE harbor_filereader LOGIN PASSWORD 'file-Secret-9' IN ROLE pg_read_server_files")
        await admin.execute("GRANT CONNECT ON DATABASE shop TO harbor_filereader")
    finally:
        await admin.close()
    settings = pg_settings(pg, sample_dir, dsn=pg.dsn("harbor_filereader", "file-Secret-9"))
    with pytest.raises(StartupRefused, match="a member of pg_read_server_files"):
        async with started(settings):
            pass


@pytest.mark.parametrize(
    ("dsn", "reason"),
    [
        ("postgresql://harbor_reader:wrong-Password-1@127.0.0.1:{port}/shop", "the server refused the credentials"),
        ("postgresql://harbor_reader:{password}@127.0.0.1:{port}/no_such_db", "does not exist"),
        ("postgresql://harbor_reader:{password}@127.0.0.1:1/shop", "the server cannot be reached"),
    ],
)
async def test_connection_failures_say_database_unavailable_without_host_port_user_or_password(
    pg: Cluster, sample_dir: Path, dsn: str, reason: str
) -> None:
    settings = pg_settings(pg, sample_dir, dsn=dsn.format(port=pg.port, password=READER_PASSWORD), connect_timeout_s=2)
    async with connected(settings) as client:
        started_at = time.monotonic()
        text = await call_error(client, "query", sql="SELECT 1")
        assert time.monotonic() - started_at < 3
    assert "database unavailable" in text and reason in text
    assert not [leak for leak in (*LEAKS, "wrong-Password-1", str(pg.port), "no_such_db") if leak in text], text


async def test_the_pool_reuses_its_connections(pg: Cluster, sample_dir: Path) -> None:
    """No connect per call: 200 calls, at most SQL_SERVER_POOL_SIZE backends, all of them reused."""
    admin = await asyncpg.connect(pg.admin_dsn)
    async with connected(pg_settings(pg, sample_dir, pool_size=2)) as client:
        for i in range(200):
            await call(client, "query", sql="SELECT id FROM orders WHERE id = $1", params=[i + 1])
        sessions = await admin.fetch(
            "SELECT pid, backend_start FROM pg_stat_activity WHERE application_name = 'harbor-sql-server' AND usename = 'harbor_reader'"
        )
    await admin.close()
    assert 1 <= len(sessions) <= 2


async def test_the_pool_recovers_after_a_postgres_restart_and_fails_fast_during_the_outage(
    pg: Cluster, sample_dir: Path
) -> None:
    async with connected(pg_settings(pg, sample_dir, connect_timeout_s=2)) as client:
        assert (await call(client, "query", sql="SELECT count(*) FROM orders"))["rows"] == [[3000]]
        await anyio.to_thread.run_sync(pg.stop)
        try:
            started_at = time.monotonic()
            text = await call_error(client, "query", sql="SELECT count(*) FROM orders")
            assert time.monotonic() - started_at < 3, "a call during the outage must fail fast"
            assert "database unavailable" in text and not [leak for leak in LEAKS if leak in text]
        finally:
            await anyio.to_thread.run_sync(pg.start)
        # the pooled connections died with the server: the next calls get new ones without an error
        for _ in range(5):
            assert (await call(client, "query", sql="SELECT count(*) FROM orders"))["rows"] == [[3000]]


async def test_connections_killed_under_the_pool_are_replaced_transparently(pg: Cluster, sample_dir: Path) -> None:
    async with connected(pg_settings(pg, sample_dir, pool_size=2)) as client:
        await call(client, "query", sql="SELECT 1")
        admin = await asyncpg.connect(pg.admin_dsn)
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'harbor-sql-server'"
            )
        finally:
            await admin.close()
        assert killed >= 1
        assert (await call(client, "query", sql="SELECT count(*) FROM customers"))["rows"] == [[500]]


async def test_statement_timeout_is_enforced_by_the_server_even_if_a_statement_resets_it(
    pg: Cluster, sample_dir: Path
) -> None:
    """Forced past layer 1: set_config() inside the statement cannot lift the timeout it runs under."""
    from sql_server.validation import Statement

    async with started(pg_settings(pg, sample_dir, statement_timeout_s=0.5)) as backend:
        with anyio.fail_after(10), pytest.raises(Exception, match="SQL_SERVER_STATEMENT_TIMEOUT"):
            await backend.read(
                Statement("SELECT set_config('statement_timeout', '0', false), pg_sleep(5)", "select"), [], 1
            )


async def test_the_admin_role_name_never_reaches_a_caller(pg: Cluster, sample_dir: Path) -> None:
    async with connected(pg_settings(pg, sample_dir)) as client:
        text = await call_error(client, "query", sql="SELECT * FROM pg_authid")
    assert "permission denied" in text and ADMIN not in text
