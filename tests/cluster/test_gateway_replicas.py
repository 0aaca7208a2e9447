"""Three real gateway replicas on one real redis-server, behind the shipped nginx example (plain round robin).

What a team running `gateway.state: redis://…` relies on, through the proxy or straight at a chosen replica:
third-party clients list and call; sessions whose requests are spread over every replica never get another
session's reply; GET-stream events reach the stream whichever replica produced them and replay on another
replica after a reconnect; SSE `/message` POSTs, input rounds, server→client answers and per-session /
per-identity children are forwarded to the replica that holds them; rate limits hold for the replicas
together; a SIGKILLed replica or a lost Redis costs clear errors, never wrong replies or hangs.

The destructive cases (kill a replica, kill Redis) run last, on replicas of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import redis
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster.conftest import _dump_if_failed, _require
from tests.cluster.harness import ROOT, Nginx, RedisServer, Replicas
from tests.conftest import FIXTURE_SERVER, node_env
from tests.e2e.rawclient import ACCEPT_BOTH, INIT_PARAMS, LegacySSE, Streamable, parse_sse, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120), pytest.mark.e2e]

MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}, "sampling": {}},
    "io.modelcontextprotocol/clientInfo": {"name": "harbor-tests", "version": "1"},
}
TOKENS = {
    "ALICE": "alice-token-0123456789",
    "BOB": "bob-token-0123456789ab",
    "LIMITED": "limited-token-012345678",
    "ADMIN": "admin-token-0123456789",
}
RATE, BURST, WINDOW = 3.0, 6, 10.0
LEGACY_ASKING = ROOT / "tests" / "fixtures" / "legacy_asking.py"


def config(redis_url: str, namespace: str) -> str:
    child = f'command: {sys.executable}\n    args: ["{FIXTURE_SERVER}"]'
    return f"""
mcpServers:
  everything:
    {child}
  mine:
    {child}
    session_mode: per-session
  team:
    {child}
    session_mode: per-identity
  legacy:
    command: {sys.executable}
    args: ["{LEGACY_ASKING}"]
gateway:
  host: 127.0.0.1
  state: {redis_url}
  cluster: {namespace}
  replica: r${{HARBOR_INDEX}}
  advertise: http://127.0.0.1:${{HARBOR_PORT}}
  allowed_hosts: [mcp.example.test]
  keep_alive: 1
  max_message_bytes: 1048576
  auth:
    tokens:
      - {{token: "${{ALICE}}", identity: alice}}
      - {{token: "${{BOB}}", identity: bob}}
      - {{token: "${{LIMITED}}", identity: limited}}
      - {{token: "${{ADMIN}}", identity: admin, scopes: ["harbor:admin"]}}
  rate_limits:
    overrides:
      limited: {{rate: {RATE}, burst: {BURST}}}
"""


class Cluster:
    """redis-server + three replicas + nginx, started in `directory`; `.urls[i]` reaches replica i directly."""

    def __init__(self, directory: Path) -> None:
        self.redis = RedisServer(directory / "redis", binary=_require("redis-server")).start()
        self.namespace = f"t{uuid.uuid4().hex[:10]}"
        path = directory / "harbor.yaml"
        path.write_text(config(self.redis.url, self.namespace))
        argv = [sys.executable, "-m", "gateway", "serve", "--config", str(path), "--port", "{port}"]
        env = {"HARBOR_INDEX": "{index}", "HARBOR_PORT": "{port}", **TOKENS}
        self.replicas = Replicas(argv, 3, directory / "replicas", env=env, health_path="/readyz", start=False)
        try:
            self.replicas.start()
            _require("nginx")
            self.nginx = Nginx(directory / "nginx", self.replicas.addresses)
        except Exception:
            self.replicas.stop()
            self.redis.stop()
            raise
        self.url = self.nginx.url
        self.urls = self.replicas.urls
        for url in self.urls:
            self.settled(url)

    def settled(self, url: str, timeout: float = 60.0) -> None:
        """Wait until the replica at `url` has every server ready and sees all three replicas."""
        deadline = time.monotonic() + timeout
        body: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                body = httpx.get(url + "/readyz", timeout=2).json()
                servers, replicas = body.get("servers", {}), body.get("replicas")
                if servers.get("ready") == servers.get("total") and replicas == len(self.urls):
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{url} did not settle within {timeout} s: {body}\n{self.logs()}")

    def stop(self) -> None:
        self.nginx.stop()
        self.replicas.stop()
        self.redis.stop()

    def logs(self) -> str:
        return self.replicas.logs() + "\n--- nginx ---\n" + self.nginx.log()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    group = Cluster(tmp_path_factory.mktemp("replicas"))
    yield group
    group.stop()


@pytest.fixture
def doomed(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A cluster of its own for a test that kills part of it."""
    group = Cluster(tmp_path)
    yield group
    _dump_if_failed(request, group.logs)
    group.stop()


