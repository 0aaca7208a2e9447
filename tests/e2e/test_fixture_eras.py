"""The test everything-server in both protocol eras, over stdio, with the `mcp` SDK's own `Client` — no gateway.

The fixture is what the bridge's conformance runs stand on, so it is proved here on its own: as a
modern-capable child (the SDK's dual-era stdio loop) its input-required tools answer 2026-07-28 requests with
`InputRequiredResult` rounds that the SDK client completes through its callbacks; as a handshake-era peer
(either mode) the same tools make real sampling / elicitation / roots requests, each naming its input key in
`params._meta["harbor/inputKey"]`; and `--legacy-only` behaves like a pre-2026 server: `server/discover` gets
-32601 and the connection then serves `initialize`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp.types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from tests.conftest import FIXTURE_SERVER

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

MODERN = "2026-07-28"
KEY_META = "harbor/inputKey"


class Callbacks:
    """Client-side answers, recording every request the server made (with its input-key hint)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []  # (method, harbor/inputKey)

    @staticmethod
    def _key(params: Any) -> str | None:
        meta = getattr(params, "meta", None) or {}
        return meta.get(KEY_META)

    async def sampling(self, context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        self.seen.append(("sampling/createMessage", self._key(params)))
        prompt = params.messages[0].content
        text = prompt.text if isinstance(prompt, types.TextContent) else "?"
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=f"echo:{text}"), model="fake"
        )

    async def elicitation(self, context: Any, params: Any) -> types.ElicitResult:
        self.seen.append(("elicitation/create", self._key(params)))
        properties = set(params.requested_schema.get("properties", {}))
        content: dict[str, Any] = {}
        if "name" in properties:
            content["name"] = "Alice"
        if "color" in properties:
            content["color"] = "blue"
        if "ok" in properties:
            content["ok"] = True
        if "context" in properties:
            content["context"] = "tests"
        if "username" in properties:
            content.update(username="alice", email="alice@example.com")
        return types.ElicitResult(action="accept", content=content)

    async def roots(self, context: Any) -> types.ListRootsResult:
        self.seen.append(("roots/list", self._key(context)))
        return types.ListRootsResult(roots=[types.Root(uri="file:///tmp/harbor-root", name="root")])


def _params(*extra: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=[str(FIXTURE_SERVER), *extra], env={**os.environ, **(env or {})}
    )


@asynccontextmanager
async def _client(
    mode: str, *extra: str, callbacks: Callbacks | None = None, env: dict[str, str] | None = None, **options: Any
) -> AsyncIterator[Client]:
    if callbacks is not None:
        options.update(
            sampling_callback=callbacks.sampling,
            elicitation_callback=callbacks.elicitation,
            list_roots_callback=callbacks.roots,
        )
    with anyio.fail_after(30):
        async with Client(_params(*extra, env=env), mode=mode, **options) as client:  # type: ignore[arg-type]
            yield client


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent), result
    return block.text


# The input-required tools, the text each returns once answered by `Callbacks`, and the keys it asks.
ROUNDS = [
    ("test_input_required_result_elicitation", "Hello, Alice!", {"user_name"}),
    ("test_input_required_result_sampling", "The model answered: echo:What is the capital of France?", None),
    ("test_input_required_result_list_roots", "Client roots: file:///tmp/harbor-root", None),
    ("test_input_required_result_request_state", "state-ok", {"confirm"}),
    ("test_input_required_result_multiple_inputs", "name=Alice; greeting=echo:Generate a greeting", None),
    ("test_input_required_result_multi_round", "Alice likes blue", {"step1", "step2"}),
    ("test_input_required_result_capabilities", "answered: greeting, user_name", {"user_name", "greeting"}),
]


@pytest.mark.parametrize("mode", [MODERN, "legacy"])
async def test_input_required_tools_complete_through_the_clients_callbacks(mode: str) -> None:
    callbacks = Callbacks()
    async with _client(mode, callbacks=callbacks) as client:
        assert client.protocol_version == (MODERN if mode == MODERN else "2025-11-25")
        for tool, expected, _ in ROUNDS:
            assert expected in _text(await client.call_tool(tool, {})), tool
        prompt = await client.get_prompt("test_input_required_result_prompt")
        assert "Prompt with context: tests" in json.dumps(prompt.model_dump(mode="json"))
        assert _text(await client.call_tool("test_sampling", {"prompt": "ping"})) == "LLM response: echo:ping"
        elicited = _text(await client.call_tool("test_elicitation", {"message": "who?"}))
        assert elicited == 'User response: action=accept, content={"username": "alice", "email": "alice@example.com"}'
        assert json.loads(_text(await client.call_tool("list_roots", {}))) == ["file:///tmp/harbor-root"]
    methods = {method for method, _ in callbacks.seen}
    assert methods == {"sampling/createMessage", "elicitation/create", "roots/list"}


