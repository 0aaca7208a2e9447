"""Streamable HTTP rules, checked on the wire against a real translate process and a real stdio child."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import anyio
import pytest

from tests.conftest import Translate
from tests.e2e.rawclient import INIT_PARAMS, Streamable, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_initialize_issues_a_visible_ascii_session_id_and_echoes_the_version(
    shared_translate: Translate, http: aiohttp.ClientSession
) -> None:
    client = Streamable(http, shared_translate.url + "/mcp")
    with anyio.fail_after(10):
        reply = await client.initialize({**INIT_PARAMS, "protocolVersion": "2025-06-18"})
    assert reply["result"]["protocolVersion"] == "2025-06-18"
    assert reply["result"]["serverInfo"]["name"] == "harbor-test-everything"
    assert client.session_id and all(0x21 <= ord(c) <= 0x7E for c in client.session_id)


async def test_json_reply_for_a_quick_call_and_sse_when_progress_comes_first(
    shared_translate: Translate, http: aiohttp.ClientSession
) -> None:
    client = Streamable(http, shared_translate.url + "/mcp")
    with anyio.fail_after(10):
        await client.initialize()
        _, headers, messages = await client.post(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}}}
        )
        assert headers["content-type"].startswith("application/json")
        assert text_of(messages[0]) == "hi"
        messages = await client.call(2, "progress", {"steps": 3, "delay_ms": 5}, meta={"progressToken": "tok-A"})
    progress = [m for m in messages if m.get("method") == "notifications/progress"]
    assert [p["params"]["progress"] for p in progress] == [1, 2, 3]
    assert all(p["params"]["progressToken"] == "tok-A" for p in progress)
    assert messages[-1]["id"] == 2 and text_of(messages[-1]) == "done 3 steps"


async def test_json_only_client_gets_json_even_when_progress_is_sent(
    shared_translate: Translate, http: aiohttp.ClientSession
) -> None:
    client = Streamable(http, shared_translate.url + "/mcp", accept="application/json")
    with anyio.fail_after(10):
        await client.initialize()
        status, headers, messages = await client.post(
            {
                "jsonrpc": "2.0",
                "id": 9,
                "method": "tools/call",
                "params": {"name": "progress", "arguments": {"steps": 2}, "_meta": {"progressToken": 1}},
            }
        )
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert messages == [messages[0]] and messages[0]["id"] == 9


async def test_notifications_and_responses_get_202(shared_translate: Translate, http: aiohttp.ClientSession) -> None:
    client = Streamable(http, shared_translate.url + "/mcp")
    with anyio.fail_after(10):
        await client.initialize()
        status, _, body = await client.post({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"})
    assert status == 202 and body == []


async def test_missing_session_is_400_and_unknown_session_is_404(
    shared_translate: Translate, http: aiohttp.ClientSession
) -> None:
    client = Streamable(http, shared_translate.url + "/mcp")
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    status, _, body = await client.post(call)
    assert status == 400 and "Mcp-Session-Id" in body[0]["error"]["message"]
    client.session_id = "0" * 32
    status, _, body = await client.post(call)
    assert status == 404 and body[0]["error"]["code"] == -32600


async def test_delete_ends_the_session_and_later_requests_get_404(
    shared_translate: Translate, http: aiohttp.ClientSession
) -> None:
    client = Streamable(http, shared_translate.url + "/mcp")
    with anyio.fail_after(10):
        await client.initialize()
        assert await client.delete() == 200
        status, _, _ = await client.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert status == 404


async def test_malformed_json_is_400_parse_error_and_wrong_shape_is_invalid_request(
    shared_translate: Translate, http: aiohttp.ClientSession
) -> None:
    client = Streamable(http, shared_translate.url + "/mcp")
    await client.initialize()
    status, _, body = await client.post(b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert status == 400 and body[0]["error"]["code"] == -32700
    status, _, body = await client.post({"jsonrpc": "2.0", "id": [1], "method": "tools/list"})
    assert status == 400 and body[0]["error"]["code"] == -32600
    status, _, body = await client.post([])
    assert status == 400 and body[0]["error"]["code"] == -32600
    # the session is unharmed
    assert text_of((await client.call(2, "echo", {"text": "still here"}))[-1]) == "still here"


async def test_unsupported_protocol_version_header_is_400(
    shared_translate: Translate, http: aiohttp.ClientSession
) -> None:
    client = Streamable(http, shared_translate.url + "/mcp")
    await client.initialize()
    status, _, body = await client.post(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, extra={"mcp-protocol-version": "1999-01-01"}
    )
    assert status == 400 and "1999-01-01" in body[0]["error"]["message"]
    status, _, _ = await client.post(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, extra={"mcp-protocol-version": "2025-06-18"}
    )
    assert status == 200


async def test_batches_are_served_for_2025_03_26_sessions_only(
    shared_translate: Translate, http: aiohttp.ClientSession
) -> None:
    old = Streamable(http, shared_translate.url + "/mcp", accept="application/json")
    await old.initialize({**INIT_PARAMS, "protocolVersion": "2025-03-26"})
    batch = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "sleep", "arguments": {"ms": 50, "text": "slow"}},
        },
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "fast"}}},
        {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"},
    ]
    with anyio.fail_after(10):
        status, _, replies = await old.post(batch)
    assert status == 200
    assert sorted((r["id"], text_of(r)) for r in replies) == [(1, "slow"), (2, "fast")]
    new = Streamable(http, shared_translate.url + "/mcp")
    await new.initialize()
    status, _, body = await new.post(batch)
    assert status == 400 and "batch" in body[0]["error"]["message"]


async def test_get_stream_receives_server_initiated_notifications(
    shared_translate: Translate, http: aiohttp.ClientSession
) -> None:
    client = Streamable(http, shared_translate.url + "/mcp")
    await client.initialize()
    headers = {"accept": "text/event-stream", "mcp-session-id": client.session_id or ""}
    with anyio.fail_after(10):
        async with http.get(shared_translate.url + "/mcp", headers=headers) as stream:
            assert stream.status == 200 and stream.headers["x-accel-buffering"] == "no"
            async with http.get(shared_translate.url + "/mcp", headers=headers) as second:
                assert second.status == 409
            await client.call(1, "change_tools", {})
            seen = ""
            async for line in stream.content:
                seen += line.decode()
                if "list_changed" in seen:
                    break
    assert "notifications/tools/list_changed" in seen


async def test_sse_streams_carry_keep_alive_comments(shared_translate: Translate, http: aiohttp.ClientSession) -> None:
    client = Streamable(http, shared_translate.url + "/mcp")
    await client.initialize()
    headers = {"accept": "text/event-stream", "mcp-session-id": client.session_id or ""}
    with anyio.fail_after(10):
        async with http.get(shared_translate.url + "/mcp", headers=headers) as stream:
            async for line in stream.content:
                if line.startswith(b": keep-alive"):
                    break
    assert stream.headers["cache-control"] == "no-cache"


async def test_oversized_request_body_is_413_with_a_jsonrpc_error(
    translate: type[Translate], http: aiohttp.ClientSession
) -> None:
    t = translate("--max-message-bytes", "2000")
    client = Streamable(http, t.url + "/mcp")
    await client.initialize()
    status, _, body = await client.post(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "x" * 5000}},
        }
    )
    assert status == 413 and body[0]["error"]["code"] == -32012
    assert text_of((await client.call(2, "echo", {"text": "ok"}))[-1]) == "ok"


async def test_multi_line_pretty_json_reaches_the_child_as_one_frame(
    shared_translate: Translate, http: aiohttp.ClientSession
) -> None:
    client = Streamable(http, shared_translate.url + "/mcp")
    await client.initialize()
    pretty = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 5,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "line1\nline2"}},
        },
        indent=2,
    )
    status, _, messages = await client.post(pretty.encode())
    assert status == 200 and text_of(messages[-1]) == "line1\nline2"


def _events(text: str) -> list[tuple[str, str]]:
    """(id, data) of each complete SSE event in `text` that carries data."""
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n")[:-1]:
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if fields.get("data"):
            out.append((fields.get("id", ""), fields["data"]))
    return out


async def _sse_session(http: aiohttp.ClientSession, url: str) -> str:
    client = Streamable(http, url, accept="text/event-stream")
    await client.initialize()
    return client.session_id or ""


def _post_slow_progress(http: aiohttp.ClientSession, url: str, session_id: str, call_id: int) -> Any:
    """POST a 4-step progress call (300 ms apart) asking for SSE; use as `async with`."""
    call = {
        "jsonrpc": "2.0",
        "id": call_id,
        "method": "tools/call",
        "params": {"name": "progress", "arguments": {"steps": 4, "delay_ms": 300}, "_meta": {"progressToken": "r"}},
    }
    headers = {"content-type": "application/json", "accept": "text/event-stream", "mcp-session-id": session_id}
    return http.post(url, data=json.dumps(call), headers=headers)


async def _read_until(
    stream: aiohttp.ClientResponse, done: Callable[[list[tuple[str, str]]], bool], seen: str = ""
) -> str:
    """The stream's text up to the first point where its complete events satisfy `done`."""
    async for raw in stream.content:
        seen += raw.decode()
        if done(_events(seen)):
            break
    return seen