@pytest.fixture(autouse=True)
def _cluster_logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "cluster" in request.fixturenames:
        _dump_if_failed(request, request.getfixturevalue("cluster").logs)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


def bearer(who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKENS[who]}"}


def streamable(http: aiohttp.ClientSession, url: str, who: str = "ALICE") -> Streamable:
    client = Streamable(http, url + "/mcp")
    client.headers = bearer(who)
    return client


async def on(client: Streamable, url: str, body: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    """POST `body` for `client`'s session to the replica at `url` (not the one the client was made for)."""
    other = Streamable(client.http, url + "/mcp")
    other.headers, other.session_id = client.headers, client.session_id
    status, _, messages = await other.post(body)
    return status, messages


def call(request_id: Any, name: str, **arguments: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def modern_post(http: aiohttp.ClientSession, url: str, body: dict[str, Any], who: str = "ALICE") -> Any:
    headers = {
        "content-type": "application/json",
        "accept": ACCEPT_BOTH,
        "mcp-protocol-version": MODERN,
        "mcp-method": body["method"],
        **bearer(who),
    }
    if body["method"] == "tools/call":
        headers["mcp-name"] = body["params"]["name"]
    return http.post(url + "/mcp", data=json.dumps(body), headers=headers)


async def modern(http: aiohttp.ClientSession, url: str, body: dict[str, Any], who: str = "ALICE") -> dict[str, Any]:
    async with modern_post(http, url, body, who) as resp:
        text = await resp.text()
        messages = parse_sse(text) if "event-stream" in resp.headers.get("content-type", "") else [json.loads(text)]
        return messages[-1]


# --- third-party clients through the proxy -----------------------------------------------------------------


async def test_the_sdk_client_lists_and_calls_through_nginx_in_both_eras(cluster: Cluster) -> None:
    for mode in ("legacy", MODERN):
        async with (
            httpx.AsyncClient(headers=bearer("ALICE"), timeout=30) as client_http,
            Client(streamable_http_client(cluster.url + "/mcp", http_client=client_http), mode=mode) as client,
        ):
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert {"everything__echo", "mine__whoami", "team__whoami", "legacy__greet"} <= names, mode
            for i in range(6):  # six calls: every replica serves two of them
                result = await client.call_tool("everything__echo", {"text": f"{mode}-{i}"})
                assert result.content[0].text == f"{mode}-{i}"  # type: ignore[union-attr]


@pytest.mark.node
def test_the_inspector_cli_lists_and_calls_through_nginx(cluster: Cluster, tmp_path: Path) -> None:
    env = node_env(tmp_path)
    base = ["mcp-inspector", "--cli", cluster.url + "/mcp", "--format", "json"]
    base += ["--header", f"Authorization: Bearer {TOKENS['ALICE']}"]
    listed = subprocess.run([*base, "--method", "tools/list"], capture_output=True, text=True, timeout=90, env=env)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "everything__echo" in listed.stdout
    argv = [*base, "--method", "tools/call", "--tool-name", "everything__echo", "--tool-arg", "text=insp"]
    called = subprocess.run(argv, capture_output=True, text=True, timeout=90, env=env)
    assert called.returncode == 0, called.stderr[-2000:]
    assert json.loads(called.stdout[called.stdout.index("{") :])["result"]["content"][0]["text"] == "insp"


# --- sessions spread over every replica --------------------------------------------------------------------


async def test_sixteen_sessions_spread_over_every_replica_never_get_another_sessions_reply(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    async def one(n: int) -> list[str]:
        client = streamable(http, cluster.url, "ALICE" if n % 2 else "BOB")
        await client.initialize()
        wrong = []
        for i in range(15):  # the same ids in every session, as real clients do
            text = f"s{n}-{i}"
            status, _, messages = await client.post(call(i, "everything__echo", text=text))
            reply = messages[-1]
            if status != 200 or reply.get("id") != i or text_of(reply) != text:
                wrong.append(f"{text}: {status} {reply}")
        assert await client.delete() == 200
        return wrong

    results = await asyncio.gather(*(one(n) for n in range(16)))
    assert [w for r in results for w in r] == []
    served = [_counter(await _metrics(http, url), "harbor_tool_calls_total") for url in cluster.urls]
    assert all(count > 0 for count in served), served  # nginx spread the calls over all three


async def test_a_session_is_served_by_any_replica_and_ends_everywhere(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    client = streamable(http, cluster.urls[0])
    await client.initialize()
    for i, url in enumerate(cluster.urls):
        status, messages = await on(client, url, call(i, "everything__echo", text=f"at {i}"))
        assert status == 200 and text_of(messages[-1]) == f"at {i}"
    assert await client.delete() == 200
    await asyncio.sleep(0.2)  # the "gone" broadcast
    for url in cluster.urls:
        status, _ = await on(client, url, call(9, "everything__echo", text="late"))
        assert status == 404


async def test_unknown_sessions_are_404_on_every_replica(cluster: Cluster, http: aiohttp.ClientSession) -> None:
    client = streamable(http, cluster.url)
    client.session_id = "not-a-session-" + uuid.uuid4().hex
    for url in cluster.urls:
        status, messages = await on(client, url, call(1, "everything__echo", text="x"))
        assert status == 404, messages


async def test_calls_on_a_session_a_replica_holds_do_not_touch_redis(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    """The hot path: once a replica holds a session, a call costs Redis nothing (the record is cached, its
    TTL refreshed at most once per tenth of it, no limit applies to alice)."""
    client = streamable(http, cluster.urls[0])
    await client.initialize()
    await client.post(call(0, "everything__echo", text="warm"))
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        """Every command Redis runs, until `stop` (the heartbeats keep the stream moving every second)."""
        monitor_client = redis.Redis(port=cluster.redis.port, socket_timeout=5)
        with monitor_client.monitor() as monitor:
            while not stop.is_set():
                seen.append(str(monitor.next_command()["command"]))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    await asyncio.sleep(0.3)
    for i in range(1, 101):
        _, _, messages = await client.post(call(i, "everything__echo", text=f"hot {i}"))
        assert text_of(messages[-1]) == f"hot {i}"
    calls_done = len(seen)
    stop.set()
    watcher.join(5)
    assert not watcher.is_alive() and len(seen) > calls_done  # MONITOR was still reading after the last call
    assert seen, "MONITOR saw nothing: the heartbeats at least should show"
    about_calls = [c for c in seen if (client.session_id or "?") in c or c.startswith(("EVAL", "HGET"))]
    assert about_calls == [], about_calls[:5]
    await client.delete()


# --- GET streams ---------------------------------------------------------------------------------------------


class GetStream:
    """A session's GET stream on one replica, read in the background: (event id, message) pairs."""

    def __init__(self, http: aiohttp.ClientSession, url: str, client: Streamable, last: str | None = None) -> None:
        self.http, self.url, self.client, self.last = http, url, client, last
        self.events: list[tuple[str | None, dict[str, Any]]] = []
        self.arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.opened = asyncio.Event()
        self.ended = asyncio.Event()  # the server ended the stream

    async def __aenter__(self) -> GetStream:
        self._task = asyncio.get_running_loop().create_task(self._read())
        await asyncio.wait_for(self.opened.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _read(self) -> None:
        headers = {"accept": "text/event-stream", "mcp-session-id": self.client.session_id or "", **self.client.headers}
        if self.last:
            headers["last-event-id"] = self.last
        async with self.http.get(self.url + "/mcp", headers=headers, timeout=aiohttp.ClientTimeout(total=None)) as resp:
            assert resp.status == 200, await resp.text()
            self.opened.set()
            event_id, data = None, []
            async for raw in resp.content:  # until the server ends the stream
                line = raw.decode().rstrip("\r\n")
                if line.startswith("id:"):
                    event_id = line[3:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif line == "":
                    if data and "".join(data).strip():
                        self.events.append((event_id, json.loads("\n".join(data))))
                        self.arrived.set()
                    event_id, data = None, []
            self.ended.set()

    def methods(self) -> list[str]:
        return [message.get("method", "") for _, message in self.events]

    async def wait_for(self, count: int, method: str, timeout: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while self.methods().count(method) < count and time.monotonic() < deadline:
            self.arrived.clear()
            with_timeout = max(0.01, deadline - time.monotonic())
            await asyncio.wait([asyncio.ensure_future(self.arrived.wait())], timeout=with_timeout)
        return self.methods()


async def test_get_stream_events_arrive_whichever_replica_the_posts_hit(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    client = streamable(http, cluster.urls[0])
    await client.initialize()
    async with GetStream(http, cluster.urls[0], client) as stream:
        for i, url in enumerate(cluster.urls):  # every replica's own child announces a change
            status, messages = await on(client, url, call(i, "everything__change_tools"))
            assert status == 200 and text_of(messages[-1]) == "changed"
        methods = await stream.wait_for(3, "notifications/tools/list_changed")
    assert methods.count("notifications/tools/list_changed") >= 3, methods
    await client.delete()


async def test_resource_updates_follow_a_subscription_made_on_another_replica(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    client = streamable(http, cluster.urls[0])
    await client.initialize()
    _, _, listed = await client.post({"jsonrpc": "2.0", "id": 1, "method": "resources/list", "params": {}})
    uri = next(r["uri"] for r in listed[-1]["result"]["resources"] if r["uri"].endswith("watched-resource"))
    inner = uri.split("/", 3)[3]  # harbor://everything/<the child's own URI>
    status, _, reply = await client.post(
        {"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe", "params": {"uri": uri}}
    )
    assert status == 200 and "result" in reply[-1], reply
    async with GetStream(http, cluster.urls[1], client) as stream:
        status, messages = await on(client, cluster.urls[2], call(3, "everything__touch_resource", uri=inner))
        assert status == 200 and text_of(messages[-1]) == "touched"
        methods = await stream.wait_for(1, "notifications/resources/updated")
    updates = [m for _, m in stream.events if m.get("method") == "notifications/resources/updated"]
    assert methods and updates and updates[0]["params"]["uri"] == uri, (uri, stream.events)
    await client.delete()


async def test_a_get_stream_resumes_on_another_replica_with_last_event_id(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    client = streamable(http, cluster.urls[0])
    await client.initialize()
    async with GetStream(http, cluster.urls[0], client) as first:
        await on(client, cluster.urls[0], call(1, "everything__change_tools"))
        await first.wait_for(1, "notifications/tools/list_changed")
    last = [event_id for event_id, _ in first.events if event_id][-1]
    for i in (2, 3):  # while no stream is open: kept in Redis
        await on(client, cluster.urls[1], call(i, "everything__change_tools"))
    await asyncio.sleep(0.3)
    async with GetStream(http, cluster.urls[2], client, last=last) as second:
        methods = await second.wait_for(2, "notifications/tools/list_changed")
    assert methods.count("notifications/tools/list_changed") == 2, methods  # exactly what it missed
    assert last not in {event_id for event_id, _ in second.events}
    await client.delete()


# --- forwarded to the replica that holds it -------------------------------------------------------------------


async def test_legacy_sse_messages_that_land_elsewhere_are_forwarded_to_the_stream(cluster: Cluster) -> None:
    async with aiohttp.ClientSession(headers=bearer("ALICE"), timeout=aiohttp.ClientTimeout(total=30)) as http:
        sse = LegacySSE(http, cluster.url)  # the stream is on one replica; nginx spreads the POSTs over three
        await sse.connect()
        await sse.initialize()
        replies = [await sse.call(i, "everything__echo", {"text": f"sse-{i}"}) for i in range(1, 7)]
        assert [text_of(r) for r in replies] == [f"sse-{i}" for i in range(1, 7)]
        await sse.close()


async def test_a_relayed_message_is_held_to_the_gateways_message_limit(cluster: Cluster) -> None:
    async with aiohttp.ClientSession(headers=bearer("ALICE"), timeout=aiohttp.ClientTimeout(total=30)) as http:
        sse = LegacySSE(http, cluster.urls[0])
        await sse.connect()
        await sse.initialize()
        huge = call(1, "everything__echo", text="x" * (2 * 1024 * 1024))
        async with http.post(cluster.urls[1] + (sse.endpoint or ""), json=huge) as resp:  # relayed to replica 0
            refused = await resp.json()
            assert resp.status == 413 and "exceeds the limit of 1048576 bytes" in refused["error"]["message"], refused
            assert resp.headers.getall("harbor-replica") == ["r1"]  # refused before relaying, not by replica 0
        assert text_of(await sse.call(2, "everything__echo", {"text": "still here"})) == "still here"
        await sse.close()


async def test_an_input_round_retried_on_another_replica_reaches_the_parked_call(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "legacy__greet", "arguments": {}}}
    body["params"]["_meta"] = META
    first = await modern(http, cluster.urls[0], body)
    round1 = first["result"]
    assert round1["resultType"] == "input_required", first
    answer = {"user_name": {"action": "accept", "content": {"name": "Ada"}}}
    retry = {
        **body,
        "id": 2,
        "params": {**body["params"], "requestState": round1["requestState"], "inputResponses": answer},
    }
    second = await modern(http, cluster.urls[1], retry)
    round2 = second["result"]
    assert round2["resultType"] == "input_required" and list(round2["inputRequests"]) == ["sampling-1"], second
    sampled = {"sampling-1": {"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "m"}}
    final = {
        **body,
        "id": 3,
        "params": {**body["params"], "requestState": round2["requestState"], "inputResponses": sampled},
    }
    done = await modern(http, cluster.urls[2], final)
    assert done["result"]["content"][0]["text"] == "Ada: hi", done
    bob = await modern(http, cluster.urls[1], {**final, "id": 4}, who="BOB")
    assert "error" in bob  # another identity's state is refused on every replica


async def test_a_server_request_answered_on_another_replica_reaches_the_asking_one(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    client = streamable(http, cluster.urls[0])
    await client.initialize({**INIT_PARAMS, "capabilities": {"sampling": {}}})
    headers = {"content-type": "application/json", "accept": ACCEPT_BOTH, **client.headers}
    headers["mcp-session-id"] = client.session_id or ""
    body = call(7, "everything__test_sampling", prompt="ask")
    async with http.post(cluster.urls[0] + "/mcp", data=json.dumps(body), headers=headers) as resp:
        assert resp.status == 200
        buffer = ""
        asked = None
        async for chunk in resp.content.iter_any():
            buffer += chunk.decode()
            messages = parse_sse(buffer) if buffer.replace("\r\n", "\n").endswith("\n\n") else []
            asked = next((m for m in messages if m.get("method") == "sampling/createMessage"), None)
            if asked is not None:
                break
        assert asked is not None, buffer
        answer = {
            "jsonrpc": "2.0",
            "id": asked["id"],
            "result": {"role": "assistant", "content": {"type": "text", "text": "sampled elsewhere"}, "model": "m"},
        }
        status, _ = await on(client, cluster.urls[1], answer)  # lands on a replica that did not ask
        assert status == 202
        async with asyncio.timeout(10):
            rest = buffer
            async for chunk in resp.content.iter_any():
                rest += chunk.decode()
        final = [m for m in parse_sse(rest) if m.get("id") == 7]
    assert final and "sampled elsewhere" in text_of(final[-1]), final
    await client.delete()


async def test_a_cancellation_sent_to_another_replica_cancels_the_call_where_it_runs(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    client = streamable(http, cluster.urls[0])
    await client.initialize()
    started = time.monotonic()
    running = asyncio.ensure_future(on(client, cluster.urls[0], call(7, "everything__sleep", ms=8000, text="late")))
    await asyncio.sleep(0.5)
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7, "reason": "no"}}
    status, _ = await on(client, cluster.urls[1], cancel)
    assert status == 202
    status, messages = await asyncio.wait_for(running, 6)
    assert time.monotonic() - started < 4  # ended on the cancellation, not after the 8 s sleep
    assert not [m for m in messages if m.get("id") == 7 and "result" in m], messages  # no reply to a cancelled call
    status, messages = await on(client, cluster.urls[2], call(8, "everything__echo", text="after"))
    assert status == 200 and text_of(messages[-1]) == "after"  # the session goes on
    await client.delete()


async def test_a_per_session_child_is_reached_from_every_replica(cluster: Cluster, http: aiohttp.ClientSession) -> None:
    client = streamable(http, cluster.urls[0])
    await client.initialize()
    pids = set()
    for i, url in enumerate([*cluster.urls, *cluster.urls]):
        status, messages = await on(client, url, call(i, "mine__whoami"))
        assert status == 200, messages
        pids.add(text_of(messages[-1]))
    assert len(pids) == 1  # one child, on the session's home, whoever received the request
    other = streamable(http, cluster.urls[1])
    await other.initialize()
    _, messages = await on(other, cluster.urls[0], call(1, "mine__whoami"))
    assert text_of(messages[-1]) not in pids  # another session: a child of its own
    await client.delete()
    await other.delete()


async def test_a_per_identity_child_is_one_for_the_identity_across_replicas_and_sessions(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    pids: dict[str, set[str]] = {"ALICE": set(), "BOB": set()}
    for who in pids:
        for _ in range(2):
            client = streamable(http, cluster.url, who)
            await client.initialize()
            for i in range(3):
                _, _, messages = await client.post(call(i, "team__whoami"))
                pids[who].add(text_of(messages[-1]))
            await client.delete()
        modern_reply = await modern(
            http,
            cluster.url,
            {**call(9, "team__whoami"), "params": {"name": "team__whoami", "arguments": {}, "_meta": META}},
            who=who,
        )
        assert "result" in modern_reply, modern_reply
    assert len(pids["ALICE"]) == 1 and len(pids["BOB"]) == 1 and pids["ALICE"] != pids["BOB"], pids


# --- policy is global ---------------------------------------------------------------------------------------


async def test_a_rate_limit_holds_for_the_replicas_together(cluster: Cluster, http: aiohttp.ClientSession) -> None:
    clients = []
    for url in [*cluster.urls, *cluster.urls]:  # two sessions on each replica
        client = streamable(http, url, "LIMITED")
        await client.initialize()
        clients.append(client)
    allowed = 0
    limited_replies: list[dict[str, Any]] = []
    end = time.monotonic() + WINDOW

    async def hammer(client: Streamable) -> None:
        nonlocal allowed
        i = 0
        while time.monotonic() < end:
            i += 1
            _, _, messages = await client.post(call(i, "everything__echo", text="r"))
            reply = messages[-1]
            if "error" in reply or reply["result"].get("isError"):
                limited_replies.append(reply)
            else:
                allowed += 1

    await asyncio.gather(*(hammer(c) for c in clients))
    budget = BURST + RATE * WINDOW
    assert 0.9 * budget <= allowed <= 1.1 * budget, (allowed, budget)
    codes = {reply.get("error", {}).get("code") for reply in limited_replies}
    assert codes == {-32029}, limited_replies[:3]  # refused by the limit, nothing else
    waits = sorted({reply["error"]["data"]["retry_after"] for reply in limited_replies})
    assert waits[0] > 0 and waits[-1] <= 1 / RATE + 0.01, waits  # exact: when the next token is due
    for client in clients:
        await client.delete()


async def test_readyz_and_the_status_page_show_every_replica_and_which_serves_you(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    for index, url in enumerate(cluster.urls):
        async with http.get(url + "/readyz", headers=bearer("ADMIN")) as resp:
            ready = await resp.json()
            assert resp.status == 200, ready
            assert resp.headers["harbor-replica"] == f"r{index}"
        names = sorted(r["replica"] for r in ready["replicas"])
        assert names == ["r0", "r1", "r2"], ready
        assert [r["replica"] for r in ready["replicas"] if r["you"]] == [f"r{index}"]
        async with http.get(url + "/", headers=bearer("ADMIN")) as resp:
            page = await resp.text()
            assert resp.status == 200 and all(f"r{i}" in page for i in range(3)), page[:2000]
        families = await _metrics(http, url)
        labels = {s.labels.get("replica") for f in families.values() for s in f.samples}
        assert labels == {f"r{index}"}, labels


async def test_behind_nginx_the_host_check_holds_and_lets_proxied_requests_in(
    cluster: Cluster, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    body = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT_PARAMS}
    headers = {"content-type": "application/json", "accept": ACCEPT_BOTH, **bearer("ALICE")}
    cases = [
        ({"host": "mcp.example.test"}, 200),
        ({"host": "evil.example"}, 421),
        ({"host": "mcp.example.test", "origin": "http://evil.example"}, 403),  # DNS rebinding from a web page
        ({"origin": f"http://127.0.0.1:{cluster.nginx.port}"}, 200),
    ]
    for extra, expected in cases:
        async with http.post(cluster.url + "/mcp", json=body, headers={**headers, **extra}) as resp:
            assert resp.status == expected, (extra, await resp.text())
    # the control: an nginx that does not pass the client's Host sends "harbor_replicas", which is refused
    plain = Nginx(
        tmp_path / "nginx-no-host",
        cluster.replicas.addresses,
        replace={
            "proxy_set_header Host $http_host;": "",
        },
    )
    try:
        async with http.post(plain.url + "/mcp", json=body, headers=headers) as resp:
            assert resp.status == 421, await resp.text()
    finally:
        plain.stop()


# --- failures -----------------------------------------------------------------------------------------------


async def test_a_killed_replica_costs_its_calls_a_quick_error_and_nothing_else(
    doomed: Cluster, http: aiohttp.ClientSession
) -> None:
    shared = []
    for _ in range(6):
        client = streamable(http, doomed.url)
        await client.initialize()
        shared.append(client)
    sse_http = aiohttp.ClientSession(headers=bearer("ALICE"), timeout=aiohttp.ClientTimeout(total=30))
    held = LegacySSE(sse_http, doomed.urls[2])  # an SSE stream held by the replica that will die
    await held.connect()
    await held.initialize()
    homed = streamable(http, doomed.urls[2])  # a per-session child on the replica that will die
    await homed.initialize()
    _, messages = await on(homed, doomed.urls[2], call(1, "mine__whoami"))
    assert text_of(messages[-1]).isdigit()

    async def slow(client: Streamable) -> tuple[float, str]:
        """Call a 5 s tool on the replica that will be killed: when did the call end, and how."""
        try:
            status, messages = await on(client, doomed.urls[2], call(2, "everything__sleep", ms=5000, text="slow"))
            outcome = f"{status} {messages[-1] if messages else ''}"
        except aiohttp.ClientError as exc:  # the connection died with the replica
            outcome = type(exc).__name__
        return time.monotonic(), outcome

    in_flight = asyncio.gather(*(slow(c) for c in shared[:3]))
    await asyncio.sleep(0.5)
    killed_at = time.monotonic()
    doomed.replicas.kill(2)
    ended = await asyncio.wait_for(in_flight, 5)
    for at, outcome in ended:
        assert at - killed_at < 1.0 and "slow" not in outcome, (at - killed_at, outcome)
    # every shared-mode session goes on through nginx on the two replicas left
    for n, client in enumerate(shared):
        for i in range(4):
            status, _, messages = await client.post(call(10 + i, "everything__echo", text=f"{n}-{i}"))
            assert status == 200 and text_of(messages[-1]) == f"{n}-{i}", messages
    # the per-session child died with its replica: a clear error, then 404 (the client re-initializes)
    status, messages = await on(homed, doomed.urls[0], call(3, "mine__whoami"))
    assert status == 404 or "error" in messages[-1] or messages[-1]["result"].get("isError"), messages
    status, _ = await on(homed, doomed.urls[1], call(4, "mine__whoami"))
    assert status == 404
    # the SSE session died with the replica holding its stream: its /message POSTs get 404 elsewhere
    async with held.http.post(
        doomed.urls[0] + (held.endpoint or ""), json=call(5, "everything__echo", text="x")
    ) as resp:
        assert resp.status == 404, await resp.text()
    await held.close()
    await sse_http.close()


async def test_a_replica_stopped_gracefully_finishes_its_calls_and_hands_its_streams_over(
    doomed: Cluster, http: aiohttp.ClientSession
) -> None:
    client = streamable(http, doomed.urls[2])
    await client.initialize()
    async with GetStream(http, doomed.urls[2], client) as stream:
        await on(client, doomed.urls[2], call(1, "everything__change_tools"))
        await stream.wait_for(1, "notifications/tools/list_changed")
        in_flight = asyncio.ensure_future(
            on(client, doomed.urls[2], call(2, "everything__sleep", ms=1500, text="done"))
        )
        await asyncio.sleep(0.3)
        stopping = asyncio.ensure_future(asyncio.to_thread(doomed.replicas.terminate, 2))  # SIGTERM, as Kubernetes
        status, messages = await asyncio.wait_for(in_flight, 10)
        assert status == 200 and text_of(messages[-1]) == "done"  # the call in flight finished
        await asyncio.wait_for(stream.ended.wait(), 10)  # the GET stream was ended, for the client to reconnect
    await asyncio.wait_for(stopping, 20)
    last = [event_id for event_id, _ in stream.events if event_id][-1]
    await on(client, doomed.urls[1], call(3, "everything__change_tools"))  # while the client reconnects
    async with GetStream(http, doomed.urls[0], client, last=last) as resumed:
        methods = await resumed.wait_for(1, "notifications/tools/list_changed")
    assert methods.count("notifications/tools/list_changed") == 1, methods
    deadline = time.monotonic() + 2.5  # each replica refreshes its view of the others every second
    while True:
        async with http.get(doomed.urls[0] + "/readyz", headers=bearer("ADMIN")) as resp:
            names = sorted(r["replica"] for r in (await resp.json())["replicas"])
        if names == ["r0", "r1"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert names == ["r0", "r1"]  # the stopped replica deleted its heartbeat: gone well before its 3 s TTL


async def test_redis_lost_and_back_turns_readiness_503_and_back_with_no_wrong_reply(
    doomed: Cluster, http: aiohttp.ClientSession
) -> None:
    client = streamable(http, doomed.urls[0])
    await client.initialize()
    in_flight = asyncio.ensure_future(
        on(client, doomed.urls[0], call(9, "everything__sleep", ms=1500, text="finished"))
    )
    await asyncio.sleep(0.3)
    doomed.redis.kill()
    deadline = time.monotonic() + 10
    reasons = []
    while time.monotonic() < deadline:
        async with http.get(doomed.urls[0] + "/readyz") as resp:
            if resp.status == 503:
                reasons.append(await resp.text())
                break
        await asyncio.sleep(0.1)
    assert reasons and "redis" in reasons[0].lower(), reasons
    status, messages = await asyncio.wait_for(in_flight, 10)
    assert status == 200 and text_of(messages[-1]) == "finished"  # a call in flight when Redis went finishes
    fresh = streamable(http, doomed.urls[1])
    status, _, messages = await fresh.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT_PARAMS})
    assert status == 503 and "redis" in json.dumps(messages).lower(), (status, messages)
    status, _, messages = await client.post(call(1, "everything__echo", text="held here"))
    assert status == 200 and text_of(messages[-1]) == "held here"  # a session this replica holds goes on
    doomed.redis.start()
    for url in doomed.urls:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            async with http.get(url + "/readyz") as resp:
                if resp.status == 200:
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{url} not ready again")
    again = streamable(http, doomed.url)
    await again.initialize()
    for i in range(6):
        status, _, messages = await again.post(call(i, "everything__echo", text=f"back {i}"))
        assert status == 200 and text_of(messages[-1]) == f"back {i}"


def test_an_unreachable_redis_at_start_exits_2_saying_what_to_fix(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the socket is closed
    path = tmp_path / "harbor.yaml"
    path.write_text(config(f"redis://127.0.0.1:{port}/0", "nowhere"))
    argv = [sys.executable, "-m", "gateway", "serve", "--config", str(path), "--port", "0"]
    done = subprocess.run(
        argv,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **TOKENS, "HARBOR_INDEX": "0", "HARBOR_PORT": "0"},
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"cannot reach Redis at 127.0.0.1:{port}" in done.stderr and "fix gateway.state" in done.stderr
    assert "Traceback" not in done.stderr


# --- helpers ------------------------------------------------------------------------------------------------


async def _metrics(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url + "/metrics", headers=bearer("ALICE")) as resp:
        assert resp.status == 200, await resp.text()
        return {f.name: f for f in text_string_to_metric_families(await resp.text())}


def _counter(families: dict[str, Any], name: str) -> float:
    family = families.get(name.removesuffix("_total"))
    return sum(s.value for s in family.samples if s.name == name) if family else 0.0
