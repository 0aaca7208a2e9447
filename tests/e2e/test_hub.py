"""The aggregating gateway as users run it: `python -m gateway serve` on a config, real children, real HTTP.

One gateway docks the test everything-server twice (under different names), the third-party
`@modelcontextprotocol/server-everything`, and a remote server (a translate process) by URL; another runs
`make serve`'s own config (data-analysis, eval, everything) with server-everything added. The tests list
and call through the merged endpoint and through one server alone, with the SDK Client, the Inspector CLI
and the conformance suite, then exercise policy, audit, metrics, failure and reload.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import anyio
import mcp.types as types
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPError
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import FIXTURE_SERVER, NODE_BIN, ROOT, HubProcess, Translate, node_env
from tests.e2e.rawclient import Streamable, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

NAME_RULE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
SERVER_EVERYTHING = (
    ROOT / ".tools" / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
)
LONG = "a_tool_whose_name_is_deliberately_longer_than_sixty_four_characters_xy"

FIXTURE = f"""
    command: ${{HARBOR_PYTHON}}
    args: ["{FIXTURE_SERVER}"]"""


def base_config(extra_servers: str = "", gateway: str = "") -> str:
    return f"""
mcpServers:
  everything:{FIXTURE}
  other copy:{FIXTURE}
    tools: {{deny: ["crash"]}}
{extra_servers}
gateway:
  host: 127.0.0.1
{gateway}
"""


async def _sampling(context: object, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    prompt = params.messages[0].content
    text = prompt.text if isinstance(prompt, types.TextContent) else "?"
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=f"sampled:{text}"), model="fake"
    )


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def test_merged_view_lists_and_calls_every_server_through_both_transports(
    hub: type[HubProcess], translate: type[Translate]
) -> None:
    remote = translate()
    node = f"""
  reference:
    command: {NODE_BIN / "node"}
    args: ["{SERVER_EVERYTHING}", "stdio"]
  remote:
    url: {remote.url}/mcp
  remote-sse:
    url: {remote.url}/sse
    type: sse
"""
    h = hub(base_config(node))
    with anyio.fail_after(60):
        async with Client(h.url + "/mcp", mode="legacy") as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert all(NAME_RULE.match(name) for name in tools), [n for n in tools if not NAME_RULE.match(n)]
            assert {
                "everything__echo",
                "other-copy__echo",
                "reference__echo",
                "remote__echo",
                "remote-sse__echo",
            } <= tools
            assert "other-copy__crash" not in tools and "everything__crash" in tools  # per-server deny
            assert _text(await client.call_tool("everything__echo", {"text": "a"})) == "a"
            assert _text(await client.call_tool("remote__echo", {"text": "over http"})) == "over http"
            assert _text(await client.call_tool("remote-sse__echo", {"text": "over sse"})) == "over sse"
            assert "42" in _text(await client.call_tool("reference__get-sum", {"a": 40, "b": 2}))
            long_public = next(n for n in tools if n.startswith("everything__a_tool_whose"))
            assert len(long_public) <= 64
            assert _text(await client.call_tool(long_public, {})) == "long name reached"
            resources = (await client.list_resources()).resources
            uri = next(str(r.uri) for r in resources if str(r.uri).endswith("test://static-text"))
            read = await client.read_resource(uri)
            assert read.contents[0].uri == uri  # type: ignore[union-attr]
            prompt = await client.get_prompt("everything__test_prompt_with_arguments", {"arg1": "x", "arg2": "y"})
            assert "arg1='x'" in prompt.messages[0].content.text  # type: ignore[union-attr]
            with pytest.raises(MCPError, match="Unknown tool: everything__no_such_tool"):
                await client.call_tool("everything__no_such_tool", {})
        async with Client(sse_client(h.url + "/sse"), mode="legacy", sampling_callback=_sampling) as client:
            assert _text(await client.call_tool("other-copy__echo", {"text": "legacy"})) == "legacy"
            # a server→client request crosses the merged session with an id of the gateway's own
            assert (
                _text(await client.call_tool("everything__test_sampling", {"prompt": "hi"}))
                == "LLM response: sampled:hi"
            )
            assert (
                _text(await client.call_tool("remote__test_sampling", {"prompt": "far"})) == "LLM response: sampled:far"
            )


def _shipped_config(tmp_path: Path) -> str:
    """config/harbor.yaml as `make serve` runs it, with its files in the test's folder, plus the test fixture
    (tests/configs/fixtures.yaml) and server-everything."""
    text = (ROOT / "config" / "harbor.yaml").read_text()
    text = text.replace(
        "${HARBOR_ROOT}/.venv/harbor-eval-{identity}.sqlite3", str(tmp_path / "eval-{identity}.sqlite3")
    )
    text = text.replace("${HARBOR_ROOT}/.venv/harbor-audit.jsonl", str(tmp_path / "audit.jsonl"))
    text = text.replace("${HARBOR_ROOT}/.venv/harbor-sql-sample", str(tmp_path / "sql-sample"))
    fixtures = (ROOT / "tests" / "configs" / "fixtures.yaml").read_text().split("mcpServers:\n", 1)[1]
    reference = f"""
  reference:
    command: {NODE_BIN / "node"}
    args: ["{SERVER_EVERYTHING}", "stdio"]
