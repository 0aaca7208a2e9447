"""Faults end in errors, never hangs: crashed and killed children, oversized frames, timeouts, caps, reaping."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import anyio
import pytest

from tests.conftest import EVERYTHING_CMD, ROOT, Translate
from tests.e2e.rawclient import LegacySSE, Streamable, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_killed_child_fails_inflight_calls_within_a_second_then_restarts(
    translate: type[Translate], http: aiohttp.ClientSession
) -> None:
    t = translate()
    a, b = Streamable(http, t.url + "/mcp"), Streamable(http, t.url + "/mcp")
    await a.initialize()
    await b.initialize()
    pid = int(text_of((await a.call(1, "whoami", {}))[-1]))
    slow = asyncio.ensure_future(a.call(2, "sleep", {"ms": 20000}))
    await asyncio.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    with anyio.fail_after(5):
        reply = (await slow)[-1]
    assert time.monotonic() - killed_at < 1.0
    assert reply["id"] == 2 and reply["error"]["code"] == -32011
    assert "SIGKILL" in reply["error"]["message"]
    with anyio.fail_after(20):  # the next call waits for the restart, then works, on the same session
        assert text_of((await b.call(3, "echo", {"text": "back"}))[-1]) == "back"
        new_pid = int(text_of((await a.call(4, "whoami", {}))[-1]))
    assert new_pid != pid
    assert "child_down" in t.log()


async def test_child_exiting_mid_call_errors_every_client_with_calls_in_flight(
    translate: type[Translate], http: aiohttp.ClientSession
) -> None:
    t = translate()
    a = Streamable(http, t.url + "/mcp")
    sse = LegacySSE(http, t.url)
    await a.initialize()
    await sse.connect()
    await sse.initialize()
    waiting = asyncio.ensure_future(sse.call(1, "sleep", {"ms": 20000}))
    await asyncio.sleep(0.2)
    with anyio.fail_after(5):
        crashed = (await a.call(1, "crash", {}))[-1]
        other = await waiting
    assert crashed["error"]["code"] == -32011 and other["error"]["code"] == -32011
    with anyio.fail_after(20):
        assert text_of(await sse.call(2, "echo", {"text": "sse ok"})) == "sse ok"
    await sse.close()


async def test_oversized_child_reply_errors_the_caller_and_the_session_survives(
    translate: type[Translate], http: aiohttp.ClientSession
) -> None:
    t = translate("--max-message-bytes", "100000")
    client = Streamable(http, t.url + "/mcp")
    await client.initialize()
    with anyio.fail_after(10):
        reply = (await client.call(1, "huge", {"size": 400000}))[-1]
        assert reply["error"]["code"] == -32012 and "100000" in reply["error"]["message"]
        assert text_of((await client.call(2, "huge", {"size": 1000}))[-1]) == "x" * 1000


async def test_multi_megabyte_single_line_reply_is_delivered(
    shared_translate: Translate, http: aiohttp.ClientSession
) -> None:
    client = Streamable(http, shared_translate.url + "/mcp")
    await client.initialize()
    with anyio.fail_after(20):
        reply = (await client.call(1, "huge", {"size": 5_000_000}))[-1]
    assert len(text_of(reply)) == 5_000_000


async def test_timeout_without_progress_cancels_and_errors(
    translate: type[Translate], http: aiohttp.ClientSession
) -> None:
    t = translate("--request-timeout", "1")
    client = Streamable(http, t.url + "/mcp")
    await client.initialize()
    started = time.monotonic()
    with anyio.fail_after(10):
        reply = (await client.call(1, "sleep", {"ms": 5000}))[-1]
    elapsed = time.monotonic() - started
    assert reply["error"]["code"] == -32001 and 0.9 < elapsed < 3.0
    assert text_of((await client.call(2, "echo", {"text": "next"}))[-1]) == "next"


async def test_progress_notifications_extend_the_timeout(
    translate: type[Translate], http: aiohttp.ClientSession
) -> None:
    t = translate("--request-timeout", "1")
    client = Streamable(http, t.url + "/mcp")
    await client.initialize()
    with anyio.fail_after(15):
        messages = await client.call(1, "progress", {"steps": 6, "delay_ms": 400}, meta={"progressToken": "p"})
    assert text_of(messages[-1]) == "done 6 steps"  # 2.4 s in all, never 1 s without progress


async def test_server_request_with_two_busy_clients_is_refused_not_misrouted(
    shared_translate: Translate, http: aiohttp.ClientSession
) -> None:
    busy, asker = Streamable(http, shared_translate.url + "/mcp"), Streamable(http, shared_translate.url + "/mcp")
    await busy.initialize()
    await asker.initialize(
        {"protocolVersion": "2025-11-25", "capabilities": {"sampling": {}}, "clientInfo": {"name": "t", "version": "1"}}
    )
    slow = asyncio.ensure_future(busy.call(1, "sleep", {"ms": 1500}))
    await asyncio.sleep(0.2)
    with anyio.fail_after(10):
        reply = (await asker.call(1, "test_sampling", {"prompt": "hi"}))[-1]
        await slow
    # the child's sampling request was refused by the bridge; the tool reports that failure to its caller
    failure = reply["error"]["message"] if "error" in reply else text_of(reply)
    assert "error" in reply or reply["result"]["isError"] is True
    assert "per-session" in failure, reply


async def test_per_session_cap_refuses_clearly_and_frees_on_delete(
    translate: type[Translate], http: aiohttp.ClientSession
) -> None:
    t = translate("--session-mode", "per-session", "--max-sessions", "2", ready_path="/healthz")
    first, second, third = (Streamable(http, t.url + "/mcp") for _ in range(3))
    with anyio.fail_after(30):
        await first.initialize()
        await second.initialize()
        status, _, body = await third.post(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                },
            }
        )
        assert status == 503 and body[0]["error"]["code"] == -32013 and "--max-sessions" in body[0]["error"]["message"]
        pid = int(text_of((await first.call(1, "whoami", {}))[-1]))
        assert await first.delete() == 200
        assert await _gone(pid)
        await third.initialize()
        assert int(text_of((await third.call(1, "whoami", {}))[-1])) != pid


async def test_idle_sessions_are_reaped_with_their_children(
    translate: type[Translate], http: aiohttp.ClientSession
) -> None:
    t = translate("--session-mode", "per-session", "--session-idle-timeout", "2", ready_path="/healthz")
    client = Streamable(http, t.url + "/mcp")
    with anyio.fail_after(30):
        await client.initialize()
        pid = int(text_of((await client.call(1, "whoami", {}))[-1]))
        assert await _gone(pid, within=12)
        status, _, _ = await client.post({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    assert status == 404
    assert "idle timeout" in t.log()


async def test_a_start_slower_than_the_idle_timeout_does_not_reap_the_session(
    translate: type[Translate], http: aiohttp.ClientSession
) -> None:
    """Idleness counts from a usable session: a child that takes longer to start than the idle timeout (a heavy
    server on a loaded machine) must not see its session reaped before the client's first call arrives."""
    t = translate(
        "--session-mode", "per-session", "--session-idle-timeout", "1",
        "--env", "HARBOR_FIXTURE_START_DELAY=2.5", ready_path="/healthz",
    )  # fmt: skip
    client = Streamable(http, t.url + "/mcp")
    with anyio.fail_after(30):
        await client.initialize()
        assert int(text_of((await client.call(1, "whoami", {}))[-1])) > 0


