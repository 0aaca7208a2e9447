"""One bad upstream or one bad request never hurts anyone else: the reproductions of issue 17, end to end.

Each test starts the real processes (the gateway or translate, real stdio children, a real remote Streamable
HTTP server) and speaks the wire directly (aiohttp) where the SDK would hide what matters: statuses, ids,
timing, audit lines.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import mcp.types as types
import pytest
from mcp import Client

from tests.conftest import FIXTURE_SERVER, ROOT, HubProcess, ServerProcess, Translate, free_port, node_env
from tests.e2e.rawclient import INIT_PARAMS, LegacySSE, Streamable, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

NAMED = ROOT / "tests" / "fixtures" / "named_server.py"
FIXTURE = f"""
    command: ${{HARBOR_PYTHON}}
    args: ["{FIXTURE_SERVER}"]"""


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


class RemoteFixture(ServerProcess):
    """The test everything-server served natively over the SDK's Streamable HTTP (resumable, polling)."""

    name = "remote"

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._launch([sys.executable, str(FIXTURE_SERVER), "--http", str(self.port)], log_dir, None)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with __import__("socket").create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"remote fixture did not listen:\n{self.log()}")


@pytest.fixture
def remote(tmp_path: Path) -> AsyncIterator[RemoteFixture]:
    server = RemoteFixture(tmp_path)
    yield server  # type: ignore[misc]
    server.stop()


def config(servers: str, gateway: str = "") -> str:
    return f"mcpServers:\n  everything:{FIXTURE}\n{servers}\ngateway:\n  host: 127.0.0.1\n{gateway}\n"


async def _tools(client: Streamable) -> list[str]:
    status, _, messages = await client.post({"jsonrpc": "2.0", "id": "l", "method": "tools/list"})
    assert status == 200, (status, messages)
    return [t["name"] for t in messages[-1]["result"]["tools"]]


# --- 1. a name clash inside one upstream is that upstream's problem ----------------------------------------


async def test_a_name_clash_inside_one_server_leaves_out_only_its_names(
    hub: type[HubProcess], http: aiohttp.ClientSession
) -> None:
    mimic = f"""  mimic:
    command: ${{HARBOR_PYTHON}}
    args: ["{NAMED}", "get.weather", "get_weather-f65d4328", "fine", "prompt:p.one", "prompt:p_one-{_hash("p.one")}"]
"""
    h = hub(config(mimic))
    client = Streamable(http, h.url + "/mcp")
    await client.initialize()
    names = await _tools(client)
    assert "everything__echo" in names and "mimic__fine" in names
    assert not [n for n in names if n.startswith("mimic__get")], names  # both clashing names are left out
    reply = await client.call(1, "everything__echo", {"text": "others untouched"})
    assert text_of(reply[-1]) == "others untouched"
    status, _, prompts = await client.post({"jsonrpc": "2.0", "id": 2, "method": "prompts/list"})
    assert status == 200 and "everything__test_simple_prompt" in [p["name"] for p in prompts[-1]["result"]["prompts"]]
    assert not [p for p in prompts[-1]["result"]["prompts"] if p["name"].startswith("mimic__p")]
    reply = await client.call(3, "mimic__get_weather-f65d4328", {})
    assert reply[-1]["error"]["code"] == -32602  # not routed to either of the two
    async with http.get(h.url + "/readyz?strict=1") as resp:
        ready = await resp.json()
    assert resp.status == 200 and ready["servers"]["mimic"]["state"] == "ready"
    degraded = ready["servers"]["mimic"]["degraded"]
    assert "'get.weather' and 'get_weather-f65d4328'" in degraded and "mimic__get_weather-f65d4328" in degraded
    assert "prompts" in degraded and "degraded" not in ready["servers"]["everything"]
    async with http.get(h.url + "/") as resp:
        page = await resp.text()
    assert "degraded" in page and "get_weather-f65d4328" in page
    assert "name_clash" in h.log()


def _hash(name: str) -> str:
    from gateway.core.naming import public_name

    return public_name("mimic", name).rsplit("-", 1)[1]


# --- 2. a remote upstream that polls its SSE streams -------------------------------------------------------