"""
    return text.replace("\ngateway:\n", fixtures + reference + "\ngateway:\n", 1)


async def _use_the_real_servers(client: Client) -> None:
    tools = {t.name for t in (await client.list_tools()).tools}
    assert {"data-analysis__load_dataset", "eval__compute_metrics", "everything__echo", "reference__echo"} <= tools
    loaded = await client.call_tool("data-analysis__load_dataset", {"source": "sales.csv"})
    assert not loaded.is_error and loaded.structured_content
    dataset = loaded.structured_content["dataset_id"]
    fit = await client.call_tool("data-analysis__regress", {"dataset_id": dataset, "y": "revenue", "x": ["units"]})
    assert not fit.is_error and fit.structured_content and fit.structured_content["n"] > 0
    plotted = await client.call_tool(
        "data-analysis__plot", {"dataset_id": dataset, "kind": "scatter", "x": "units", "y": "revenue", "hue": "region"}
    )
    image = next(block for block in plotted.content if isinstance(block, types.ImageContent))
    assert image.mime_type == "image/png" and base64.b64decode(image.data)[:8] == b"\x89PNG\r\n\x1a\n"
    scored = await client.call_tool(
        "eval__compute_metrics",
        {"predictions": ["the cat sat"], "references": [["the cat sat"]], "metrics": ["exact_match", "bleu"]},
    )
    assert scored.structured_content and scored.structured_content["metrics"]["exact_match"]["score"] == 1.0
    counted = await client.call_tool("sql__query", {"sql": "SELECT count(*) FROM orders"})
    assert counted.structured_content and counted.structured_content["rows"] == [[3000]]
    assert _text(await client.call_tool("everything__echo", {"text": "e"})) == "e"
    assert "42" in _text(await client.call_tool("reference__get-sum", {"a": 40, "b": 2}))


@pytest.mark.node
async def test_the_shipped_config_docks_the_repo_servers_and_both_transports_use_them(
    hub: type[HubProcess], tmp_path: Path
) -> None:
    """`make serve`'s own config (data-analysis, eval, everything) plus server-everything in one gateway."""
    h = hub(_shipped_config(tmp_path))
    with anyio.fail_after(120):
        async with Client(h.url + "/mcp", mode="legacy") as client:
            await _use_the_real_servers(client)
        async with Client(sse_client(h.url + "/sse"), mode="legacy") as client:
            await _use_the_real_servers(client)
    env = node_env(tmp_path)
    for path in ("/mcp", "/sse"):
        argv = ["mcp-inspector", "--cli", h.url + path, "--format", "json", "--method", "tools/call"]
        argv += ["--tool-name", "data-analysis__load_dataset", "--tool-arg", "source=sales.csv"]
        called = subprocess.run(argv, capture_output=True, text=True, timeout=90, env=env)
        assert called.returncode == 0, called.stderr[-2000:]
        result = json.loads(called.stdout[called.stdout.index("{") :])["result"]
        assert (result["structuredContent"]["rows"], result["structuredContent"]["columns"]) == (730, 6)