async def test_sse_disconnect_reaps_the_sessions_child(translate: type[Translate], http: aiohttp.ClientSession) -> None:
    t = translate("--session-mode", "per-session", ready_path="/healthz")
    sse = LegacySSE(http, t.url)
    with anyio.fail_after(30):
        await sse.connect()
        await sse.initialize()
        pid = int(text_of(await sse.call(1, "whoami", {})))
        await sse.close()
        assert await _gone(pid)


async def test_header_to_env_gives_each_session_its_own_child_env(
    translate: type[Translate], http: aiohttp.ClientSession
) -> None:
    t = translate("--session-mode", "per-session", "--header-to-env", "X-User-Token=USER_TOKEN", ready_path="/healthz")
    alice, bob = Streamable(http, t.url + "/mcp"), Streamable(http, t.url + "/mcp")
    with anyio.fail_after(30):
        await alice.initialize(headers={"X-User-Token": "alice-token"})
        await bob.initialize(headers={"X-User-Token": "bob-token"})
        assert text_of((await alice.call(1, "getenv", {"name": "USER_TOKEN"}))[-1]) == "alice-token"
        assert text_of((await bob.call(1, "getenv", {"name": "USER_TOKEN"}))[-1]) == "bob-token"


async def test_a_command_that_cannot_start_is_reported_not_hung(
    translate: type[Translate], http: aiohttp.ClientSession
) -> None:
    t = translate("--request-timeout", "2", command="/nonexistent/mcp-server --stdio", ready_path="/healthz")
    with anyio.fail_after(15):
        async with http.get(t.url + "/readyz") as resp:
            body = await resp.json()
            assert resp.status == 503 and body["status"] == "not ready"
        client = Streamable(http, t.url + "/mcp")
        status, _, messages = await client.post(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                },
            }
        )
    assert status == 200 and "error" in messages[0]
    assert "/nonexistent/mcp-server" in messages[0]["error"]["message"]


async def test_a_stalled_sse_reader_is_cut_off_and_everyone_else_is_served(
    translate: type[Translate], http: aiohttp.ClientSession
) -> None:
    t = translate()
    stalled = LegacySSE(http, t.url)
    await stalled.connect()
    await stalled.initialize()
    assert stalled._task is not None
    stalled._task.cancel()  # from here on nobody reads this stream
    worker = Streamable(http, t.url + "/mcp")
    await worker.initialize()
    with anyio.fail_after(60):
        reply = (await worker.call(1, "flood", {"count": 3000, "size": 4000}))[-1]  # ~12 MB of logs to every session
        assert text_of(reply) == "sent 3000"
        assert text_of((await worker.call(2, "echo", {"text": "fine"}))[-1]) == "fine"
        while "sse_reader_too_slow" not in t.log():
            await asyncio.sleep(0.1)
    await stalled.close()
    async with http.get(t.url + "/readyz") as resp:
        assert (await resp.json())["sessions"] == 1  # the stalled session was ended, the worker's remains


def test_a_taken_port_fails_at_once_before_the_child_starts() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        argv = [sys.executable, "-m", "gateway.translate", "--stdio", EVERYTHING_CMD, "--port", str(port)]
        started = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert done.returncode == 2 and time.monotonic() - started < 10
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert "child_ready" not in done.stderr and "serving" not in done.stderr  # the child was never spawned
