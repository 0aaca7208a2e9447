"""The real thing: the server as a subprocess over stdio (both eras), and behind the real Harbor gateway."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp.types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from conftest import sqlite_checksum, sqlite_copy
from pg_cluster import ADMIN_PASSWORD, Cluster

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]
TIMEOUT = 60


def _env(**extra: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SQL_SERVER_")}
    return {**inherited, "PYTHONUNBUFFERED": "1", **extra}


def _params(*args: str, **env: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "sql_server", *args], env=_env(**env))


@pytest.mark.parametrize("era", ["legacy", "2026-07-28"])
async def test_stdio_server_serves_the_sample_in_both_eras(sample_dir: Path, era: str) -> None:
    with anyio.fail_after(TIMEOUT):
        async with Client(_params(SQL_SERVER_SAMPLE_DIR=str(sample_dir)), mode=era) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"query", "describe_table", "execute_write"} <= names
            result = await client.call_tool("query", {"sql": "SELECT count(*) AS n FROM orders WHERE status = :s",
                                                      "params": {"s": "paid"}})  # fmt: skip
            assert not result.is_error and result.structured_content["rows"] == [[386]]  # type: ignore[index]
            strict = await client.call_tool("query", {"sql": "SELECT 1", "sqll": "x"})
            assert strict.is_error and "did you mean 'sql'?" in strict.content[0].text  # type: ignore[union-attr]
            refused = await client.call_tool("query", {"sql": "ATTACH '/tmp/x' AS x"})
            assert refused.is_error and "ATTACH is not allowed" in refused.content[0].text  # type: ignore[union-attr]


async def test_without_a_writable_home_the_sample_is_generated_in_the_temp_folder(tmp_path: Path) -> None:
    """A read-only install: nothing is written next to the package; HOME is unusable; TMPDIR takes it."""
    env = {"HOME": "/dev/null", "TMPDIR": str(tmp_path), "XDG_CACHE_HOME": ""}
    with anyio.fail_after(TIMEOUT):
        async with Client(_params(**env), mode="legacy") as client:
            result = await client.call_tool("list_tables", {})
            assert not result.is_error and result.structured_content["total"] == 4  # type: ignore[index]
    assert (tmp_path / "harbor-sql-server" / "shop-sample-v1.sqlite3").is_file()


@pytest.mark.postgres
async def test_stdio_server_on_postgres_takes_the_dsn_from_the_environment_only(pg: Cluster) -> None:
    with anyio.fail_after(TIMEOUT):
        async with Client(_params(SQL_SERVER_DSN=pg.reader_dsn), mode="legacy") as client:
            result = await client.call_tool("query", {"sql": "SELECT count(*) FROM customers WHERE country = $1",
                                                      "params": ["Japan"]})  # fmt: skip
            assert not result.is_error and result.structured_content["rows"][0][0] > 0  # type: ignore[index]


@pytest.mark.postgres
def test_a_superuser_dsn_stops_the_process_at_start_with_a_clear_message(pg: Cluster) -> None:
    done = subprocess.run([sys.executable, "-m", "sql_server"], env=_env(SQL_SERVER_DSN=pg.admin_dsn), input="",
                          capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert done.returncode == 2
    assert "refusing to start" in done.stderr and "superuser" in done.stderr and "--allow-superuser" in done.stderr
    assert ADMIN_PASSWORD not in done.stderr and done.stdout == ""


def test_a_malformed_limit_stops_the_process_and_names_the_variable() -> None:
    done = subprocess.run([sys.executable, "-m", "sql_server"], env=_env(SQL_SERVER_MAX_ROWS="lots"), input="",
                          capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert done.returncode == 2 and "SQL_SERVER_MAX_ROWS must be a whole number" in done.stderr


def test_build_sample_writes_the_file_and_exits(tmp_path: Path) -> None:
    target = tmp_path / "image" / "sample.sqlite3"
    subprocess.run(
        [sys.executable, "-m", "sql_server", "--build-sample", str(target)], env=_env(), check=True, timeout=TIMEOUT
    )
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM order_items").fetchone() == (7810,)
    conn.close()


def _child_pid() -> int:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"sql_server" in cmdline:
            return int(stat.parent.name)
    raise AssertionError("server child process not found")


async def test_a_server_killed_mid_query_ends_in_an_error_not_a_hang(sample_dir: Path) -> None:
    slow = {"sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"}
    with anyio.fail_after(TIMEOUT), pytest.raises(ExceptionGroup) as caught:
        async with Client(
            _params(SQL_SERVER_SAMPLE_DIR=str(sample_dir), SQL_SERVER_STATEMENT_TIMEOUT="120"), mode="legacy"
        ) as client:
            await client.list_tools()
            pid = _child_pid()
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, "query", slow)
                await anyio.sleep(1.0)  # let the query start; this test is about the crash, not timing
                os.kill(pid, signal.SIGKILL)
    assert caught.group_contains(MCPError, match="Connection closed", depth=None)


# --- behind the real gateway -------------------------------------------------------------------------------

TOKENS = {"SQL_READER_TOKEN": "reader-token-0123456789", "SQL_WRITER_TOKEN": "writer-token-0123456789"}
GATEWAY_CONFIG = """
mcpServers:
  sql:
    command: {python}
    args: ["-m", "sql_server", "--enable-writes"]
    env:
      SQL_SERVER_DSN: "sqlite:///{db}"
