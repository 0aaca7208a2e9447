"""Starting and stopping as an operator sees it: handshake deadlines for children that are not MCP servers, and
a graceful stop on SIGINT/SIGTERM — calls in flight finish or get an error, children stop, exit code 0, no
traceback, nothing left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import anyio
import pytest

from tests.conftest import FIXTURE_SERVER, HubProcess, Translate
from tests.e2e.rawclient import Streamable, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

MARK = uuid.uuid4().hex[:12]  # finds this run's not-MCP children, whatever else runs on the machine
NOT_MCP = f"import sys, time; print('hello, I am not MCP', flush=True); time.sleep(3600)  # {MARK}"
FIXTURE = f"""
    command: ${{HARBOR_PYTHON}}
    args: ["{FIXTURE_SERVER}"]"""


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is not alive either
        return stat.read().split(")")[-1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().split(")")[-1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


# --- handshake deadline ------------------------------------------------------------------------------------


async def test_a_child_that_never_completes_initialize_fails_with_what_it_printed(
    hub: type[HubProcess], http: aiohttp.ClientSession
) -> None:
    config = f"""
mcpServers:
  everything:{FIXTURE}
  chatty:
    command: ${{HARBOR_PYTHON}}
    args: ["-c", "{NOT_MCP}"]
    startup_timeout: 1
gateway:
  host: 127.0.0.1
