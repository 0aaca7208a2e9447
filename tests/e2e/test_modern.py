"""The 2026-07-28 era end to end: modern clients through translate and the gateway, onto handshake-era children
(bridged: server→client requests become input rounds) and onto children that speak the modern era themselves
(passed through), with the header rules checked on the raw wire."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import mcp.types as types
import pytest
from mcp import Client

from tests.conftest import FIXTURE_SERVER, ROOT, HubProcess, Translate

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

LEGACY = f"{sys.executable} {ROOT / 'tests' / 'fixtures' / 'legacy_asking.py'}"
MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


async def _elicit(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "Ada"})


async def _sample(context: object, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text="hello Ada"), model="m"
    )


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def post(
    http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str] | None = None, method: str = "POST"
) -> tuple[int, dict[str, str], Any]:
    base = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if isinstance(body, dict) and "method" in body:
        base |= {"mcp-protocol-version": MODERN, "mcp-method": body["method"]}
        name = (body.get("params") or {}).get("name") or (body.get("params") or {}).get("uri")
        if name and body["method"] in ("tools/call", "prompts/get", "resources/read"):
            base["mcp-name"] = name
    async with http.request(method, url, data=json.dumps(body), headers={**base, **(headers or {})}) as resp:
        text = await resp.text()
        kind = resp.headers.get("content-type", "")
        if kind.startswith("text/event-stream"):
            parsed = [
                json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:") and line[5:].strip()
            ]
        else:
            parsed = json.loads(text) if text else None
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, parsed


# --- the SDK's own modern client ---------------------------------------------------------------------------


@pytest.mark.parametrize("child", ["handshake-era", "modern"])
async def test_a_modern_sdk_client_lists_and_calls_through_translate(translate: type[Translate], child: str) -> None:
    t = translate(command=LEGACY if child == "handshake-era" else f"{sys.executable} {FIXTURE_SERVER}")
    with anyio.fail_after(60):
        async with Client(t.url + "/mcp", mode=MODERN, elicitation_callback=_elicit, sampling_callback=_sample) as c:
            assert c.protocol_version == MODERN
            names = {tool.name for tool in (await c.list_tools()).tools}
            assert "echo" in names
            assert _text(await c.call_tool("echo", {"text": "modern"})) == "modern"
            if child == "handshake-era":  # two rounds, answered by the client's own callbacks
                assert _text(await c.call_tool("greet", {})) == "Ada: hello Ada"
    assert ("server_era" in t.log()) and (("era=legacy" in t.log()) == (child == "handshake-era"))


async def test_the_gateway_serves_modern_clients_merged_and_per_server(hub: type[HubProcess]) -> None:
    config = f"""
mcpServers:
  legacy:
    command: {sys.executable}
    args: ["{ROOT / "tests" / "fixtures" / "legacy_asking.py"}"]
  everything:
    command: ${{HARBOR_PYTHON}}
    args: ["{FIXTURE_SERVER}"]
gateway:
  host: 127.0.0.1
