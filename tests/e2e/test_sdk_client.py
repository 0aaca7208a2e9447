"""The `mcp` SDK's own Client, a third-party implementation, through both transports of translate."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import anyio
import anyio.abc
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


async def test_sdk_client_in_auto_mode_speaks_the_modern_era(shared_translate: Translate) -> None:
    with anyio.fail_after(30):
        async with Client(shared_translate.url + "/mcp") as client:  # auto: tries 2026-07-28 first, and it works
            assert _text(await client.call_tool("echo", {"text": "auto"})) == "auto"
            assert client.protocol_version == "2026-07-28"


async def test_sdk_client_over_legacy_sse(shared_translate: Translate) -> None:
    with anyio.fail_after(30):
        transport = sse_client(shared_translate.url + "/sse")
        async with Client(transport, mode="legacy", sampling_callback=_sampling, list_roots_callback=_roots) as client:
            await _exercise(client)


class _CuttingProxy:
    """A loopback TCP proxy that hangs up the first connection carrying a progress notification downstream:
    a network drop in the middle of a POST's SSE answer, as a real client would meet it."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.cut = 0
        self.port = 0

    async def serve(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        task_status.started()
        await listener.serve(self._handle)

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        server = await anyio.connect_tcp("127.0.0.1", self.upstream_port)
        async with client, server, anyio.create_task_group() as group:

            async def upstream() -> None:
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    async for chunk in client:  # a client that resets its side is just a closed connection
                        await server.send(chunk)
                group.cancel_scope.cancel()

            async def downstream() -> None:
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    async for chunk in server:
                        await client.send(chunk)
                        if not self.cut and b"notifications/progress" in chunk:
                            self.cut += 1
                            group.cancel_scope.cancel()  # both sockets close: the client sees the stream drop
                            return
                group.cancel_scope.cancel()

            group.start_soon(upstream)
            group.start_soon(downstream)


async def test_sdk_client_resumes_a_dropped_call_stream(shared_translate: Translate) -> None:
    """The SDK reconnects with Last-Event-ID after the drop and gets the rest of the call, each progress once."""
    proxy = _CuttingProxy(int(shared_translate.url.rsplit(":", 1)[1]))
    updates: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(progress)

    async with anyio.create_task_group() as group:
        await group.start(proxy.serve)
        with anyio.fail_after(20):
            async with Client(f"http://127.0.0.1:{proxy.port}/mcp", mode="legacy") as client:  # resumption is 2025
                result = await client.call_tool(
                    "progress", {"steps": 4, "delay_ms": 300}, progress_callback=on_progress
                )
        group.cancel_scope.cancel()
    assert proxy.cut == 1
    assert _text(result) == "done 4 steps"
    assert updates == [1, 2, 3, 4]
