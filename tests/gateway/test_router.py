"""The router over a memory upstream: replies it cannot use fail their call at once; a client's malformed
answer to a server request still gives the server an answer it can parse."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.core.jsonrpc import Message
from gateway.session.client import ClientSession
from gateway.session.table import shared_init_params, supervised_router
from gateway.upstream.memory import MemoryUpstream, echo_server

pytestmark = pytest.mark.anyio


class _Collect:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    def put(self, message: Message) -> bool:
        self.messages.append(message)
        return True


async def _router(respond: Any) -> tuple[Any, list[MemoryUpstream], ClientSession, _Collect]:
    upstreams: list[MemoryUpstream] = []

    def spawn() -> MemoryUpstream:
        upstreams.append(MemoryUpstream(respond))
        return upstreams[-1]

    router = supervised_router("mem", spawn, shared_init_params(), 5.0, 1 << 20)
    assert router.child is not None
    await router.child.wait_ready(5)
    session = ClientSession("test")
    inbox = _Collect()
    session.attach_default(inbox)
    router.attach(session)
    return router, upstreams, session, inbox


async def test_an_unusable_reply_fails_its_call_at_once() -> None:
    router, _, session, inbox = await _router(lambda m: [] if m.get("method") == "tools/call" else echo_server(m))
    await router.from_client(
        session, {"jsonrpc": "2.0", "id": "c", "method": "tools/call", "params": {"name": "echo"}}, "request"
    )
    upstream_id = session.inflight["c"]
    router.frame_invalid(upstream_id, "nested too deeply")
    assert inbox.messages[-1]["id"] == "c" and "not valid JSON-RPC" in inbox.messages[-1]["error"]["message"]
    assert not session.inflight
    await router.child.stop()


async def test_a_malformed_client_answer_reaches_the_server_as_an_error() -> None:
    router, upstreams, session, inbox = await _router(echo_server)
    session.capabilities = {"sampling": {}}
    router.from_upstream({"jsonrpc": "2.0", "id": 77, "method": "sampling/createMessage", "params": {}})
    forwarded = inbox.messages[-1]
    await router.from_client(session, {"jsonrpc": "2.0", "id": forwarded["id"], "result": 5}, "response")
    await asyncio.sleep(0)
    answer = upstreams[-1].received[-1]
    assert (
        answer["id"] == 77
        and answer["error"]["code"] == -32603
        and "`result` must be an object" in answer["error"]["message"]
    )
    await router.child.stop()
