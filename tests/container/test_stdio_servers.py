"""Each server image as a Claude Desktop `docker run -i --rm …` entry would run it: the SDK `Client` spawns
`podman run -i` and talks MCP over the container's stdin/stdout."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.container.conftest import LIMITS, PODMAN, SERVERS_DIR, image_name, image_ref, server_packages

pytestmark = pytest.mark.anyio

TIMEOUT = 90
SERVER_IMAGES = [image_name(p) for p in server_packages()]


def _params(image: str, *options: str) -> StdioServerParameters:
    return StdioServerParameters(command=PODMAN[0], args=[*PODMAN[1:], "run", "-i", "--rm", *LIMITS, *options, image])


def _readable_data_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    """A host folder the container's uid 10001 can read, mounted as /data."""
    data = tmp_path / "data"
    data.mkdir()
    for name, text in files.items():
        (data / name).write_text(text)
        (data / name).chmod(0o644)
    for folder in (tmp_path, data):
        folder.chmod(0o755)
    return data


@pytest.mark.parametrize("image", SERVER_IMAGES)
async def test_server_image_answers_initialize_and_tools_list_over_stdio(image: str) -> None:
    with anyio.fail_after(TIMEOUT):
        async with Client(_params(image_ref(image)), mode="legacy", read_timeout_seconds=60) as client:
            info, version = client.server_info, client.protocol_version
            tools = (await client.list_tools()).tools
    assert info is not None and info.name and version
    assert tools and all(tool.input_schema for tool in tools)


async def test_data_analysis_reads_the_read_only_data_mount_and_plots_on_a_read_only_root(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[2] / "mcp-servers/python/data_analysis_server/sample_data/sales.csv"
    data = _readable_data_dir(tmp_path, {"sales.csv": sample.read_text()})
    params = _params(image_ref("harbor-data-analysis"), "--read-only", "--network", "none", "-v", f"{data}:/data:ro")
    with anyio.fail_after(TIMEOUT):
        async with Client(params, mode="legacy", read_timeout_seconds=60) as client:
            loaded = await client.call_tool("load_dataset", {"source": "/data/sales.csv"})
            assert not loaded.is_error, loaded.content
            dataset = loaded.structured_content["dataset_id"]
            picture = await client.call_tool("plot", {"dataset_id": dataset, "kind": "histogram", "x": "units"})
            outside = await client.call_tool("load_dataset", {"source": "/etc/passwd"})
    rows = sum(1 for _ in sample.open()) - 1
    assert (loaded.structured_content["rows"], loaded.structured_content["columns"]) == (rows, 6)
    assert not picture.is_error, picture.content
    png = next(c for c in picture.content if c.type == "image")
    assert base64.b64decode(png.data).startswith(b"\x89PNG")  # matplotlib ran with only /tmp writable
    assert outside.is_error  # /data is the only root


async def test_eval_stores_a_run_from_data_in_its_state_volume_on_a_read_only_root(tmp_path: Path) -> None:
    items = [{"id": f"q{i}", "prediction": f"answer {i % 3}", "references": [f"answer {i % 2}"]} for i in range(6)]
    data = _readable_data_dir(tmp_path, {"items.jsonl": "\n".join(json.dumps(item) for item in items)})
    params = _params(image_ref("harbor-mcp-eval"), "--read-only", "--network", "none", "-v", f"{data}:/data:ro")
    with anyio.fail_after(TIMEOUT):
        async with Client(params, mode="legacy", read_timeout_seconds=60) as client:
            run = await client.call_tool(
                "run_eval", {"dataset": "/data/items.jsonl", "task": {"metrics": ["exact_match"]}, "name": "c"}
            )
            assert not run.is_error, run.content
            listed = await client.call_tool("list_runs", {})
    exact = sum(item["prediction"] == item["references"][0] for item in items) / len(items)
    assert run.structured_content["n_items"] == 6
    assert run.structured_content["means"]["exact_match"] == pytest.approx(exact)
    assert [r["run_id"] for r in listed.structured_content["runs"]] == [run.structured_content["run_id"]]


@pytest.mark.skipif(
    not (SERVERS_DIR / "sql_server" / "pyproject.toml").is_file(), reason="the sql_server package is not in this tree"
)
async def test_sql_reads_its_sample_and_a_database_mounted_at_data_on_a_read_only_root(tmp_path: Path) -> None:
    data = _readable_data_dir(tmp_path, {})
    with sqlite3.connect(data / "mine.db") as db:
        db.execute("CREATE TABLE t (x INTEGER)")
        db.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), (39,)])
    (data / "mine.db").chmod(0o644)
    sample = _params(image_ref("harbor-sql"), "--read-only", "--network", "none")
    mine = _params(
        image_ref("harbor-sql"), "--read-only", "--network", "none", "-v", f"{data}:/data:ro",
        "-e", "SQL_SERVER_DSN=sqlite:////data/mine.db",
    )  # fmt: skip
    with anyio.fail_after(TIMEOUT):
        async with Client(sample, mode="legacy", read_timeout_seconds=60) as client:
            customers = await client.call_tool("query", {"sql": "SELECT COUNT(*) AS n FROM customers"})
            write = await client.call_tool("query", {"sql": "DELETE FROM customers"})
        async with Client(mine, mode="legacy", read_timeout_seconds=60) as client:
            total = await client.call_tool("query", {"sql": "SELECT SUM(x) AS total FROM t"})
    assert not customers.is_error and "500" in json.dumps(customers.structured_content["rows"])
    assert write.is_error  # read-only by construction
    assert not total.is_error and "42" in json.dumps(total.structured_content["rows"])