async def test_handshake_era_requests_name_their_input_keys() -> None:
    """What the bridge names its input requests by: the keys the conformance suite expects of a modern server."""
    callbacks = Callbacks()
    async with _client("legacy", callbacks=callbacks) as client:
        for tool in ("test_input_required_result_multiple_inputs", "test_input_required_result_multi_round"):
            await client.call_tool(tool, {})
        await client.get_prompt("test_input_required_result_prompt")
    elicited = [key for method, key in callbacks.seen if method == "elicitation/create"]
    assert elicited == ["user_name", "step1", "step2", "user_context"]
    assert ("sampling/createMessage", "greeting") in callbacks.seen


async def test_modern_rounds_carry_keys_and_a_sealed_state_that_changes_each_round() -> None:
    async with _client(MODERN, callbacks=Callbacks()) as client:
        session = client.session
        first = await session.call_tool("test_input_required_result_multi_round", {}, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult) and set(first.input_requests or {}) == {"step1"}
        assert first.request_state and "step1" not in first.request_state  # opaque: sealed, not plaintext JSON
        alice = {"step1": types.ElicitResult(action="accept", content={"name": "Alice"})}
        second = await session.call_tool(
            "test_input_required_result_multi_round",
            {},
            input_responses=alice,  # type: ignore[arg-type]
            request_state=first.request_state,
            allow_input_required=True,
        )
        assert isinstance(second, types.InputRequiredResult) and set(second.input_requests or {}) == {"step2"}
        assert second.request_state != first.request_state

        # a tampered state is refused before the tool runs
        with pytest.raises(MCPError) as refused:
            await session.call_tool(
                "test_input_required_result_multi_round",
                {},
                input_responses=alice,  # type: ignore[arg-type]
                request_state=first.request_state + "-TAMPERED",
                allow_input_required=True,
            )
        assert refused.value.code == types.INVALID_PARAMS

        # wrong keys without a state: asked again, not an error; extra keys beside the right one: ignored
        again = await session.call_tool(
            "test_input_required_result_elicitation",
            {},
            input_responses={"wrong_key": types.ElicitResult(action="accept", content={"x": "y"})},  # type: ignore[dict-item]
            allow_input_required=True,
        )
        assert isinstance(again, types.InputRequiredResult) and set(again.input_requests or {}) == {"user_name"}
        done = await session.call_tool(
            "test_input_required_result_elicitation",
            {},
            input_responses={  # type: ignore[arg-type]
                "user_name": types.ElicitResult(action="accept", content={"name": "Bob"}),
                "extra": types.ElicitResult(action="accept", content={"foo": "bar"}),
            },
        )
        assert _text(done) == "Hello, Bob!"


async def test_modern_requests_ask_only_for_declared_capabilities() -> None:
    """No callbacks → no capabilities in `_meta`: -32021 naming what is missing, or only what is allowed."""
    async with _client(MODERN) as bare:
        with pytest.raises(MCPError) as missing:
            await bare.call_tool("test_missing_capability", {})
        assert missing.value.code == types.MISSING_REQUIRED_CLIENT_CAPABILITY
        assert missing.value.data == {"requiredCapabilities": {"sampling": {}}}
        with pytest.raises(MCPError) as no_elicitation:
            await bare.call_tool("test_input_required_result_elicitation", {})
        assert no_elicitation.value.data == {"requiredCapabilities": {"elicitation": {}}}
        assert _text(await bare.call_tool("test_input_required_result_capabilities", {})) == "answered: (nothing)"

    async with _client(MODERN, sampling_callback=Callbacks().sampling) as sampler:
        result = await sampler.session.call_tool(
            "test_input_required_result_capabilities", {}, allow_input_required=True
        )
        assert isinstance(result, types.InputRequiredResult)
        assert {r.method for r in (result.input_requests or {}).values()} == {"sampling/createMessage"}
        assert _text(await sampler.call_tool("test_missing_capability", {})) == "sampled: echo:Say anything"


async def test_modern_logs_only_at_the_requested_level_and_listen_sees_list_changes() -> None:
    logs: list[str] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.level)

    async with _client(MODERN, logging_callback=on_log) as quiet:
        assert _text(await quiet.call_tool("test_logging_tool", {})) == "logging tool done"
    assert logs == []
    async with _client(MODERN, logging_callback=on_log, log_level="warning") as client:
        await client.call_tool("test_logging_tool", {})
        assert logs == ["warning", "error"]

        async with client.listen(tools_list_changed=True, prompts_list_changed=True) as sub:
            await client.call_tool("test_trigger_prompt_change", {})
            await client.call_tool("test_trigger_tool_change", {})
            kinds: list[str] = []
            with anyio.fail_after(5):
                async for event in sub:
                    kinds.append(type(event).__name__)
                    if len(kinds) == 2:
                        break
        assert kinds == ["PromptsListChanged", "ToolsListChanged"]


