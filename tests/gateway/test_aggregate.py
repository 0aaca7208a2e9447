"""The merged view in-process, over memory upstreams: clashes stay local, every call is audited, bad input
never reaches a child, a duplicate id never costs the original its reply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.core.jsonrpc import Message
from gateway.core.naming import public_name
from gateway.upstream.memory import ECHO_TOOL, echo_server
from tests.gateway.stack import Stack, messages

pytestmark = pytest.mark.anyio

CRAFTED = public_name("mimic", "get.weather").removeprefix("mimic__")


def _mimic(message: Message) -> list[Message]:
    tools = [{**ECHO_TOOL, "name": n} for n in ("get.weather", CRAFTED, "fine")]
    return echo_server(message, tools)


async def _slow(message: Message) -> list[Message]:
    if message.get("method") == "tools/call":
        await asyncio.sleep(float((message["params"].get("arguments") or {}).get("text", "0")))
    return echo_server(message)


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    s = Stack({"mem": _slow, "mimic": _mimic})
    await s.ready()
    yield s
    await s.close()


def _call(request_id: Any, name: str, arguments: Any) -> Message:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


async def test_a_clash_in_one_server_leaves_its_names_out_and_is_reported(stack: Stack) -> None:
    session = await stack.session()
    listed = messages(await stack.post(session, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))[-1]
    names = [t["name"] for t in listed["result"]["tools"]]
    assert names == ["mem__echo", "mimic__fine"]
    mimic = stack.aggregator.servers["mimic"]
    assert mimic.degraded is not None and "'get.weather' and" in mimic.degraded
    assert stack.aggregator.servers["mem"].degraded is None
    reply = messages(await stack.post(session, _call(2, "mem__echo", {"text": "0"})))[-1]
    assert reply["result"]["content"][0]["text"] == "0"


async def test_refused_calls_are_audited_with_why(stack: Stack) -> None:
    session = await stack.session()
    await stack.post(session, _call(1, "mem__nope", {}))
    await stack.post(session, _call(2, "mem__echo", 5))
    await stack.post(session, _call(3, "mem__echo", {"text": "0"}))
    outcomes = [(r["server"], r["tool"], r["outcome"]) for r in stack.records]
    assert outcomes == [("", "mem__nope", "unknown_tool"), ("mem", "echo", "invalid"), ("mem", "echo", "ok")]
    assert not [m for m in stack.received("mem") if m.get("method") == "tools/call" and m["params"]["arguments"] == 5]


async def test_a_duplicate_id_is_refused_and_the_original_still_answered(stack: Stack) -> None:
    session = await stack.session()
    original = asyncio.ensure_future(stack.post(session, _call(9, "mem__echo", {"text": "0.3"})))
    await asyncio.sleep(0.1)
    duplicate = messages(await stack.post(session, _call(9, "mem__echo", {"text": "0"})))[-1]
    assert duplicate["error"]["code"] == -32600 and duplicate["id"] == 9
    reply = messages(await asyncio.wait_for(original, 5))[-1]
    assert reply["id"] == 9 and reply["result"]["content"][0]["text"] == "0.3"


async def test_too_deep_and_oversized_bodies_are_refused_with_their_id_and_noted(stack: Stack) -> None:
    session = await stack.session()
    body = (
        b'{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"mem__echo","arguments":'
        + b'{"a":' * 300
        + b"1"
        + b"}" * 302
    )
    response = await stack.post(session, body)
    assert response.status_code == 400 and messages(response)[-1]["id"] == 4
    assert stack.refusals and "nested more than" in stack.refusals[-1][1]
    ok = messages(await stack.post(session, _call(4, "mem__echo", {"text": "0"})))[-1]
    assert "result" in ok
