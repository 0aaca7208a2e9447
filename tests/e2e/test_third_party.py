"""Third-party tools against translate: the official conformance suite, the MCP Inspector CLI, and the
reference `@modelcontextprotocol/server-everything` as the stdio child. All come from .tools/ (make tools).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import anyio
import mcp.types as types
import pytest
from mcp import Client
from mcp.client.sse import sse_client

from tests.conftest import NODE_BIN, ROOT, Translate, node_env

pytestmark = [pytest.mark.e2e, pytest.mark.node]
SERVER_EVERYTHING = (
    ROOT / ".tools" / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
)


def _inspector(target: list[str], *args: str, home: Path) -> dict:
    argv = ["mcp-inspector", "--cli", *target, *args, "--format", "json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=90, env=node_env(home))
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout[done.stdout.index("{") :])


@pytest.mark.parametrize("path", ["/mcp", "/sse"])
def test_inspector_cli_lists_and_calls_through_each_transport(
    shared_translate: Translate, path: str, tmp_path: Path
) -> None:
    target = [shared_translate.url + path]
    listed = _inspector(target, "--method", "tools/list", home=tmp_path)
    assert "echo" in {t["name"] for t in listed["result"]["tools"]}
    called = _inspector(
        target, "--method", "tools/call", "--tool-name", "echo", "--tool-arg", "text=from inspector", home=tmp_path
    )
    assert called["result"]["content"][0]["text"] == "from inspector"


def test_conformance_suite_passes_against_translate(shared_translate: Translate, tmp_path: Path) -> None:
    argv = [
        "conformance",
        "server",
        "--url",
        shared_translate.url + "/mcp",
        "--suite",
        "all",
        "--spec-version",
        "2025-11-25",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=400, env=node_env(tmp_path), cwd=tmp_path)
    summary = done.stdout[done.stdout.find("=== SUMMARY ===") :]
    assert done.returncode == 0, summary or done.stderr[-3000:]
    assert "0 failed" in summary.splitlines()[-1], summary


async def test_server_everything_as_the_child_over_both_transports(translate: type[Translate]) -> None:
    t = translate(command=f"{NODE_BIN / 'node'} {SERVER_EVERYTHING} stdio")
    with anyio.fail_after(60):
        async with Client(t.url + "/mcp", mode="legacy") as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert {"echo", "get-sum"} <= names
            echoed = await client.call_tool("echo", {"message": "through harbor"})
            assert isinstance(echoed.content[0], types.TextContent) and "through harbor" in echoed.content[0].text
            summed = await client.call_tool("get-sum", {"a": 2, "b": 40})
            assert isinstance(summed.content[0], types.TextContent) and "42" in summed.content[0].text
        async with Client(sse_client(t.url + "/sse"), mode="legacy") as client:
            echoed = await client.call_tool("echo", {"message": "legacy"})
            assert isinstance(echoed.content[0], types.TextContent) and "legacy" in echoed.content[0].text


test_server_everything_as_the_child_over_both_transports = pytest.mark.anyio(
    test_server_everything_as_the_child_over_both_transports
)
