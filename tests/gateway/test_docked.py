"""A docked server's cached lists: the tool-schema index that the Mcp-Param-* checks read on every call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.core.jsonrpc import Message
from gateway.upstream.memory import ECHO_TOOL, echo_server
from tests.gateway.stack import Stack

pytestmark = pytest.mark.anyio

FIRST = {"type": "object", "properties": {"region": {"type": "string", "x-mcp-header": "Region"}}}
TOOLS = [
    {**ECHO_TOOL, "name": "twice", "inputSchema": FIRST},
    {**ECHO_TOOL, "name": "twice", "inputSchema": {"type": "object"}},  # the same name again: the first counts
    {"name": "bare"},  # no inputSchema at all
]


def _server(message: Message) -> list[Message]:
    return echo_server(message, TOOLS)


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    s = Stack({"mem": _server})
    await s.ready()
    yield s
    await s.close()


async def test_input_schema_reads_the_cached_list_and_follows_a_new_one(stack: Stack) -> None:
    server = stack.aggregator.servers["mem"]
    await server.items("tools/list")
    assert server.input_schema("twice") == FIRST
    assert server.input_schema("bare") is None and server.input_schema("missing") is None
    assert server.input_schema(["twice"]) is None  # a name that is not a string is simply unknown
    TOOLS[0] = {**ECHO_TOOL, "name": "twice", "inputSchema": {"type": "object", "title": "new"}}
    try:
        server.invalidate(("tools/list",))  # what a list_changed does
        assert server.input_schema("twice") is None  # nothing cached: nothing to check against
        await server.items("tools/list")
        assert server.input_schema("twice") == {"type": "object", "title": "new"}  # re-indexed for the new list
    finally:
        TOOLS[0] = {**ECHO_TOOL, "name": "twice", "inputSchema": FIRST}


async def test_a_list_fetched_across_a_change_is_not_cached_and_the_next_caller_asks_anew() -> None:
    """A tools/list under way when list_changed arrives may predate the change: it must not fill the cache, and
    a caller after the change must not join it (it would get the old tools and nothing would be cached)."""
    version = {"now": "old"}
    answered = asyncio.Event()

    async def slow(message: Message) -> list[Message]:
        if message.get("method") == "tools/list":
            listed = [{**ECHO_TOOL, "name": "twice", "inputSchema": {"type": "object", "title": version["now"]}}]
            await answered.wait()
            return echo_server(message, listed)
        return echo_server(message)

    s = Stack({"mem": slow})
    try:
        await s.ready()
        server = s.aggregator.servers["mem"]
        server.invalidate()
        before = asyncio.ensure_future(server.items("tools/list"))
        await asyncio.sleep(0.05)  # its request is at the server
        version["now"] = "new"
        server.invalidate(("tools/list",))  # what a list_changed does
        after = asyncio.ensure_future(server.items("tools/list"))
        await asyncio.sleep(0.05)
        answered.set()
        assert (await before)[0]["inputSchema"]["title"] == "old"  # asked before the change
        assert (await after)[0]["inputSchema"]["title"] == "new"
        assert server.input_schema("twice") == {"type": "object", "title": "new"}
    finally:
        await s.close()
