"""The `mcp` SDK's own Client, a third-party implementation, through both transports of translate."""

from __future__ import annotations

import json
from typing import Any

import anyio
import mcp.types as types
import pytest
from mcp import Client
from mcp.client.sse import sse_client

from tests.conftest import Translate

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def _sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    prompt = params.messages[0].content
    text = prompt.text if isinstance(prompt, types.TextContent) else "?"
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=f"echo:{text}"), model="fake"
    )


async def _roots(context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///tmp/harbor-root")])


async def _exercise(client: Client) -> None:
    tools = await client.list_tools()
    names = {t.name for t in tools.tools}
    assert {"echo", "sleep", "progress", "test_sampling"} <= names
    assert _text(await client.call_tool("echo", {"text": "hello"})) == "hello"

    updates: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(progress)

    result = await client.call_tool("progress", {"steps": 3, "delay_ms": 5}, progress_callback=on_progress)
    assert _text(result) == "done 3 steps" and updates == [1, 2, 3]

    sampled = await client.call_tool("test_sampling", {"prompt": "ping"})
    assert _text(sampled) == "LLM response: echo:ping"
    assert json.loads(_text(await client.call_tool("list_roots", {}))) == ["file:///tmp/harbor-root"]

    failed = await client.call_tool("test_error_handling", {})
    assert failed.is_error

    resource = await client.read_resource("test://template/7/data")
    content = resource.contents[0]
    assert isinstance(content, types.TextResourceContents) and json.loads(content.text)["id"] == "7"
    prompt = await client.get_prompt("test_prompt_with_arguments", {"arg1": "a", "arg2": "b"})
    assert prompt.messages[0].content.text == "Prompt with arguments: arg1='a', arg2='b'"  # type: ignore[union-attr]


async def test_sdk_client_over_streamable_http(shared_translate: Translate) -> None:
    with anyio.fail_after(30):
        async with Client(
            shared_translate.url + "/mcp", mode="legacy", sampling_callback=_sampling, list_roots_callback=_roots
        ) as client:
            await _exercise(client)


async def test_sdk_client_in_auto_mode_falls_back_to_the_handshake(shared_translate: Translate) -> None:
    with anyio.fail_after(30):
        async with Client(shared_translate.url + "/mcp") as client:
            assert _text(await client.call_tool("echo", {"text": "auto"})) == "auto"


async def test_sdk_client_over_legacy_sse(shared_translate: Translate) -> None:
    with anyio.fail_after(30):
        transport = sse_client(shared_translate.url + "/sse")
        async with Client(transport, mode="legacy", sampling_callback=_sampling, list_roots_callback=_roots) as client:
            await _exercise(client)