"""
    h = hub(config)
    with anyio.fail_after(90):
        async with Client(h.url + "/mcp", mode=MODERN, elicitation_callback=_elicit, sampling_callback=_sample) as c:
            names = {tool.name for tool in (await c.list_tools()).tools}
            assert {"legacy__greet", "everything__echo"} <= names
            assert _text(await c.call_tool("legacy__greet", {})) == "Ada: hello Ada"
            assert _text(await c.call_tool("everything__echo", {"text": "x"})) == "x"
        for name in ("legacy", "everything"):
            async with Client(h.url + f"/servers/{name}/mcp", mode=MODERN) as c:
                assert _text(await c.call_tool("echo", {"text": name})) == name
        async with Client(h.url + "/mcp", mode="legacy", elicitation_callback=_elicit, sampling_callback=_sample) as c:
            assert _text(await c.call_tool("legacy__greet", {})) == "Ada: hello Ada"  # the handshake era, unchanged


async def test_both_eras_share_a_handshake_era_child_without_cross_talk(translate: type[Translate]) -> None:
    t = translate(command=LEGACY)

    async def one(index: int, mode: str) -> list[str]:
        async with Client(t.url + "/mcp", mode=mode) as c:
            return [_text(await c.call_tool("echo", {"text": f"{mode}-{index}-{n}"})) for n in range(15)]

    with anyio.fail_after(120):
        runs = await asyncio.gather(*(one(i, MODERN if i % 2 else "legacy") for i in range(16)))
    for index, replies in enumerate(runs):
        mode = MODERN if index % 2 else "legacy"
        assert replies == [f"{mode}-{index}-{n}" for n in range(15)]
    async with Client(t.url + "/mcp", mode=MODERN) as modern, Client(t.url + "/mcp", mode="legacy") as legacy:
        assert _text(await modern.call_tool("whoami", {})) == _text(await legacy.call_tool("whoami", {}))  # one child


# --- the wire rules ------------------------------------------------------------------------------------------


def _call(request_id: int, name: str, meta: Any = META, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": {"text": "w"}, **params},
    }
    if meta is not None:
        body["params"]["_meta"] = meta
    return body


async def test_the_header_and_envelope_rules_are_kept_and_every_error_names_its_request(
    translate: type[Translate], http: aiohttp.ClientSession
) -> None:
    url = translate(command=LEGACY).url + "/mcp"
    status, headers, reply = await post(http, url, _call(1, "echo"))
    assert status == 200 and reply["result"]["content"][0]["text"] == "w" and "mcp-session-id" not in headers
    assert reply["result"]["resultType"] == "complete"
    cases = [
        (_call(2, "echo", meta=None), {}, 400, -32602),
        (_call(3, "echo", meta={"io.modelcontextprotocol/protocolVersion": MODERN}), {}, 400, -32602),
        (_call(4, "echo"), {"mcp-name": "other"}, 400, -32020),
        (_call(5, "echo"), {"mcp-method": "tools/list"}, 400, -32020),
        (_call(6, "echo", meta={**META, "io.modelcontextprotocol/protocolVersion": "2025-11-25"}), {}, 400, -32020),
        ({"jsonrpc": "2.0", "id": 7, "method": "no/such", "params": {"_meta": META}}, {}, 404, -32601),
        ({"jsonrpc": "2.0", "id": 8, "method": "ping", "params": {"_meta": META}}, {}, 404, -32601),
        ({"jsonrpc": "2.0", "id": 9, "method": "initialize", "params": {"_meta": META}}, {}, 404, -32601),
    ]
    for body, extra, expected_status, code in cases:
        status, _, reply = await post(http, url, body, extra)
        assert (status, reply["error"]["code"], reply["id"]) == (expected_status, code, body["id"]), (body, reply)
    future = {**META, "io.modelcontextprotocol/protocolVersion": "2099-01-01"}
    status, _, reply = await post(http, url, _call(10, "echo", meta=future), {"mcp-protocol-version": "2099-01-01"})
    assert status == 400 and reply["error"]["code"] == -32022 and reply["error"]["data"]["supported"] == [MODERN]
    for verb in ("GET", "DELETE"):
        status, headers, _ = await post(
            http, url, {}, {"mcp-protocol-version": MODERN, "accept": "text/event-stream"}, verb
        )
        assert status == 405 and headers["allow"] == "POST"
    status, _, _ = await post(
        http, url, {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}
    )
    assert status == 202
    status, _, reply = await post(http, url, [_call(11, "echo")], {"mcp-protocol-version": MODERN})
    assert status == 400 and reply["error"]["code"] == -32600
    status, _, reply = await post(http, url, _call(12, "echo"), {"mcp-session-id": "ignored-in-this-era"})
    assert status == 200 and "result" in reply


async def test_server_discover_says_who_and_what_with_true_cache_hints(
    translate: type[Translate], http: aiohttp.ClientSession
) -> None:
    url = translate(command=LEGACY).url + "/mcp"
    status, _, reply = await post(
        http, url, {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": META}}
    )
    result = reply["result"]
    assert status == 200 and result["supportedVersions"] == [MODERN] and "tools" in result["capabilities"]
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "legacy-asking"
    assert (result["resultType"], result["ttlMs"], result["cacheScope"]) == ("complete", 0, "private")
    status, _, reply = await post(
        http, url, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": META}}
    )
    assert reply["result"]["ttlMs"] == 0 and reply["result"]["cacheScope"] == "private"


async def test_input_rounds_on_the_raw_wire_forged_and_foreign_states_and_logs(
    hub: type[HubProcess], http: aiohttp.ClientSession
) -> None:
    tokens = {"ALICE": "alice-token-0123456789", "BOB": "bob-token-0123456789ab"}
    config = f"""
