"""The real thing: the server started as a subprocess, driven by the SDK Client over stdio."""

from __future__ import annotations

import base64
import io
import os
import signal
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from PIL import Image

from conftest import PACKAGE_DIR

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

TIMEOUT = 60


def _params(root: Path, **extra_env: str) -> StdioServerParameters:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("DATA_ANALYSIS_")}
    env = {**inherited, "DATA_ANALYSIS_ROOTS": str(root), "PYTHONUNBUFFERED": "1", **extra_env}
    return StdioServerParameters(command=sys.executable, args=["-m", "data_analysis_server"], env=env, cwd=str(root))


async def test_stdio_session_load_profile_test_regress_plot_sql(tmp_path: Path) -> None:
    (tmp_path / "exp.csv").write_text((PACKAGE_DIR / "sample_data" / "experiment.csv").read_text())
    with anyio.fail_after(TIMEOUT):
        async with Client(_params(tmp_path)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"load_dataset", "profile", "test_hypothesis", "regress", "plot", "sql", "time_series"} <= names

            loaded = await client.call_tool("load_dataset", {"source": "exp.csv"})
            assert not loaded.is_error
            ds = loaded.structured_content["dataset_id"]
            assert loaded.structured_content["rows"] == 200

            prof = await client.call_tool("profile", {"dataset_id": ds, "columns": ["score"]})
            assert prof.structured_content["columns"][0]["count"] == 200

            welch = await client.call_tool(
                "test_hypothesis",
                {"dataset_id": ds, "test": "t_two_sample", "column": "score", "group_column": "group"},
            )
            assert welch.structured_content["method"].startswith("Welch")
            assert 0 < welch.structured_content["p_value"] < 1
            assert "p =" in welch.content[0].text

            reg = await client.call_tool("regress", {"dataset_id": ds, "y": "score", "x": ["group", "converted"]})
            terms = [c["term"] for c in reg.structured_content["coefficients"]]
            assert terms == ["const", "group=treatment", "converted"]

            pic = await client.call_tool("plot", {"dataset_id": ds, "kind": "box", "x": "group", "y": "score"})
            image = next(c for c in pic.content if c.type == "image")
            png = base64.b64decode(image.data)
            assert image.mime_type == "image/png" and png.startswith(b"\x89PNG")
            decoded = Image.open(io.BytesIO(png))
            decoded.verify()
            assert decoded.size[0] >= 400 and len(png) <= 150_000

            table = loaded.structured_content["table_name"]
            rows = await client.call_tool(
                "sql", {"query": f'SELECT "group", count(*) AS n FROM {table} GROUP BY 1 ORDER BY 1'}
            )
            assert rows.structured_content["rows"] == [{"group": "control", "n": 100}, {"group": "treatment", "n": 100}]


async def test_stdio_errors_are_tool_errors_with_guidance(tmp_path: Path) -> None:
    (tmp_path / "exp.csv").write_text((PACKAGE_DIR / "sample_data" / "experiment.csv").read_text())
    outside = tmp_path.parent / "outside.csv"
    with anyio.fail_after(TIMEOUT):
        async with Client(_params(tmp_path)) as client:
            ds = (await client.call_tool("load_dataset", {"source": "exp.csv"})).structured_content["dataset_id"]

            bad_column = await client.call_tool("profile", {"dataset_id": ds, "columns": ["scroe"]})
            assert (
                bad_column.is_error
                and "'score'" in bad_column.content[0].text
                and "Available columns" in bad_column.content[0].text
            )

            escape = await client.call_tool("load_dataset", {"source": str(outside)})
            assert escape.is_error and "outside the allowed roots" in escape.content[0].text

            write = await client.call_tool("sql", {"query": "COPY (SELECT 1) TO 'x.csv'"})
            assert write.is_error and "Only read-only SELECT" in write.content[0].text

            schema_violation = await client.call_tool("test_hypothesis", {"dataset_id": ds, "test": "not_a_test"})
            assert schema_violation.is_error

            # The server is still healthy after errors.
            ok = await client.call_tool("list_datasets", {})
            assert not ok.is_error and ok.structured_content["datasets"][0]["dataset_id"] == ds


async def test_stdio_url_loading_refuses_loopback_unless_the_operator_opts_in(tmp_path: Path, http_base: str) -> None:
    url = f"{http_base}/data.csv"
    with anyio.fail_after(TIMEOUT):
        async with Client(_params(tmp_path)) as client:
            refused = await client.call_tool("load_dataset", {"source": url})
            assert refused.is_error and "127.0.0.1" in refused.content[0].text and "refused" in refused.content[0].text
        async with Client(_params(tmp_path, DATA_ANALYSIS_ALLOW_PRIVATE_URLS="1")) as client:
            loaded = await client.call_tool("load_dataset", {"source": url})
            assert not loaded.is_error and loaded.structured_content["rows"] == 2


def _server_pid() -> int:
    """Pid of our data_analysis_server child (found through /proc by parent pid)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"data_analysis_server" in cmdline:
            return int(stat.parent.name)
    raise AssertionError("server child process not found")


async def test_server_killed_mid_call_ends_in_an_error_not_a_hang(tmp_path: Path) -> None:
    slow = {"query": "SELECT count(*) FROM range(100000000000) a, range(10) b"}
    with anyio.fail_after(TIMEOUT):
        with pytest.raises(ExceptionGroup) as caught:
            async with Client(_params(tmp_path, DATA_ANALYSIS_SQL_TIMEOUT="120")) as client:
                await client.list_tools()
                pid = _server_pid()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(client.call_tool, "sql", slow)
                    await anyio.sleep(1.0)  # let the query start; this test is about the crash, not timing
                    os.kill(pid, signal.SIGKILL)
        assert caught.group_contains(MCPError, match="Connection closed", depth=None)