async def _all_pages(client: Streamable, method: str, key: str) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        params = {"cursor": cursor} if cursor else {}
        _, _, replies = await client.post({"jsonrpc": "2.0", "id": len(pages) + 1, "method": method, "params": params})
        result = replies[0]["result"]
        pages.append([item["name"] for item in result[key]])
        cursor = result.get("nextCursor")
        if not cursor:
            return pages


async def test_merged_lists_paginate_with_opaque_cursors(hub: type[HubProcess]) -> None:
    h = hub(base_config(gateway="  page_size: 7"))
    async with aiohttp.ClientSession() as http:
        merged, alone = Streamable(http, h.url + "/mcp"), Streamable(http, h.url + "/servers/everything/mcp")
        with anyio.fail_after(30):
            await merged.initialize()
            await alone.initialize()
            tool_pages = await _all_pages(merged, "tools/list", "tools")
            prompt_pages = await _all_pages(merged, "prompts/list", "prompts")
            alone_pages = await _all_pages(alone, "tools/list", "tools")
            _, _, bad = await merged.post(
                {"jsonrpc": "2.0", "id": 99, "method": "tools/list", "params": {"cursor": "not-ours"}}
            )
    tools = [name for page in tool_pages for name in page]
    assert len(tool_pages) > 2 and all(len(page) <= 7 for page in tool_pages)
    assert len(tools) == len(set(tools))  # no tool twice across pages
    alone_tools = {name for page in alone_pages for name in page}
    assert len(alone_pages) > 1 and "echo" in alone_tools
    # every tool of both copies, once ("other copy" denies `crash`; over-long names are shortened)
    expected = {f"everything__{t}" for t in alone_tools} | {f"other-copy__{t}" for t in alone_tools - {"crash"}}
    assert len(tools) == len(expected)
    assert {n for n in expected if len(n) <= 64} <= set(tools)
    assert len([name for page in prompt_pages for name in page]) >= 2
    assert bad[0]["error"]["code"] == -32602


async def test_one_server_alone_keeps_its_own_names(hub: type[HubProcess], tmp_path: Path) -> None:
    h = hub(base_config())
    with anyio.fail_after(30):
        async with Client(h.url + "/servers/other-copy/mcp", mode="legacy") as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert "echo" in tools and "crash" not in tools
            assert _text(await client.call_tool("echo", {"text": "alone"})) == "alone"
        async with aiohttp.ClientSession() as http, http.get(h.url + "/servers/nope/mcp") as resp:
            assert resp.status == 404


@pytest.mark.node
def test_conformance_suite_passes_against_one_docked_server(hub: type[HubProcess], tmp_path: Path) -> None:
    h = hub(base_config())
    argv = [
        "conformance",
        "server",
        "--url",
        h.url + "/servers/everything/mcp",
        "--suite",
        "all",
        "--spec-version",
        "2025-11-25",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=400, env=node_env(tmp_path), cwd=tmp_path)
    summary = done.stdout[done.stdout.find("=== SUMMARY ===") :]
    assert done.returncode == 0, summary or done.stderr[-3000:]
    assert "0 failed" in summary.splitlines()[-1], summary


