"""Shared fixtures: one throw-away PostgreSQL cluster per session, the generated SQLite sample, and servers
built over either backend (tests parametrized with `backend_name` run on both)."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from mcp import Client
from mcp.types import CallToolResult

from pg_cluster import Cluster, create_cluster
from sql_server.backends import open_backend
from sql_server.backends.base import Backend
from sql_server.config import Settings
from sql_server.sample import SAMPLE_FILE, ensure_sample
from sql_server.server import build_server

PACKAGE_DIR = Path(__file__).resolve().parent.parent
CALL_TIMEOUT = 60
BACKENDS = ["sqlite", "postgresql"]
TABLES = ["customers", "products", "orders", "order_items"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pg() -> Iterator[Cluster]:
    cluster = create_cluster()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sample")
    ensure_sample(folder)
    return folder


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend_name: str, request: pytest.FixtureRequest, sample_dir: Path) -> Settings:
    """Defaults, on the sample (SQLite) or the cluster's shop database as the least-privilege role."""
    if backend_name == "postgresql":
        cluster: Cluster = request.getfixturevalue("pg")
        return Settings(dsn=cluster.reader_dsn, sample_dir=sample_dir, pool_size=3)
    return Settings(sample_dir=sample_dir, pool_size=3)


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[Backend]:
    backend = open_backend(settings)
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def backend(settings: Settings) -> AsyncIterator[Backend]:
    async with started(settings) as b:
        yield b


@asynccontextmanager
async def connected(settings: Settings, **client: Any) -> AsyncIterator[Client]:
    async with started(settings) as b, Client(build_server(settings, b), **client) as c:
        yield c


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with connected(settings, mode="legacy") as c:
        yield c


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; return its structuredContent."""
    with anyio.fail_after(CALL_TIMEOUT):
        result: CallToolResult = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
    assert result.structured_content is not None
    return result.structured_content


async def call_error(client: Client, tool: str, **arguments: Any) -> str:
    """Call a tool that must fail; return the error text."""
    with anyio.fail_after(CALL_TIMEOUT):
        result: CallToolResult = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool} unexpectedly succeeded: {result.structured_content}"
    return result.content[0].text  # type: ignore[union-attr]


def sqlite_copy(sample_dir: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the sample for a test that writes."""
    target = tmp_path / "shop.sqlite3"
    shutil.copyfile(sample_dir / SAMPLE_FILE, target)
    return target


def sqlite_checksum(path: Path) -> str:
    """Content checksum of every user table (and the schema) of an SQLite file."""
    digest = hashlib.sha256()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        for (sql,) in conn.execute("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name"):
            digest.update(sql.encode())
        for (table,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name"):
            for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid'):
                digest.update(repr(row).encode())
    conn.close()
    return digest.hexdigest()


PG_CHECKSUM = """
SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM customers t)
    || (SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM products t)
    || (SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM orders t)
    || (SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM order_items t)
    || (SELECT count(*)::text FROM pg_class)
    || (SELECT count(*)::text FROM pg_roles)
    || (SELECT count(*)::text FROM pg_database)
    || (SELECT string_agg(rolname || rolsuper::text, ',' ORDER BY rolname) FROM pg_roles)
"""


async def pg_checksum(cluster: Cluster) -> str:
    conn = await asyncpg.connect(cluster.admin_dsn)
    try:
        return str(await conn.fetchval(PG_CHECKSUM))
    finally:
        await conn.close()


def with_writes(settings: Settings, path: Path | None = None, **overrides: Any) -> Settings:
    """Settings with execute_write enabled: on a private SQLite copy, or as the PostgreSQL writer role."""
    dsn = settings.dsn
    if path is not None:
        dsn = f"sqlite:///{path}"
    return replace(settings, dsn=dsn, enable_writes=True, **overrides)