mcpServers:
  legacy:
    command: {sys.executable}
    args: ["{ROOT / "tests" / "fixtures" / "legacy_asking.py"}"]
gateway:
  host: 127.0.0.1
  auth:
    tokens:
      - {{token: "${{ALICE}}", identity: alice}}
      - {{token: "${{BOB}}", identity: bob}}
"""
    h = hub(config, env=tokens)
    url = h.url + "/mcp"
    alice, bob = ({"authorization": f"Bearer {tokens[w]}"} for w in ("ALICE", "BOB"))
    capable = {**META, "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}, "sampling": {}}}
    _, _, first = await post(http, url, _call(1, "legacy__greet", meta=capable), alice)
    round1 = first["result"]
    assert round1["resultType"] == "input_required" and list(round1["inputRequests"]) == ["user_name"]
    state = round1["requestState"]
    for headers, token, words in (
        (alice, state + "x", "integrity"),
        (bob, state, "another identity"),
        (alice, "junk", "not a token"),
    ):
        status, _, refused = await post(
            http, url, _call(2, "legacy__greet", meta=capable, requestState=token, inputResponses={}), headers
        )
        assert status == 400 and refused["error"]["code"] == -32602 and words in refused["error"]["message"], refused
    answer = {"user_name": {"action": "accept", "content": {"name": "Ada"}}}
    _, _, second = await post(
        http, url, _call(3, "legacy__greet", meta=capable, requestState=state, inputResponses=answer), alice
    )
    round2 = second["result"]
    assert (
        second["id"] == 3
        and round2["resultType"] == "input_required"
        and list(round2["inputRequests"]) == ["sampling-1"]
    )
    assert round2["requestState"] != state
    sampled = {"sampling-1": {"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "m"}}
    _, _, done = await post(
        http,
        url,
        _call(4, "legacy__greet", meta=capable, requestState=round2["requestState"], inputResponses=sampled),
        alice,
    )
    assert done["result"]["content"][0]["text"] == "Ada: hi"
    _, _, stale = await post(
        http,
        url,
        _call(5, "legacy__greet", meta=capable, requestState=round2["requestState"], inputResponses=sampled),
        alice,
    )
    assert stale["error"]["code"] == -32602  # the call is over: its state names nothing any more
    _, _, missing = await post(http, url, _call(6, "legacy__greet"), alice)  # no elicitation capability declared
    assert (
        "no name" in missing["result"]["content"][0]["text"]
        and "elicitation" in missing["result"]["content"][0]["text"]
    )
    _, _, silent = await post(http, url, _call(7, "legacy__log"), alice)  # no logLevel asked: no log lines
    messages = silent if isinstance(silent, list) else [silent]
    assert [m.get("method") for m in messages] == [None] and messages[0]["result"]["content"][0]["text"] == "logged"
    loud = {**META, "io.modelcontextprotocol/logLevel": "info"}
    _, _, logged = await post(http, url, _call(8, "legacy__log", meta=loud), alice)
    assert isinstance(logged, list) and logged[0]["method"] == "notifications/message" and logged[-1]["id"] == 8


async def test_subscriptions_listen_sees_a_docked_server_go_away_on_reload(
    hub: type[HubProcess], tmp_path: Path
) -> None:
    config = f"""
mcpServers:
  keep:
    command: {sys.executable}
    args: ["{ROOT / "tests" / "fixtures" / "legacy_asking.py"}"]
  remove-me:
    command: {sys.executable}
    args: ["{ROOT / "tests" / "fixtures" / "legacy_asking.py"}"]