async def test_handshake_era_sends_plain_list_changed_notifications() -> None:
    seen: list[str] = []

    async def on_message(message: Any) -> None:
        root = getattr(message, "root", message)
        seen.append(getattr(root, "method", type(root).__name__))

    async with _client("legacy", message_handler=on_message) as client:
        caps = client.server_capabilities
        assert caps.tools and caps.tools.list_changed and caps.prompts and caps.prompts.list_changed
        await client.call_tool("test_trigger_tool_change", {})
        await client.call_tool("test_trigger_resource_change", {})
        with anyio.fail_after(5):
            while len(seen) < 2:
                await anyio.sleep(0.01)
    assert seen == ["notifications/tools/list_changed", "notifications/resources/list_changed"]


def _exchange(extra: list[str], messages: list[dict[str, Any]], env: dict[str, str] | None = None) -> list[dict]:
    """Send `messages` to a fresh fixture process; its replies, once every request among them is answered."""
    proc = subprocess.Popen(
        [sys.executable, str(FIXTURE_SERVER), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdin is not None and proc.stdout is not None
    watchdog = threading.Timer(30, proc.kill)  # nothing hangs forever: a silent child is killed, the test fails
    watchdog.start()
    try:
        pending = {m["id"] for m in messages if "id" in m}
        proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        proc.stdin.flush()
        replies: list[dict[str, Any]] = []
        while pending:
            line = proc.stdout.readline()
            assert line, f"the fixture closed its stdout with requests {pending} unanswered"
            replies.append(json.loads(line))
            pending.discard(replies[-1].get("id"))
        return replies
    finally:
        watchdog.cancel()
        proc.stdin.close()
        proc.wait(timeout=10)


DISCOVER = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "server/discover",
    "params": {
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    },
}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 2,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}


@pytest.mark.parametrize("how", ["flag", "env"])
def test_legacy_only_refuses_discover_then_serves_initialize(how: str) -> None:
    extra, env = (["--legacy-only"], None) if how == "flag" else ([], {"HARBOR_FIXTURE_LEGACY_ONLY": "1"})
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    replies = _exchange(extra, [DISCOVER, INITIALIZE, initialized, TOOLS_LIST], env)
    by_id = {reply.get("id"): reply for reply in replies}
    assert by_id[1]["error"]["code"] == -32601
    assert by_id[2]["result"]["protocolVersion"] == "2025-11-25"
    assert by_id[2]["result"]["capabilities"]["tools"] == {"listChanged": True}
    assert any(tool["name"] == "test_missing_capability" for tool in by_id[3]["result"]["tools"])


def test_legacy_only_refuses_any_enveloped_request_before_initialize() -> None:
    enveloped = {**TOOLS_LIST, "params": DISCOVER["params"]}
    replies = _exchange(["--legacy-only"], [enveloped, INITIALIZE])
    assert [r["error"]["code"] if "error" in r else "ok" for r in replies] == [-32601, "ok"]


def test_modern_capable_answers_discover() -> None:
    """Without the flag the same process speaks 2026-07-28 when the first request is `server/discover`."""
    (reply,) = _exchange([], [DISCOVER])
    result = reply["result"]
    assert result["supportedVersions"] == [MODERN] and result["resultType"] == "complete"
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "harbor-test-everything"
    assert result["capabilities"]["tools"]["listChanged"] is True


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_legacy_only_child_serves_sdk_clients_in_the_handshake_era(mode: str) -> None:
    """`auto` probes `server/discover`, gets -32601 and falls back to `initialize`, as the spec tells stdio
    clients to; then the input tools ask for real (what the bridge turns into rounds)."""
    callbacks = Callbacks()
    async with _client(mode, "--legacy-only", callbacks=callbacks) as client:
        assert client.protocol_version == "2025-11-25"
        assert "state-ok" in _text(await client.call_tool("test_input_required_result_request_state", {}))
        text = _text(await client.call_tool("test_input_required_result_multiple_inputs", {}))
        assert text == "name=Alice; greeting=echo:Generate a greeting; roots=file:///tmp/harbor-root"
    keys = sorted(key or "" for _, key in callbacks.seen)
    assert keys == ["client_roots", "confirm", "greeting", "user_name"]


async def test_legacy_only_missing_capability_passes_the_clients_refusal_on() -> None:
    """The tool attempts sampling; a -32021 refusal (what the bridge answers for a modern caller without the
    capability) comes back as the tool's own -32021 error, same data."""
    refusal = {"requiredCapabilities": {"sampling": {}}}

    async def refuse(context: Any, params: Any) -> types.ErrorData:
        return types.ErrorData(code=types.MISSING_REQUIRED_CLIENT_CAPABILITY, message="no sampling", data=refusal)

    async with _client("legacy", "--legacy-only", sampling_callback=refuse) as client:
        with pytest.raises(MCPError) as failed:
            await client.call_tool("test_missing_capability", {})
    assert failed.value.code == types.MISSING_REQUIRED_CLIENT_CAPABILITY and failed.value.data == refusal