@pytest.mark.node
@pytest.mark.parametrize("path", ["/mcp", "/sse"])
def test_inspector_cli_through_the_merged_endpoint(hub: type[HubProcess], path: str, tmp_path: Path) -> None:
    h = hub(base_config())
    env = node_env(tmp_path)
    base = ["mcp-inspector", "--cli", h.url + path, "--format", "json"]
    listed = subprocess.run([*base, "--method", "tools/list"], capture_output=True, text=True, timeout=90, env=env)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "everything__echo" in listed.stdout
    called = subprocess.run(
        [*base, "--method", "tools/call", "--tool-name", "other-copy__echo", "--tool-arg", "text=insp"],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    assert called.returncode == 0, called.stderr[-2000:]
    assert json.loads(called.stdout[called.stdout.index("{") :])["result"]["content"][0]["text"] == "insp"


POLICY = """
  auth:
    tokens:
      - {token: "${ALICE_TOKEN}", identity: alice, scopes: [analyst]}
      - {token: "${BOB_TOKEN}", identity: bob}
      - {token: "${CAROL_TOKEN}", identity: carol, scopes: ["harbor:admin"]}
  policies:
    - {scopes: [analyst], servers: ["*"], tools: ["*"]}
    - {identities: [bob], servers: ["everything"], tools: ["echo", "sleep"]}
  rate_limits:
    per_identity_tool: {rate: 0.2, burst: 3}
  audit:
    path: AUDIT_PATH
    include_arguments: true
"""
TOKENS = {
    "ALICE_TOKEN": "alice-token-0123456789",
    "BOB_TOKEN": "bob-token-0123456789ab",
    "CAROL_TOKEN": "carol-token-0123456789a",
}


async def test_auth_views_rate_limits_and_audit(hub: type[HubProcess], tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    h = hub(base_config(gateway=POLICY.replace("AUDIT_PATH", str(audit))), env=TOKENS)
    async with aiohttp.ClientSession() as http:
        anonymous = Streamable(http, h.url + "/mcp")
        status, _, _ = await anonymous.post(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                },
            }
        )
        assert status == 401
        alice, bob = Streamable(http, h.url + "/mcp"), Streamable(http, h.url + "/mcp")
        alice.headers = {"authorization": f"Bearer {TOKENS['ALICE_TOKEN']}"}
        bob.headers = {"authorization": f"Bearer {TOKENS['BOB_TOKEN']}"}
        with anyio.fail_after(30):
            await alice.initialize()
            await bob.initialize()
            alice_tools = {
                t["name"]
                for t in (await alice.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))[2][0]["result"][
                    "tools"
                ]
            }
            bob_tools = {
                t["name"]
                for t in (await bob.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))[2][0]["result"]["tools"]
            }
            assert {"everything__echo", "other-copy__echo", "everything__whoami"} <= alice_tools
            assert bob_tools == {"everything__echo", "everything__sleep"}
            hidden = (await bob.call(2, "everything__whoami", {}))[-1]
            unknown = (await bob.call(3, "everything__does_not_exist", {}))[-1]
            assert hidden["error"]["message"] == "Unknown tool: everything__whoami"
            assert hidden["error"]["code"] == unknown["error"]["code"]  # hidden looks exactly like unknown
            # bob cannot use alice's session
            bob_in_alice = Streamable(http, h.url + "/mcp")
            bob_in_alice.headers, bob_in_alice.session_id = bob.headers, alice.session_id
            status, _, _ = await bob_in_alice.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            assert status == 404
            replies = [
                (await alice.call(10 + i, "everything__echo", {"text": "x", "password": "hunter2"}))[-1]
                for i in range(4)
            ]
            assert text_of((await bob.call(4, "everything__echo", {"text": "b"}))[-1]) == "b"
            pages = {}
            for who in ("alice", "bob", "carol", None):
                headers = {"authorization": f"Bearer {TOKENS[who.upper() + '_TOKEN']}"} if who else {}
                async with http.get(h.url + "/", headers=headers) as page:
                    pages[who] = (page.status, await page.text())
    # the status page shows an identity its own calls and errors and the servers its policy shows it; the
    # harbor:admin scope sees everything; no token, no page
    assert pages[None][0] == 401
    assert ">alice<" in pages["alice"][1] and ">bob<" not in pages["alice"][1]
    assert ">bob<" in pages["bob"][1] and ">alice<" not in pages["bob"][1]
    assert ">alice<" in pages["carol"][1] and ">bob<" in pages["carol"][1]
    assert ">other-copy<" in pages["alice"][1] and ">other-copy<" not in pages["bob"][1]
    assert ">everything<" in pages["bob"][1] and ">other-copy<" in pages["carol"][1]
    assert "rate_limited" in pages["alice"][1] and "rate_limited" in pages["carol"][1]  # alice's 4th call
    assert "rate_limited" not in pages["bob"][1]
    assert all("result" in r for r in replies[:3])
    limited = replies[3]["error"]
    assert limited["code"] == -32029 and 0 < limited["data"]["retry_after"] <= 5.0

    def alice_echoes() -> list[dict[str, object]]:
        lines = [json.loads(line) for line in audit.read_text().splitlines()]
        return [line for line in lines if line["identity"] == "alice" and line["tool"] == "echo"]

    with anyio.fail_after(5):  # a record is written just after its reply leaves (batched, ≤ 5 ms later)
        while len(echo := alice_echoes()) < 4:
            await anyio.sleep(0.02)
    assert [line["outcome"] for line in echo] == ["ok", "ok", "ok", "rate_limited"]
    assert echo[0]["arguments"] == {"text": "x", "password": "[redacted]"}
    assert len(echo[0]["arguments_sha256"]) == 64 and echo[0]["server"] == "everything"
    assert echo[0]["response_bytes"] > 20 and echo[3]["response_bytes"] == 0  # the refused call sent nothing back
    assert TOKENS["ALICE_TOKEN"] not in audit.read_text() and TOKENS["ALICE_TOKEN"] not in h.log()