gateway:
  host: 127.0.0.1
"""
    h = hub(config)
    with anyio.fail_after(60):
        async with Client(h.url + "/mcp", mode=MODERN) as c:
            async with c.listen(tools_list_changed=True) as sub:
                h.config_path.write_text(config.split("  remove-me:")[0] + "gateway:\n  host: 127.0.0.1\n")
                async for event in sub:
                    assert type(event).__name__ == "ToolsListChanged"
                    break
            names = {tool.name for tool in (await c.list_tools()).tools}
            assert "keep__echo" in names and not [n for n in names if n.startswith("remove-me")]


# --- third-party modern clients ----------------------------------------------------------------------------


@pytest.mark.node
@pytest.mark.parametrize("front", ["translate", "gateway", "gateway-one"])
def test_the_inspector_in_the_modern_era_lists_and_calls(
    front: str, translate: type[Translate], hub: type[HubProcess], tmp_path: Path
) -> None:
    import subprocess

    from tests.conftest import node_env

    if front == "translate":
        url, tool = translate(command=LEGACY).url + "/mcp", "echo"
    else:
        h = hub(
            f'mcpServers:\n  legacy:\n    command: {sys.executable}\n    args: ["{ROOT / "tests" / "fixtures" / "legacy_asking.py"}"]\ngateway:\n  host: 127.0.0.1\n'
        )
        url, tool = (h.url + "/mcp", "legacy__echo") if front == "gateway" else (h.url + "/servers/legacy/mcp", "echo")
    base = ["mcp-inspector", "--cli", url, "--protocol-era", "modern", "--format", "json"]
    env = node_env(tmp_path)
    listed = subprocess.run([*base, "--method", "tools/list"], capture_output=True, text=True, timeout=90, env=env)
    assert listed.returncode == 0 and tool in listed.stdout, listed.stderr[-2000:]
    called = subprocess.run(
        [*base, "--method", "tools/call", "--tool-name", tool, "--tool-arg", "text=inspected"],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    assert called.returncode == 0, called.stderr[-2000:]
    assert json.loads(called.stdout[called.stdout.index("{") :])["result"]["content"][0]["text"] == "inspected"


async def test_a_fastmcp_proxy_of_the_gateway_shows_its_modern_clients_every_tool(hub: type[HubProcess]) -> None:
    from fastmcp import Client as FastMCPClient
    from fastmcp.server import create_proxy

    h = hub(
        f'mcpServers:\n  legacy:\n    command: {sys.executable}\n    args: ["{ROOT / "tests" / "fixtures" / "legacy_asking.py"}"]\ngateway:\n  host: 127.0.0.1\n'
    )
    proxy = create_proxy(h.url + "/mcp")  # the default: the backend mirrors the front's era (modern here)
    with anyio.fail_after(60):
        async with FastMCPClient(proxy, mode=MODERN) as client:
            names = {tool.name for tool in await client.list_tools()}
            assert {"legacy__echo", "legacy__greet"} <= names, names
            result = await client.call_tool("legacy__echo", {"text": "via fastmcp"})
            assert result.content[0].text == "via fastmcp"  # type: ignore[union-attr]


# --- progress and resource updates for a modern client, onto both kinds of child -----------------------------


@pytest.mark.parametrize("front", ["translate", "translate legacy-only", "gateway", "gateway legacy-only"])
async def test_a_modern_client_gets_progress_and_subscribed_resource_updates(
    translate: type[Translate], hub: type[HubProcess], front: str
) -> None:
    legacy = front.endswith("legacy-only")
    flag = " --legacy-only" if legacy else ""
    if front.startswith("translate"):
        url, prefix = translate(command=f"{sys.executable} {FIXTURE_SERVER}{flag}").url + "/mcp", ""
    else:
        args = f'["{FIXTURE_SERVER}"' + (', "--legacy-only"]' if legacy else "]")
        config = f"mcpServers:\n  everything:\n    command: ${{HARBOR_PYTHON}}\n    args: {args}\ngateway:\n  host: 127.0.0.1\n"
        url, prefix = hub(config).url + "/mcp", "everything__"
    seen: list[tuple[float, float | None, str | None]] = []

    async def progressed(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    with anyio.fail_after(60):
        async with Client(url, mode=MODERN) as c:
            result = await c.call_tool(prefix + "progress", {"steps": 3}, progress_callback=progressed)
            assert _text(result) == "done 3 steps"
            assert [p for p, _, _ in seen] == [1, 2, 3] and seen[-1][1] == 3, seen
            uri = next(r.uri for r in (await c.list_resources()).resources if str(r.uri).endswith("watched-resource"))
            inner = str(uri).split("/", 3)[3] if prefix else str(uri)
            async with c.listen(resource_subscriptions=[str(uri)]) as sub:
                assert _text(await c.call_tool(prefix + "touch_resource", {"uri": inner})) == "touched"
                async for event in sub:
                    assert type(event).__name__ == "ResourceUpdated" and str(event.uri) == str(uri), event
                    break


# --- concurrent input rounds, per identity --------------------------------------------------------------------


async def test_concurrent_input_rounds_of_two_identities_each_reach_their_own_child_and_answers(
    hub: type[HubProcess],
) -> None:
    """Alice and Bob at once, on per-identity and per-session children that only speak the
    handshake era (bridged: every round is a server→client request of the child) and on a child that speaks
    2026-07-28 itself (its own rounds pass through): every call gets its own caller's answers."""
    import httpx
    from mcp.client.streamable_http import streamable_http_client

    tokens = {"ALICE": "alice-token-0123456789", "BOB": "bob-token-0123456789ab"}
    asking = f'    command: {sys.executable}\n    args: ["{ROOT / "tests" / "fixtures" / "legacy_asking.py"}"]\n'
    config = (
        "mcpServers:\n"
        f"  by-identity:\n{asking}    session_mode: per-identity\n"
        f"  by-session:\n{asking}    session_mode: per-session\n"
        f'  modern:\n    command: ${{HARBOR_PYTHON}}\n    args: ["{FIXTURE_SERVER}"]\n    session_mode: per-identity\n'
        "gateway:\n  host: 127.0.0.1\n  auth:\n    tokens:\n"
        '      - {token: "${ALICE}", identity: alice}\n      - {token: "${BOB}", identity: bob}\n'
    )
    h = hub(config, env=tokens)

    async def one(who: str, n: int, tool: str, arguments: dict[str, Any]) -> tuple[str, str]:
        name = f"{who}-{n}"

        async def elicit(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
            await asyncio.sleep(0.05 * (n + 1))  # answers arrive out of order across the callers
            return types.ElicitResult(action="accept", content={"name": name, "username": name, "email": "e"})

        async def sample(context: object, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
            return types.CreateMessageResult(
                role="assistant", content=types.TextContent(type="text", text=f"hi {name}"), model="m"
            )

        headers = {"authorization": f"Bearer {tokens[who.upper()]}"}
        async with (
            httpx.AsyncClient(headers=headers, timeout=30) as http,
            Client(
                streamable_http_client(h.url + "/mcp", http_client=http),
                mode=MODERN,
                elicitation_callback=elicit,
                sampling_callback=sample,
            ) as client,
        ):
            return name, _text(await client.call_tool(tool, arguments))

    with anyio.fail_after(90):
        for tool, arguments, expected, calls in (
            # legacy_asking serves one call at a time (a second call's round would take the first's answer), so
            # one call per identity there: the two identities' children run their rounds at the same time
            ("by-identity__greet", {}, "{name}: hi {name}", (0,)),
            ("by-session__greet", {}, "{name}: hi {name}", (0,)),
            ("modern__test_elicitation", {"message": "who?"}, '"username": "{name}"', (0, 1)),
        ):
            results = await asyncio.gather(*(one(w, n, tool, arguments) for w in ("alice", "bob") for n in calls))
            for name, text in results:
                assert expected.format(name=name) in text, (tool, name, text)