async def test_a_remote_that_closes_its_stream_mid_call_is_resumed_and_nothing_leaks(
    hub: type[HubProcess], remote: RemoteFixture
) -> None:
    h = hub(config(f"  remote:\n    url: {remote.url}/mcp\n"))
    elicited: list[str] = []

    async def elicit(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        elicited.append(params.message)
        return types.ElicitResult(action="accept", content={"username": "ada", "email": "ada@example.com"})

    with anyio.fail_after(20):
        async with Client(h.url + "/servers/remote/mcp", mode="legacy") as client:
            started = time.monotonic()
            result = await client.call_tool("test_reconnection", {})
            assert result.content[0].text == "Reconnection test completed"  # type: ignore[union-attr]
            assert time.monotonic() - started < 5
        # the call left nothing in flight: a later session's server→client request is routed to it alone
        async with Client(h.url + "/mcp", mode="legacy", elicitation_callback=elicit) as client:
            result = await client.call_tool("remote__test_elicitation", {"message": "proceed?"})
            assert not result.is_error and elicited == ["proceed?"]
            assert "ada@example.com" in result.content[0].text  # type: ignore[union-attr]


@pytest.mark.node
def test_conformance_suite_passes_through_a_url_docked_upstream(
    hub: type[HubProcess], remote: RemoteFixture, tmp_path: Path
) -> None:
    h = hub(config(f"  remote:\n    url: {remote.url}/mcp\n"))
    argv = ["conformance", "server", "--url", h.url + "/servers/remote/mcp", "--suite", "all"]
    done = subprocess.run(
        [*argv, "--spec-version", "2025-11-25"],
        capture_output=True,
        text=True,
        timeout=400,
        env=node_env(tmp_path),
        cwd=tmp_path,
    )
    summary = done.stdout[done.stdout.find("=== SUMMARY ===") :]
    assert done.returncode == 0, summary or done.stderr[-3000:]
    assert "0 failed" in summary.splitlines()[-1], summary


# --- 3. a duplicate request id -----------------------------------------------------------------------------


@pytest.mark.parametrize("front", ["translate", "gateway"])
async def test_a_duplicate_request_id_is_refused_and_the_original_still_gets_its_reply(
    front: str, translate: type[Translate], hub: type[HubProcess], http: aiohttp.ClientSession
) -> None:
    if front == "translate":
        url, tool = translate().url + "/mcp", "sleep"
    else:
        url, tool = hub(config("")).url + "/mcp", "everything__sleep"
    client = Streamable(http, url)
    await client.initialize()
    original = asyncio.ensure_future(client.call(7, tool, {"ms": 600}))
    await asyncio.sleep(0.2)
    duplicate = await client.call(7, tool, {"ms": 1})
    assert duplicate[-1]["id"] == 7 and duplicate[-1]["error"]["code"] == -32600
    assert "already in flight" in duplicate[-1]["error"]["message"]
    with anyio.fail_after(10):
        reply = await original
    assert reply[-1]["id"] == 7 and "slept 600" in text_of(reply[-1])
    again = await client.call(7, tool, {"ms": 1})  # the id is free again
    assert "result" in again[-1]


async def test_a_duplicate_id_on_legacy_sse_keeps_the_original_reply(
    hub: type[HubProcess], http: aiohttp.ClientSession
) -> None:
    h = hub(config(""))
    sse = LegacySSE(http, h.url)
    await sse.connect()
    try:
        await sse.initialize()
        original = asyncio.ensure_future(sse.call(5, "everything__sleep", {"ms": 500}))
        await asyncio.sleep(0.2)
        status = await sse.send(
            {
                "jsonrpc": "2.0",
                "id": 5,
                "method": "tools/call",
                "params": {"name": "everything__echo", "arguments": {"text": "dup"}},
            }
        )
        assert status == 202
        with anyio.fail_after(10):
            first = await original
            while not [m for m in sse.other if m.get("id") == 5]:
                await asyncio.sleep(0.05)
        # one of the two replies with id 5 is the original's result; the other is the duplicate's refusal
        replies = [first, *[m for m in sse.other if m.get("id") == 5]]
        assert any("result" in r and "slept 500" in text_of(r) for r in replies), replies
        assert any("error" in r and "already in flight" in r["error"]["message"] for r in replies), replies
    finally:
        await sse.close()


# --- 4. nesting: decoder and encoder agree -----------------------------------------------------------------


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"a": value}
    return value