async def test_metrics_parse_and_count_calls(hub: type[HubProcess]) -> None:
    h = hub(base_config())
    async with Client(h.url + "/mcp", mode="legacy") as client:
        for _ in range(3):
            await client.call_tool("everything__echo", {"text": "m"})
    async with aiohttp.ClientSession() as http, http.get(h.url + "/metrics") as resp:
        text = await resp.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    calls = [
        s
        for s in families["harbor_tool_calls"].samples
        if s.name == "harbor_tool_calls_total" and s.labels["tool"] == "echo"
    ]
    assert calls and calls[0].value == 3 and calls[0].labels["outcome"] == "ok"
    assert "harbor_tool_call_duration_seconds" in families
    states = {s.labels["server"]: s.labels["state"] for s in families["harbor_server_state"].samples if s.value == 1}
    assert states == {"everything": "ready", "other-copy": "ready"}


async def test_a_dead_upstream_leaves_the_others_serving_and_comes_back(hub: type[HubProcess]) -> None:
    h = hub(base_config())
    changes: list[str] = []

    async def on_message(message: object) -> None:
        if isinstance(message, types.ServerNotification):
            changes.append(message.method)

    with anyio.fail_after(60):
        async with Client(h.url + "/mcp", mode="legacy", message_handler=on_message) as client:
            pid = int(_text(await client.call_tool("other-copy__whoami", {})))
            os.kill(pid, signal.SIGKILL)
            while "notifications/tools/list_changed" not in changes:
                await anyio.sleep(0.05)
            assert _text(await client.call_tool("everything__echo", {"text": "still"})) == "still"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                names = {t.name for t in (await client.list_tools()).tools}
                if "other-copy__echo" in names:
                    break
                await anyio.sleep(0.2)
            assert _text(await client.call_tool("other-copy__echo", {"text": "back"})) == "back"
            assert int(_text(await client.call_tool("other-copy__whoami", {}))) != pid


async def test_reload_adds_and_removes_servers_without_dropping_sessions(hub: type[HubProcess]) -> None:
    h = hub(base_config())
    with anyio.fail_after(60):
        async with Client(h.url + "/mcp", mode="legacy") as client:
            pid = int(_text(await client.call_tool("everything__whoami", {})))
            h.config_path.write_text(
                f"mcpServers:\n  everything:{FIXTURE}\n  third:{FIXTURE}\ngateway:\n  host: 127.0.0.1\n"
            )
            deadline = time.monotonic() + 20
            names: set[str] = set()
            while time.monotonic() < deadline:
                names = {t.name for t in (await client.list_tools()).tools}
                if "third__echo" in names and "other-copy__echo" not in names:
                    break
                await anyio.sleep(0.2)
            assert "third__echo" in names and "other-copy__echo" not in names
            assert _text(await client.call_tool("third__echo", {"text": "new"})) == "new"
            # untouched: same child, same session
            assert int(_text(await client.call_tool("everything__whoami", {}))) == pid
            h.config_path.write_text("mcpServers:\n  everything:\n    comand: broken\n")  # a bad edit is refused whole
            deadline = time.monotonic() + 20
            while "reload_rejected" not in h.log() and time.monotonic() < deadline:
                await anyio.sleep(0.2)
            assert "reload_rejected" in h.log()
            assert _text(await client.call_tool("third__echo", {"text": "kept"})) == "kept"
    assert "config_reloaded" in h.log()