def _has_reply(call_id: int) -> Callable[[list[tuple[str, str]]], bool]:
    return lambda events: any(f'"id":{call_id}' in data for _, data in events)


async def _drop_after_first_progress(http: aiohttp.ClientSession, url: str, session_id: str, call_id: int) -> str:
    """Read a slow call's stream up to its first progress event, then hang up; returns that event's id."""
    async with _post_slow_progress(http, url, session_id, call_id) as resp:
        seen = await _read_until(resp, bool)
    event_id, data = _events(seen)[0]
    assert json.loads(data)["params"]["progress"] == 1
    return event_id


async def test_a_dropped_post_stream_is_resumed_with_last_event_id(
    shared_translate: Translate, http: aiohttp.ClientSession
) -> None:
    """The resumed stream replays exactly what came after the last event seen, on that stream, then goes on live,
    even while the session's own GET stream is open."""
    url = shared_translate.url + "/mcp"
    sid = await _sse_session(http, url)
    standalone = await http.get(url, headers={"accept": "text/event-stream", "mcp-session-id": sid})
    assert standalone.status == 200
    with anyio.fail_after(15):
        last = await _drop_after_first_progress(http, url, sid, 77)
        await anyio.sleep(0.7)  # step 2 (and maybe 3) happen while nobody listens
        get_headers = {"accept": "text/event-stream", "mcp-session-id": sid, "last-event-id": last}
        async with http.get(url, headers=get_headers) as resumed:
            assert resumed.status == 200
            seen = await _read_until(resumed, _has_reply(77))
    standalone.close()
    events = _events(seen)
    messages = [json.loads(data) for _, data in events]
    assert [m["params"]["progress"] for m in messages[:-1]] == [2, 3, 4]  # nothing lost, nothing repeated
    assert messages[-1]["id"] == 77 and text_of(messages[-1]) == "done 4 steps"
    key, _, n = last.partition("-")
    assert [event_id for event_id, _ in events] == [f"{key}-{int(n) + i}" for i in range(1, 5)]