def _nested_call(request_id: int, tool: str, depth: int) -> bytes:
    """A tools/call whose arguments nest `depth` objects, written by hand (encoders refuse such depths)."""
    arguments = '{"a":' * depth + '"bottom"' + "}" * depth
    return f'{{"jsonrpc":"2.0","id":{request_id},"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}'.encode()


@pytest.mark.parametrize("front", ["translate", "gateway"])
async def test_deeply_nested_arguments_get_a_clear_error_and_leave_nothing_in_flight(
    front: str, translate: type[Translate], hub: type[HubProcess], http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    if front == "translate":
        base, tool = translate().url, "echo"
    else:
        base, tool = hub(config("", f"  audit:\n    path: {audit}\n")).url, "everything__echo"
    client = Streamable(http, base + "/mcp")
    await client.initialize()
    for depth in (254, 600, 1023, 1100):
        status, _, messages = await client.post(_nested_call(9, tool, depth))
        assert status == 400, (depth, status)
        error = messages[-1]
        assert error["error"]["code"] == -32600 and "nested more than 200 levels" in error["error"]["message"]
        assert error["id"] == 9
    fine = await client.call(9, tool, {"text": "id 9 is free", "deep": _nested(150)})
    assert text_of(fine[-1]) == "id 9 is free"
    if front == "gateway":
        async with http.get(base + "/metrics") as resp:
            metrics = await resp.text()
        assert 'harbor_calls_in_flight{server="everything"} 0.0' in metrics
        async with http.get(base + "/") as resp:
            assert "nested more than 200 levels" in await resp.text()  # shown among the recent errors


# --- 5. every call audited -----------------------------------------------------------------------------------

AUDITED = """
  auth:
    tokens:
      - {token: "${ALICE_TOKEN}", identity: alice, scopes: [analyst]}
      - {token: "${BOB_TOKEN}", identity: bob}
  policies:
    - {scopes: [analyst], servers: ["*"], tools: ["*"]}
    - {identities: [bob], servers: ["everything"], tools: ["echo"]}
  rate_limits:
    per_identity_tool: {rate: 0.1, burst: 2}
  audit:
    path: AUDIT_PATH
"""
TOKENS = {"ALICE_TOKEN": "alice-token-0123456789", "BOB_TOKEN": "bob-token-0123456789ab"}


async def test_every_tools_call_is_audited_with_its_outcome(
    hub: type[HubProcess], http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    h = hub(config("", AUDITED.replace("AUDIT_PATH", str(audit))), env=TOKENS)
    alice, bob = Streamable(http, h.url + "/mcp"), Streamable(http, h.url + "/mcp")
    alice.headers = {"authorization": f"Bearer {TOKENS['ALICE_TOKEN']}"}
    bob.headers = {"authorization": f"Bearer {TOKENS['BOB_TOKEN']}"}
    await alice.initialize()
    await bob.initialize()
    assert "result" in (await alice.call(1, "everything__echo", {"text": "ok"}))[-1]
    assert (await alice.call(2, "everything__no_such_tool", {}))[-1]["error"]["code"] == -32602
    hidden = (await bob.call(3, "everything__sleep", {"ms": 1}))[-1]["error"]
    assert hidden["code"] == -32602 and hidden["message"] == "Unknown tool: everything__sleep"  # looks unknown
    status, _, invalid = await alice.post(
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "everything__echo", "arguments": 5}}
    )
    assert status == 200 and invalid[-1]["error"]["code"] == -32602 and "`arguments`" in invalid[-1]["error"]["message"]
    await alice.call(5, "everything__echo", {"text": "second"})
    limited = (await alice.call(6, "everything__echo", {"text": "third"}))[-1]["error"]
    assert limited["code"] == -32029
    lines = await _audit_lines(audit, 6)
    outcomes = [(line["identity"], line["tool"], line["outcome"]) for line in lines]
    assert outcomes == [
        ("alice", "echo", "ok"),
        ("alice", "everything__no_such_tool", "unknown_tool"),
        ("bob", "sleep", "denied"),
        ("alice", "echo", "invalid"),
        ("alice", "echo", "ok"),
        ("alice", "echo", "rate_limited"),
    ], outcomes
    assert lines[2]["server"] == "everything" and lines[1]["server"] == ""


