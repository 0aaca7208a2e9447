"""Modern calls bridged onto a handshake-era child in-process: rounds, retries, tokens, capabilities, logs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.core import era
from gateway.core.jsonrpc import Message
from gateway.session import bridge
from gateway.session.table import shared_init_params, supervised_router
from gateway.upstream.memory import MemoryUpstream, echo_server

pytestmark = pytest.mark.anyio


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.event = asyncio.Event()

    def put(self, message: Message) -> bool:
        self.messages.append(message)
        self.event.set()
        return True

    async def final(self) -> Message:
        async with asyncio.timeout(5):
            while not any("method" not in m for m in self.messages):
                self.event.clear()
                await self.event.wait()
        return next(m for m in self.messages if "method" not in m)


class AskingChild:
    """A handshake-era server whose `ask` tool asks the client things (over the router), then answers."""

    def __init__(self, asks: list[tuple[str, str | None]], gap: float = 0.0) -> None:
        self.asks = asks
        self.gap = gap  # seconds between two questions
        self.upstream: MemoryUpstream | None = None
        self.answers: dict[Any, Message] = {}
        self.ran = 0

    def __call__(self, message: Message) -> Any:
        if message.get("method") == "tools/call" and message["params"]["name"] == "ask":
            return self._ask(message)
        if "method" not in message:  # the client's answer to one of our questions
            self.answers[message["id"]] = message
            return []
        return echo_server(message)

    async def _ask(self, call: Message) -> list[Message]:
        self.ran += 1
        assert self.upstream is not None
        ids = []
        for n, (method, key) in enumerate(self.asks):
            if n and self.gap:
                await asyncio.sleep(self.gap)
            params: dict[str, Any] = {"message": "?"} if method == "elicitation/create" else {}
            if key:
                params["_meta"] = {bridge.KEY_META: key}
            ids.append(f"srv-{n}")
            self.upstream._listener.message_received(
                {"jsonrpc": "2.0", "id": ids[-1], "method": method, "params": params}
            )  # type: ignore[union-attr]
        async with asyncio.timeout(5):
            while not all(i in self.answers for i in ids):
                await asyncio.sleep(0.005)
        got = [self.answers[i].get("result") or self.answers[i].get("error") for i in ids]
        return [{"jsonrpc": "2.0", "id": call["id"], "result": {"content": [{"type": "text", "text": repr(got)}]}}]


async def _router(child: AskingChild) -> Any:
    def spawn() -> MemoryUpstream:
        child.upstream = MemoryUpstream(child)
        return child.upstream

    router = supervised_router("mem", spawn, shared_init_params(), 5.0, 1 << 20)
    await router.child.wait_ready(5)
    return router


def _envelope(**capabilities: Any) -> era.Envelope:
    return era.Envelope("2026-07-28", capabilities, {"name": "unit"}, None)


def _call(request_id: Any, **params: Any) -> Message:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "ask", "arguments": {}, **params},
    }


@pytest.fixture
async def calls() -> AsyncIterator[bridge.Calls]:
    yield bridge.Calls()


async def test_questions_asked_together_make_one_round_and_the_retry_never_reruns_the_tool(calls: bridge.Calls) -> None:
    child = AskingChild([("elicitation/create", "user_name"), ("sampling/createMessage", None), ("roots/list", None)])
    router = await _router(child)
    first = Inbox()
    await bridge.call_on_handshake_child(
        router, calls, "alice", _envelope(elicitation={}, sampling={}, roots={}), _call(1), first
    )
    round1 = (await first.final())["result"]
    assert round1["resultType"] == "input_required"
    assert set(round1["inputRequests"]) == {"user_name", "sampling-1", "roots-1"}
    assert "_meta" not in round1["inputRequests"]["user_name"]["params"]  # the key hint is ours, not the client's
    answers = {
        "user_name": {"action": "accept", "content": {"name": "A"}},
        "sampling-1": {"role": "assistant"},
        "roots-1": {"roots": []},
    }
    second = Inbox()
    await bridge.call_on_handshake_child(
        router,
        calls,
        "alice",
        _envelope(),
        _call(2, inputResponses=answers, requestState=round1["requestState"]),
        second,
    )
    done = await second.final()
    assert (
        done["id"] == 2
        and done["result"]["resultType"] == "complete"
        and "'name': 'A'" in done["result"]["content"][0]["text"]
    )
    assert child.ran == 1 and not calls.parked
    await router.child.stop()


async def test_a_question_sent_after_the_gathering_window_comes_in_a_further_round(calls: bridge.Calls) -> None:
    child = AskingChild([("elicitation/create", "a"), ("elicitation/create", "b")], gap=bridge.SETTLE * 10)
    router = await _router(child)
    inbox = Inbox()
    await bridge.call_on_handshake_child(router, calls, "alice", _envelope(elicitation={}), _call(1), inbox)
    round1 = (await inbox.final())["result"]
    assert list(round1["inputRequests"]) == ["a"]
    answer = {"action": "accept", "content": {"x": 1}}
    again = Inbox()
    retry = _call(2, inputResponses={"a": answer}, requestState=round1["requestState"])
    await bridge.call_on_handshake_child(router, calls, "alice", _envelope(), retry, again)
    round2 = (await again.final())["result"]
    assert round2["resultType"] == "input_required" and list(round2["inputRequests"]) == ["b"]
    last = Inbox()
    retry = _call(3, inputResponses={"b": answer}, requestState=round2["requestState"])
    await bridge.call_on_handshake_child(router, calls, "alice", _envelope(), retry, last)
    done = await last.final()
    assert done["id"] == 3 and done["result"]["resultType"] == "complete" and child.ran == 1
    await router.child.stop()


async def test_missing_answers_are_asked_again_and_bad_tokens_are_refused(calls: bridge.Calls) -> None:
    child = AskingChild([("elicitation/create", "a"), ("elicitation/create", "b")])
    router = await _router(child)
    inbox = Inbox()
    await bridge.call_on_handshake_child(router, calls, "alice", _envelope(elicitation={}), _call(1), inbox)
    token = (await inbox.final())["result"]["requestState"]
    for bad, reason in ((token + "x", "integrity"), ("nope", "not a token")):
        with pytest.raises(bridge.StateError, match=reason):
            await bridge.call_on_handshake_child(
                router, calls, "alice", _envelope(), _call(2, requestState=bad), Inbox()
            )
    with pytest.raises(bridge.StateError, match="another identity"):
        await bridge.call_on_handshake_child(router, calls, "bob", _envelope(), _call(2, requestState=token), Inbox())
    again = Inbox()
    await bridge.call_on_handshake_child(
        router,
        calls,
        "alice",
        _envelope(),
        _call(3, inputResponses={"a": {"action": "accept"}, "zz": {}}, requestState=token),
        again,
    )
    round2 = (await again.final())["result"]
    assert round2["resultType"] == "input_required" and list(round2["inputRequests"]) == ["b"]
    with pytest.raises(bridge.StateError, match="earlier round"):
        await bridge.call_on_handshake_child(router, calls, "alice", _envelope(), _call(4, requestState=token), Inbox())
    with pytest.raises(bridge.StateError, match="must be an object"):
        await bridge.call_on_handshake_child(
            router,
            calls,
            "alice",
            _envelope(),
            _call(5, inputResponses={"b": 5}, requestState=round2["requestState"]),
            Inbox(),
        )
    await router.child.stop()


async def test_an_undeclared_capability_is_refused_to_the_child_with_32021(calls: bridge.Calls) -> None:
    child = AskingChild([("sampling/createMessage", "s")])
    router = await _router(child)
    inbox = Inbox()
    await bridge.call_on_handshake_child(router, calls, "alice", _envelope(elicitation={}), _call(1), inbox)
    done = await inbox.final()
    assert (
        "-32021" in done["result"]["content"][0]["text"]
        and "requiredCapabilities" in done["result"]["content"][0]["text"]
    )
    await router.child.stop()


async def test_answers_given_up_front_are_used_without_a_round(calls: bridge.Calls) -> None:
    child = AskingChild([("elicitation/create", "user_name")])
    router = await _router(child)
    inbox = Inbox()
    supplied = {"user_name": {"action": "accept", "content": {"name": "Z"}}, "extra": {"action": "accept"}}
    await bridge.call_on_handshake_child(
        router, calls, "alice", _envelope(elicitation={}), _call(1, inputResponses=supplied), inbox
    )
    done = await inbox.final()
    assert done["result"]["resultType"] == "complete" and "'Z'" in done["result"]["content"][0]["text"]
    await router.child.stop()


async def test_a_round_nobody_answers_expires_and_the_child_gets_an_error(
    calls: bridge.Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls.states.window = 0.1
    child = AskingChild([("elicitation/create", "k")])
    router = await _router(child)
    inbox = Inbox()
    await bridge.call_on_handshake_child(router, calls, "alice", _envelope(elicitation={}), _call(1), inbox)
    await inbox.final()
    async with asyncio.timeout(5):
        while not child.answers:
            await asyncio.sleep(0.02)
    assert "error" in next(iter(child.answers.values())) and not calls.parked
    await router.child.stop()