"""
    h = hub(config, strict=False)
    with anyio.fail_after(15):
        while True:
            async with http.get(h.url + "/readyz") as resp:
                chatty = (await resp.json())["servers"]["chatty"]
            if chatty["last_error"]:
                break
            await asyncio.sleep(0.2)
    assert chatty["state"] in ("restarting", "failed"), chatty
    assert "no initialize reply within 1 s" in chatty["last_error"]
    assert "stdout was not JSON-RPC: 'hello, I am not MCP'" in chatty["last_error"]
    client = Streamable(http, h.url + "/servers/chatty/mcp")
    await client.initialize()
    started = time.monotonic()
    reply = await client.call(1, "anything", {})
    assert time.monotonic() - started < 1.0, "a call to a server that is not ready must fail at once"
    assert "hello, I am not MCP" in reply[-1]["error"]["message"]
    merged = Streamable(http, h.url + "/mcp")
    await merged.initialize()
    assert text_of((await merged.call(2, "everything__echo", {"text": "fine"}))[-1]) == "fine"  # others unaffected
    h.stop()
    assert _not_mcp_left() == [], "a child stopped mid-start must not outlive the gateway"


def test_translate_reports_a_child_that_is_not_mcp_within_its_deadline(translate: type[Translate]) -> None:
    t = translate("--startup-timeout", "1", command=f'{sys.executable} -c "{NOT_MCP}"', ready_path="/healthz")
    deadline = time.monotonic() + 10
    body = ""
    while time.monotonic() < deadline:
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(t.url + "/readyz", timeout=2)
        except urllib.error.HTTPError as exc:
            body = exc.read().decode()
            if "hello, I am not MCP" in body:
                break
        time.sleep(0.2)
    assert "stdout was not JSON-RPC: 'hello, I am not MCP'" in body, body
    t.stop()
    assert _not_mcp_left() == [], "a child stopped mid-start must not outlive translate"


def _not_mcp_left(wait: float = 5.0) -> list[str]:
    """Processes of the not-MCP child still running (the gateway may take a moment to finish stopping them)."""
    import subprocess as sp

    deadline = time.monotonic() + wait
    while True:
        found = sp.run(["pgrep", "-f", MARK], capture_output=True, text=True).stdout.split()
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


# --- graceful stop -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_a_stop_signal_lets_a_short_call_finish_and_fails_a_long_one_then_exits_cleanly(
    hub: type[HubProcess], http: aiohttp.ClientSession, signum: int
) -> None:
    h = hub(f"mcpServers:\n  everything:{FIXTURE}\ngateway:\n  host: 127.0.0.1\n  shutdown_grace: 2\n")
    children = _children(h.proc.pid)
    assert children
    short, long = Streamable(http, h.url + "/mcp"), Streamable(http, h.url + "/mcp")
    await short.initialize()
    await long.initialize()
    finishing = asyncio.ensure_future(short.call(1, "everything__sleep", {"ms": 1000}))
    failing = asyncio.ensure_future(long.call(2, "everything__sleep", {"ms": 20000}))
    await asyncio.sleep(0.3)
    stopped_at = time.monotonic()
    h.proc.send_signal(signum)
    with anyio.fail_after(10):
        done = (await finishing)[-1]
        cut = (await failing)[-1]
    assert text_of(done) == "slept 1000 ms"  # finished within the grace
    assert cut["error"]["code"] == -32015 and "gateway stopping" in cut["error"]["message"]
    code = await anyio.to_thread.run_sync(lambda: h.proc.wait(10))
    elapsed = time.monotonic() - stopped_at
    assert code == 0 and elapsed < 2 + 1.0, (code, elapsed)  # within the grace + 1 s (measured: 2.15-2.17 s)
    log = h.log()
    assert "Traceback" not in log and "Cancel" not in log, log[-3000:]
    assert not [pid for pid in children if _alive(pid)], "a child was left behind"


async def test_children_signalled_with_the_gateway_are_not_restarted(
    hub: type[HubProcess], http: aiohttp.ClientSession
) -> None:
    h = hub(f"mcpServers:\n  everything:{FIXTURE}\n  second:{FIXTURE}\ngateway:\n  host: 127.0.0.1\n")
    children = _children(h.proc.pid)
    assert len(children) >= 2
    for pid in [h.proc.pid, *children]:  # as systemd does: the whole group at once
        os.kill(pid, signal.SIGTERM)
    code = await anyio.to_thread.run_sync(lambda: h.proc.wait(10))
    assert code == 0
    await asyncio.sleep(0.5)
    assert not [pid for pid in _children(h.proc.pid) if _alive(pid)]
    assert "child_ready" not in h.log().split("drained")[-1], "a child was restarted while stopping"
    assert "Traceback" not in h.log()


async def test_a_second_ctrl_c_skips_the_grace(hub: type[HubProcess], http: aiohttp.ClientSession) -> None:
    h = hub(f"mcpServers:\n  everything:{FIXTURE}\ngateway:\n  host: 127.0.0.1\n  shutdown_grace: 30\n")
    children = _children(h.proc.pid)
    client = Streamable(http, h.url + "/mcp")
    await client.initialize()
    pending = asyncio.ensure_future(client.call(1, "everything__sleep", {"ms": 60000}))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    h.proc.send_signal(signal.SIGINT)
    await asyncio.sleep(0.3)
    h.proc.send_signal(signal.SIGINT)
    code = await anyio.to_thread.run_sync(lambda: h.proc.wait(10))
    assert code == 0 and time.monotonic() - started < 3
    with anyio.fail_after(5):
        try:
            reply: dict[str, object] | None = (await pending)[-1]
        except aiohttp.ClientError:
            reply = None  # the connection may close before the error is written: acceptable, a hang is not
    if reply is not None:
        assert "gateway stopping" in reply["error"]["message"]  # type: ignore[index]
    assert not [pid for pid in children if _alive(pid)]
    assert "Traceback" not in h.log()


async def test_translate_stops_gracefully_too(translate: type[Translate], http: aiohttp.ClientSession) -> None:
    t = translate("--shutdown-grace", "1")
    children = _children(t.proc.pid)
    client = Streamable(http, t.url + "/mcp")
    await client.initialize()
    pending = asyncio.ensure_future(client.call(1, "sleep", {"ms": 20000}))
    await asyncio.sleep(0.3)
    t.proc.send_signal(signal.SIGINT)
    with anyio.fail_after(8):
        reply = (await pending)[-1]
    assert reply["error"]["code"] == -32015
    assert await anyio.to_thread.run_sync(lambda: t.proc.wait(10)) == 0
    assert not [pid for pid in children if _alive(pid)]
    assert "Traceback" not in t.log()