async def _audit_lines(path: Path, count: int) -> list[dict[str, Any]]:
    """The audit file's records once `count` are there (lines are written just after each reply leaves)."""
    with anyio.fail_after(5):
        while not path.exists() or len(path.read_text().splitlines()) < count:
            await asyncio.sleep(0.02)
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- 6. Accept: text/event-stream alone --------------------------------------------------------------------


@pytest.mark.parametrize("front", ["translate", "gateway"])
async def test_sse_only_clients_get_headers_and_reply_at_once(
    front: str, translate: type[Translate], hub: type[HubProcess], http: aiohttp.ClientSession
) -> None:
    if front == "translate":
        url, tool = translate().url + "/mcp", "echo"  # keep-alive stays at its 15 s default
    else:
        url, tool = hub(config("")).url + "/mcp", "everything__echo"
    client = Streamable(http, url)
    await client.initialize()
    client.accept = "text/event-stream"
    started = time.monotonic()
    reply = await client.call(1, tool, {"text": "now"})
    assert text_of(reply[-1]) == "now" and time.monotonic() - started < 2
    headers = {"content-type": "application/json", "accept": "text/event-stream", "mcp-session-id": client.session_id}
    body = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": tool.replace("echo", "sleep"), "arguments": {"ms": 3000}},
    }
    started = time.monotonic()
    async with http.post(url, json=body, headers=headers) as resp:
        assert resp.status == 200 and resp.headers["content-type"].startswith("text/event-stream")
        assert time.monotonic() - started < 1.5  # headers flushed before the slow call ends
        await resp.read()


# --- 7. legacy /message batches ------------------------------------------------------------------------------


async def _legacy(http: aiohttp.ClientSession, base: str, version: str) -> LegacySSE:
    sse = LegacySSE(http, base)
    await sse.connect()
    await sse.request(0, "initialize", {**INIT_PARAMS, "protocolVersion": version})
    await sse.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    return sse


async def test_legacy_message_batches_follow_the_session_version_and_are_capped(
    hub: type[HubProcess], http: aiohttp.ClientSession
) -> None:
    h = hub(config(""))
    modern = await _legacy(http, h.url, "2025-11-25")
    old = await _legacy(http, h.url, "2025-03-26")
    try:
        batch = [{"jsonrpc": "2.0", "id": i, "method": "tools/list"} for i in range(1, 4)]
        async with http.post(h.url + modern.endpoint, json=batch) as resp:  # type: ignore[operator]
            assert resp.status == 400 and "not part of protocol 2025-11-25" in (await resp.json())["error"]["message"]
        too_many = [{"jsonrpc": "2.0", "id": i, "method": "ping"} for i in range(101)]
        async with http.post(h.url + old.endpoint, json=too_many) as resp:  # type: ignore[operator]
            assert resp.status == 400 and "limit of 100" in (await resp.json())["error"]["message"]
        # 1,100 replies to the caller's own requests, read promptly: the stream is never cut
        for start in range(0, 1100, 100):
            batch = [{"jsonrpc": "2.0", "id": 1000 + i, "method": "tools/list"} for i in range(start, start + 100)]
            assert await old.send(batch) == 202  # type: ignore[arg-type]
        with anyio.fail_after(30):
            while len([m for m in old.other if isinstance(m.get("id"), int) and m["id"] >= 1000]) < 1100:
                await asyncio.sleep(0.05)
        assert old._task is not None and not old._task.done()
        assert "result" in await old.request("after", "ping")
    finally:
        await modern.close()
        await old.close()


# --- 8. invalid params never reach a shared child ----------------------------------------------------------

INVALID = [
    ("tools/call", {"name": "NAME", "arguments": 5}, "`arguments`"),
    ("tools/call", {"name": 5}, "`name`"),
    ("tools/call", {"name": "NAME", "_meta": {"progressToken": True}}, "progressToken"),
    ("resources/read", {"uri": 7}, "`uri`"),
    ("prompts/get", {"name": "test_prompt_with_arguments", "arguments": {"arg1": 1}}, "arguments.arg1"),
    ("completion/complete", {"ref": {"type": "ref/nothing"}, "argument": {"name": "a", "value": "b"}}, "ref.type"),
    ("logging/setLevel", {"level": "loud"}, "`level`"),
    ("tools/list", {"cursor": 3}, "`cursor`"),
]