async def test_a_dropped_stream_nobody_resumes_is_delivered_on_the_get_stream(
    shared_translate: Translate, http: aiohttp.ClientSession
) -> None:
    """A client that does not resume loses nothing: after the resume window the rest goes to its GET stream."""
    url = shared_translate.url + "/mcp"
    sid = await _sse_session(http, url)
    with anyio.fail_after(25):
        await _drop_after_first_progress(http, url, sid, 78)
        async with http.get(url, headers={"accept": "text/event-stream", "mcp-session-id": sid}) as stream:
            seen = await _read_until(stream, _has_reply(78))
    messages = [json.loads(data) for _, data in _events(seen)]
    assert [m["params"]["progress"] for m in messages[:-1]] == [2, 3, 4]
    assert messages[-1]["id"] == 78 and text_of(messages[-1]) == "done 4 steps"


async def test_a_stream_still_connected_cannot_be_resumed_twice(
    shared_translate: Translate, http: aiohttp.ClientSession
) -> None:
    url = shared_translate.url + "/mcp"
    sid = await _sse_session(http, url)
    with anyio.fail_after(15):
        async with _post_slow_progress(http, url, sid, 79) as resp:
            seen = await _read_until(resp, bool)
            get_headers = {"accept": "text/event-stream", "mcp-session-id": sid, "last-event-id": _events(seen)[0][0]}
            async with http.get(url, headers=get_headers) as second:
                assert second.status == 409
            seen = await _read_until(resp, _has_reply(79), seen)  # the original stream is unaffected
    assert "done 4 steps" in seen
