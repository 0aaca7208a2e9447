"""Property-based fuzzing of the JSON-RPC layer and of the HTTP transports over memory upstreams.

Fixed seed (`derandomize`) and a bounded example count in `make test`; `make soak` runs the same properties
with `HARBOR_FUZZ_EXAMPLES` examples. The properties: decoding and checking a body never raises anything but
the gateway's own errors; an HTTP request never gets a 5xx, a refused request's error carries its id when it
had one, and whatever was sent, the session (or a new one) still serves a normal call afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core import jsonrpc, shapes
from gateway.core.errors import GatewayError
from tests.gateway.stack import Stack, messages

EXAMPLES = int(os.environ.get("HARBOR_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,  # the same examples on every run and every machine: no replay of earlier failures
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

METHODS = [
    "initialize", "tools/list", "tools/call", "prompts/get", "prompts/list", "resources/read", "resources/list",
    "resources/subscribe", "resources/unsubscribe", "resources/templates/list", "completion/complete",
    "logging/setLevel", "ping", "notifications/cancelled", "notifications/progress", "notifications/initialized",
    "no/such", "",
]  # fmt: skip
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
ids = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.text(max_size=4)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.just([])
)
params = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.one_of(st.sampled_from(["mem__echo", "echo", "mem__nope"]), json_values),
            "arguments": json_values,
            "uri": json_values,
            "cursor": json_values,
            "level": st.sampled_from(["debug", "loud"]) | json_values,
            "_meta": json_values,
            "requestId": ids,
            "protocolVersion": st.sampled_from(["2025-11-25", "1999-01-01"]) | json_values,
        },
    ),
)
messages_strategy = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0"]) | json_values,
        "id": ids,
        "method": st.sampled_from(METHODS) | json_values,
        "params": params,
        "result": json_values,
        "error": json_values,
    },
)
bodies = st.one_of(
    messages_strategy.map(lambda m: json.dumps(m).encode()),
    st.lists(messages_strategy, max_size=3).map(lambda m: json.dumps(m).encode()),
    st.binary(max_size=64),
    st.integers(1, 400).map(
        lambda d: b'{"jsonrpc":"2.0","id":1,"method":"ping","params":' + b"[" * d + b"]" * d + b"}"
    ),
)
accepts = st.sampled_from(
    ["application/json, text/event-stream", "text/event-stream", "application/json", "*/*", "text/html", ""]
)


@FUZZ
@given(body=bodies)
def test_decoding_and_checking_any_body_raises_only_gateway_errors(body: bytes) -> None:
    try:
        decoded = jsonrpc.decode(body)
        for message in decoded if isinstance(decoded, list) else [decoded]:
            kind = jsonrpc.classify(message)
            if kind == "request":
                shapes.check_request(message)
            elif kind == "notification":
                shapes.check_notification(message)
            else:
                shapes.check_response(message)
            jsonrpc.encode(message)  # whatever was accepted can be written again
    except GatewayError as exc:
        assert exc.code in (-32700, -32600, -32602) and exc.message


@pytest.fixture(scope="module")
def loop() -> Any:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def stack(loop: asyncio.AbstractEventLoop) -> Any:
    s = loop.run_until_complete(_started())
    yield s
    loop.run_until_complete(s.close())


async def _started() -> Stack:
    s = Stack()
    await s.ready()
    return s


async def _still_serves(stack: Stack, session: str | None) -> None:
    sid = session or await stack.session()
    reply = await stack.post(
        sid,
        {
            "jsonrpc": "2.0",
            "id": "check",
            "method": "tools/call",
            "params": {"name": "mem__echo", "arguments": {"text": "alive"}},
        },
    )
    if reply.status_code == 404:  # the fuzzed request ended that session (DELETE-like input cannot, but be exact)
        sid = await stack.session()
        reply = await stack.post(
            sid,
            {
                "jsonrpc": "2.0",
                "id": "check",
                "method": "tools/call",
                "params": {"name": "mem__echo", "arguments": {"text": "alive"}},
            },
        )
    assert reply.status_code == 200, reply.text
    assert messages(reply)[-1]["result"]["content"][0]["text"] == "alive"


@FUZZ
@given(
    body=bodies, accept=accepts, with_session=st.booleans(), version=st.sampled_from([None, "2025-11-25", "2024-01-01"])
)
def test_the_streamable_http_transport_never_fails_and_keeps_serving(
    stack: Stack, loop: asyncio.AbstractEventLoop, body: bytes, accept: str, with_session: bool, version: str | None
) -> None:
    async def run() -> None:
        session = await stack.session() if with_session else None
        headers = {"accept": accept, "content-type": "application/json"}
        if session:
            headers["mcp-session-id"] = session
        if version:
            headers["mcp-protocol-version"] = version
        response = await asyncio.wait_for(stack.client.post("/mcp", content=body, headers=headers), 10)
        assert response.status_code < 500, (response.status_code, response.text)
        assert response.status_code in (200, 202, 400, 404, 406, 413, 415), response.status_code
        if response.status_code == 400 and response.text:
            error = json.loads(response.text)
            try:
                sent = json.loads(body)
            except ValueError:
                sent = None
            if (
                isinstance(sent, dict)
                and isinstance(sent.get("id"), int | str)
                and not isinstance(sent.get("id"), bool)
            ):
                assert error["id"] == sent["id"], (error, sent)
        await _still_serves(stack, session)

    loop.run_until_complete(run())


@FUZZ
@given(body=bodies)
def test_the_legacy_message_endpoint_never_fails(stack: Stack, loop: asyncio.AbstractEventLoop, body: bytes) -> None:
    async def run() -> None:
        session = stack.manager.open("sse")
        stack.manager.sessions[session.id] = session
        try:
            response = await asyncio.wait_for(
                stack.client.post(
                    f"/message?session_id={session.id}", content=body, headers={"content-type": "application/json"}
                ),
                10,
            )
            assert response.status_code in (202, 400, 413), (response.status_code, response.text)
        finally:
            await stack.manager.close(session.id, "fuzz done")

    loop.run_until_complete(run())