@pytest.mark.parametrize("front", ["translate", "gateway"])
async def test_params_of_the_wrong_shape_are_refused_before_the_shared_child(
    front: str, translate: type[Translate], hub: type[HubProcess], http: aiohttp.ClientSession
) -> None:
    url = translate().url + "/mcp" if front == "translate" else hub(config("")).url + "/servers/everything/mcp"
    busy, client = Streamable(http, url), Streamable(http, url)
    await busy.initialize()
    await client.initialize()
    pid = text_of((await client.call("p", "whoami", {}))[-1])
    other = asyncio.ensure_future(busy.call("b", "sleep", {"ms": 800}))
    for n, (method, params, field) in enumerate(INVALID):
        params = {k: ("echo" if v == "NAME" else v) for k, v in params.items()}
        status, _, messages = await client.post({"jsonrpc": "2.0", "id": n, "method": method, "params": params})
        assert status == 200 and messages[-1]["id"] == n, (method, status, messages)
        assert messages[-1]["error"]["code"] == -32602 and field in messages[-1]["error"]["message"], messages
    with anyio.fail_after(10):
        assert "slept 800" in text_of((await other)[-1])  # the other session's call was never disturbed
    assert text_of((await client.call("q", "whoami", {}))[-1]) == pid  # same child: nothing crashed


# --- 9. what probes reveal -----------------------------------------------------------------------------------

PROBED = """
  auth:
    tokens:
      - {token: "${ALICE_TOKEN}", identity: alice, scopes: [analyst]}
      - {token: "${OPS_TOKEN}", identity: ops, scopes: ["harbor:admin"]}
  policies:
    - {scopes: [analyst], servers: ["everything"], tools: ["*"]}
  rate_limits:
    per_identity: {rate: 0.1, burst: 1}
"""
PROBE_TOKENS = {"ALICE_TOKEN": "alice-token-0123456789", "OPS_TOKEN": "ops-token-0123456789abc"}


async def test_probes_and_metrics_reveal_names_only_to_admins(
    hub: type[HubProcess], http: aiohttp.ClientSession
) -> None:
    h = hub(config(f"  secret-server:{FIXTURE}\n", PROBED), env=PROBE_TOKENS)
    bearer = {name: {"authorization": f"Bearer {token}"} for name, token in PROBE_TOKENS.items()}
    for headers in ({}, bearer["ALICE_TOKEN"], {"authorization": "Bearer wrong-token-0123456789"}):
        async with http.get(h.url + "/readyz", headers=headers) as resp:
            body = await resp.json()
        assert resp.status == 200 and body["servers"] == {"total": 2, "ready": 2}, body
        assert "secret-server" not in json.dumps(body)
    async with http.get(h.url + "/readyz", headers=bearer["OPS_TOKEN"]) as resp:
        body = await resp.json()
    assert body["servers"]["secret-server"]["state"] == "ready"
    alice = Streamable(http, h.url + "/mcp")
    alice.headers = bearer["ALICE_TOKEN"]
    await alice.initialize()
    await alice.call(1, "everything__echo", {"text": "1"})
    assert (await alice.call(2, "everything__echo", {"text": "2"}))[-1]["error"]["code"] == -32029
    async with http.get(h.url + "/metrics") as resp:
        metrics = await resp.text()
    assert "harbor_rate_limited_total 1.0" in metrics and "alice" not in metrics
    # a server hidden from an identity answers exactly like one that does not exist
    answers = []
    for name in ("secret-server", "no-such-server"):
        hidden = Streamable(http, h.url + f"/servers/{name}/mcp")
        hidden.headers = bearer["ALICE_TOKEN"]
        status, _, messages = await hidden.post(
            {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT_PARAMS}
        )
        answers.append((status, messages[-1]["error"]["message"].replace(name, "NAME")))
    assert answers[0] == answers[1] and answers[0][0] == 404