gateway:
  host: 127.0.0.1
  auth:
    tokens:
      - {{token: "${{SQL_READER_TOKEN}}", identity: analyst, scopes: ["sql:read"]}}
      - {{token: "${{SQL_WRITER_TOKEN}}", identity: dba, scopes: ["sql:read", "sql:write"]}}
  policies:
    - {{scopes: ["sql:read"], servers: ["sql"], tools: ["list_*", "describe_table", "sample_rows", "query", "explain"]}}
    - {{scopes: ["sql:write"], servers: ["sql"], tools: ["execute_write"]}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def gateway(sample_dir: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    pytest.importorskip("gateway", reason="the repository's gateway package (make test installs it)")
    db = sqlite_copy(sample_dir, tmp_path)
    config = tmp_path / "harbor.yaml"
    config.write_text(GATEWAY_CONFIG.format(python=sys.executable, db=db))
    port = _free_port()
    log = (tmp_path / "gateway.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)],
                            env=_env(**TOKENS), stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url + "/readyz?strict=1", proc, tmp_path / "gateway.log")
        yield url, db
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the gateway exited: {log.read_text(errors='replace')}"
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise AssertionError(f"the gateway was not ready: {log.read_text(errors='replace')}")


def _as(url: str, token: str, **client: Any) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return Client(streamable_http_client(url + "/mcp", http_client=http), mode="legacy", **client)


async def _accept(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"confirm": True})


async def test_execute_write_is_hidden_from_an_identity_without_the_sql_write_scope(gateway: tuple[str, Path]) -> None:
    url, db = gateway
    before = sqlite_checksum(db)
    with anyio.fail_after(TIMEOUT):
        async with _as(url, TOKENS["SQL_READER_TOKEN"]) as analyst:
            tools = {t.name for t in (await analyst.list_tools()).tools}
            assert "sql__query" in tools and "sql__execute_write" not in tools
            rows = await analyst.call_tool("sql__query", {"sql": "SELECT count(*) FROM orders"})
            assert rows.structured_content["rows"] == [[3000]]  # type: ignore[index]
            with pytest.raises(MCPError, match="Unknown tool: sql__execute_write"):
                await analyst.call_tool("sql__execute_write", {"sql": "DELETE FROM orders WHERE id = 1"})
    assert sqlite_checksum(db) == before
    with anyio.fail_after(TIMEOUT):
        async with _as(url, TOKENS["SQL_WRITER_TOKEN"], elicitation_callback=_accept) as dba:
            assert "sql__execute_write" in {t.name for t in (await dba.list_tools()).tools}
            done = await dba.call_tool("sql__execute_write", {"sql": "DELETE FROM order_items WHERE order_id = 1"})
            assert not done.is_error, done.content[0].text  # type: ignore[union-attr]
            assert done.structured_content["confirmation"] == "user"  # type: ignore[index]
            assert done.structured_content["affected_rows"] == done.structured_content["estimated_rows"] > 0  # type: ignore[index]
    assert sqlite_checksum(db) != before