async def test_per_session_servers_give_each_client_its_own_child(hub: type[HubProcess]) -> None:
    config = f"""
mcpServers:
  private:{FIXTURE}
    session_mode: per-session
    max_sessions: 2
gateway:
  host: 127.0.0.1
"""
    h = hub(config)
    async with aiohttp.ClientSession() as http:
        a, b, c = (Streamable(http, h.url + "/mcp") for _ in range(3))
        with anyio.fail_after(60):
            for client in (a, b, c):
                await client.initialize()
            pid_a = int(text_of((await a.call(1, "private__whoami", {}))[-1]))
            pid_b = int(text_of((await b.call(1, "private__whoami", {}))[-1]))
            assert pid_a != pid_b
            refused = (await c.call(1, "private__whoami", {}))[-1]
            assert refused["error"]["code"] == -32013
            assert await a.delete() == 200
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and os.path.exists(f"/proc/{pid_a}"):
                await anyio.sleep(0.05)
            assert not os.path.exists(f"/proc/{pid_a}")
            assert int(text_of((await c.call(2, "private__whoami", {}))[-1])) not in (pid_a, pid_b)


async def test_a_config_with_errors_names_the_key_and_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("mcpServers:\n  x:\n    comand: python\n")
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert "mcpServers.x" in done.stderr and "comand" in done.stderr


def test_a_public_bind_without_auth_is_refused_unless_asked_for(tmp_path: Path) -> None:
    config = tmp_path / "harbor.yaml"
    config.write_text(base_config())
    argv = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--host", "0.0.0.0", "--port", "0"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert done.returncode == 2
    assert "without gateway.auth" in done.stderr and "--allow-unauthenticated" in done.stderr


def test_a_taken_port_fails_at_once_before_any_server_starts(tmp_path: Path) -> None:
    config = tmp_path / "harbor.yaml"
    config.write_text(base_config())
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        argv = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert "server_docked" not in done.stderr and "serving" not in done.stderr  # nothing was started


def test_clients_prints_stdio_entries_and_the_gateway_url(tmp_path: Path) -> None:
    config = tmp_path / "harbor.yaml"
    config.write_text(base_config())
    env = {**os.environ, "HARBOR_PYTHON": sys.executable}
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "clients", "--config", str(config), "--format", "vscode"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env=env,
        check=True,
    ).stdout
    servers = json.loads(out)["servers"]
    assert servers["everything"]["type"] == "stdio" and os.path.isabs(servers["everything"]["command"])
    assert servers["harbor"] == {"type": "http", "url": "http://127.0.0.1:4444/mcp"}


async def test_jwt_identities_get_their_policy_view(hub: type[HubProcess]) -> None:
    import jwt

    secret = "a-test-signing-secret-of-at-least-32-bytes"
    gateway = """
  auth:
    jwt:
      algorithms: [HS256]
      secret: "${JWT_SECRET}"
      audience: harbor
  policies:
    - {scopes: [echoer], servers: ["everything"], tools: ["echo"]}
"""
    h = hub(base_config(gateway=gateway), env={"JWT_SECRET": secret})
    now = int(time.time())
    good = jwt.encode({"sub": "carol", "scope": "echoer", "aud": "harbor", "exp": now + 300}, secret, algorithm="HS256")
    expired = jwt.encode(
        {"sub": "carol", "scope": "echoer", "aud": "harbor", "exp": now - 300}, secret, algorithm="HS256"
    )
    async with aiohttp.ClientSession() as http:
        late = Streamable(http, h.url + "/mcp")
        late.headers = {"authorization": f"Bearer {expired}"}
        status, _, _ = await late.post(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                },
            }
        )
        assert status == 401
        carol = Streamable(http, h.url + "/mcp")
        carol.headers = {"authorization": f"Bearer {good}"}
        with anyio.fail_after(30):
            await carol.initialize()
            listed = (await carol.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))[2][0]["result"]["tools"]
            assert [t["name"] for t in listed] == ["everything__echo"]
            assert text_of((await carol.call(2, "everything__echo", {"text": "jwt"}))[-1]) == "jwt"
