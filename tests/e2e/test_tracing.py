"""Traces, in process: translate and the gateway served by a real uvicorn on loopback in the test's own
event loop, real stdio children, spans caught by the OpenTelemetry SDK's `InMemorySpanExporter`.

The gateway docks the traced test server twice: as a stdio child, and by URL through a translate app
(traced too, its HTTP requests recorded), so one call shows the whole chain — the client's traceparent
→ gateway SERVER → policy → gateway CLIENT → translate SERVER → translate CLIENT → the child, which
reports the `_meta` trace context it was handed.
"""

from __future__ import annotations

import asyncio
import gzip
import http.server
import json
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.app import HTTPOptions, build_app, build_hub_app, listen
from gateway.config import parse_config
from gateway.core import spans, tracing
from gateway.hub.hub import Hub
from gateway.translate.manager import SessionManager, StdioServer
from tests.conftest import ROOT, Translate

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

TRACED = ROOT / "tests" / "fixtures" / "traced_server.py"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
HEADERS = {"accept": "application/json", "content-type": "application/json"}
INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing.install(spans.Tracing(provider))
    try:
        yield memory
    finally:
        tracing.install(None)


class Recorder:
    """Pure ASGI: keeps the headers of every request before passing it on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers: list[dict[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await self.app(scope, receive, send)


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2))
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    with anyio.fail_after(30):
        while not server.started:
            await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        with anyio.fail_after(30):
            await task


def _translate_app() -> ASGIApp:
    return build_app(SessionManager(StdioServer(name="traced", argv=[sys.executable, str(TRACED)])), HTTPOptions())


class Session:
    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http, self.url, self.id = http, url, ""

    async def open(self) -> None:
        response = await self.http.post(self.url, json=INIT, headers=HEADERS)
        assert response.status_code == 200, response.text
        self.id = response.headers["mcp-session-id"]

    async def call(self, request_id: int, method: str, params: dict[str, Any], **headers: str) -> dict[str, Any]:
        message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        sent = {**HEADERS, "mcp-session-id": self.id, "mcp-protocol-version": "2025-11-25", **headers}
        response = await self.http.post(self.url, json=message, headers=sent)
        assert response.status_code == 200, response.text
        reply: dict[str, Any] = response.json()
        return reply


def _span_id(span: ReadableSpan) -> str:
    return format(span.context.span_id, "016x")  # type: ignore[union-attr]


def _parent(span: ReadableSpan) -> str | None:
    return format(span.parent.span_id, "016x") if span.parent is not None else None


def _one(found: list[ReadableSpan], name: str, kind: SpanKind | None = None) -> ReadableSpan:
    matches = [s for s in found if s.name == name and (kind is None or s.kind == kind)]
    assert len(matches) == 1, [(s.name, s.kind) for s in found]
    return matches[0]


async def test_translate_makes_a_server_span_from_the_clients_traceparent_and_hands_the_child_its_context(
    exporter: InMemorySpanExporter,
) -> None:
    with anyio.fail_after(60):
        async with serving(_translate_app()) as url, httpx.AsyncClient(timeout=30) as http:
            session = Session(http, url + "/mcp")
            await session.open()
            reply = await session.call(
                1, "tools/call", {"name": "trace_context", "arguments": {}}, traceparent=TRACEPARENT
            )
            seen_by_child = json.loads(reply["result"]["content"][0]["text"])["traceparent"]
    found = list(exporter.get_finished_spans())
    server = _one(found, "tools/call trace_context", SpanKind.SERVER)
    client = _one(found, "tools/call trace_context", SpanKind.CLIENT)
    reply_span = _one(found, "reply")
    assert format(server.context.trace_id, "032x") == TRACE_ID and _parent(server) == CLIENT_SPAN  # type: ignore[union-attr]
    assert _parent(client) == _parent(reply_span) == _span_id(server)
    assert not [s for s in found if s.name == "policy"]  # translate applies no policy
    assert seen_by_child == f"00-{TRACE_ID}-{_span_id(client)}-01"  # the child's parent is our CLIENT span
    attributes = dict(server.attributes or {})
    assert attributes["mcp.method.name"] == "tools/call" and attributes["gen_ai.tool.name"] == "trace_context"
    assert attributes["gen_ai.operation.name"] == "execute_tool" and attributes["jsonrpc.request.id"] == "1"
    assert attributes["mcp.session.id"] == session.id and attributes["mcp.protocol.version"] == "2025-11-25"
    assert attributes["network.transport"] == "tcp" and attributes["client.address"] == "127.0.0.1"
    assert dict(client.attributes or {})["harbor.server"] == "traced"
    assert server.start_time <= client.start_time and client.end_time <= reply_span.start_time  # type: ignore[operator]
    assert reply_span.end_time <= server.end_time  # type: ignore[operator]
    initialize = _one(found, "initialize", SpanKind.SERVER)
    assert initialize.parent is None and dict(initialize.attributes or {})["mcp.protocol.version"] == "2025-11-25"


async def test_the_gateway_traces_policy_the_upstream_call_and_the_reply_through_a_remote_upstream(
    exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    remote = Recorder(_translate_app())
    with anyio.fail_after(90):
        async with serving(remote) as remote_url:
            config = {
                "mcpServers": {
                    "local": {"command": sys.executable, "args": [str(TRACED)]},
                    "far": {"url": remote_url + "/mcp"},
                },
                "gateway": {"host": "127.0.0.1"},
            }
            hub = Hub(parse_config(config, tmp_path))
            async with serving(build_hub_app(hub)) as url, httpx.AsyncClient(timeout=30) as http:
                while hub.readiness(strict=True)[0] is False:
                    await asyncio.sleep(0.05)
                session = Session(http, url + "/mcp")
                await session.open()
                meta = {"traceparent": TRACEPARENT}
                far = await session.call(
                    1, "tools/call", {"name": "far__trace_context", "arguments": {}, "_meta": meta}
                )
                unknown = await session.call(2, "tools/call", {"name": "local__nope", "arguments": {}})
                failed = await session.call(3, "tools/call", {"name": "local__test_error_handling", "arguments": {}})
    assert "error" in unknown and failed["result"]["isError"] is True
    found = list(exporter.get_finished_spans())
    gateway = _one(found, "tools/call far__trace_context", SpanKind.SERVER)
    policy = next(s for s in found if s.name == "policy" and _parent(s) == _span_id(gateway))
    clients = [s for s in found if s.kind == SpanKind.CLIENT and s.name == "tools/call trace_context"]
    gateway_client = next(s for s in clients if _parent(s) == _span_id(gateway))
    assert _parent(gateway) == CLIENT_SPAN  # the `_meta` context is the parent (SEP-414)
    assert dict(gateway_client.attributes or {})["harbor.server"] == "far"
    assert policy.end_time <= gateway_client.start_time  # type: ignore[operator]
    # the remote got the context as headers and in _meta; its own server span is the gateway CLIENT's child
    call_headers = [h for h in remote.headers if h.get("traceparent")]
    assert call_headers and call_headers[-1]["traceparent"] == f"00-{TRACE_ID}-{_span_id(gateway_client)}-01"
    translate_server = next(s for s in found if s.kind == SpanKind.SERVER and s.name == "tools/call trace_context")
    assert _parent(translate_server) == _span_id(gateway_client) and not translate_server.links
    translate_client = next(s for s in clients if _parent(s) == _span_id(translate_server))
    seen_by_child = json.loads(far["result"]["content"][0]["text"])["traceparent"]
    assert seen_by_child == f"00-{TRACE_ID}-{_span_id(translate_client)}-01"
    assert {format(s.context.trace_id, "032x") for s in (gateway, policy, gateway_client, translate_server)} == {
        TRACE_ID
    }  # type: ignore[union-attr]

    refused = _one(found, "tools/call local__nope", SpanKind.SERVER)
    refused_policy = next(s for s in found if s.name == "policy" and _parent(s) == _span_id(refused))
    assert refused.status.status_code == StatusCode.ERROR and dict(refused.attributes or {})["error.type"] == "-32602"
    assert refused_policy.status.status_code == StatusCode.ERROR
    assert not [s for s in found if s.kind == SpanKind.CLIENT and _parent(s) == _span_id(refused)]
    tool_error = _one(found, "tools/call local__test_error_handling", SpanKind.SERVER)
    assert dict(tool_error.attributes or {})["error.type"] == "tool_error"
    assert tool_error.status.status_code == StatusCode.ERROR


async def test_replies_streamed_as_sse_and_over_legacy_sse_end_their_spans_when_written(
    exporter: InMemorySpanExporter,
) -> None:
    """A call with progress is answered as an SSE stream (POST) and, on /sse, on the session's stream."""
    with anyio.fail_after(60):
        async with serving(_translate_app()) as url, httpx.AsyncClient(timeout=30) as http:
            session = Session(http, url + "/mcp")
            await session.open()
            params = {"name": "progress", "arguments": {"steps": 2}, "_meta": {"progressToken": "t"}}
            message = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": params}
            sent = {**HEADERS, "accept": "application/json, text/event-stream", "mcp-session-id": session.id}
            async with http.stream("POST", url + "/mcp", json=message, headers=sent) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                body = "".join([chunk async for chunk in response.aiter_text()])
            assert '"done 2 steps"' in body
            async with http.stream("GET", url + "/sse", headers={"accept": "text/event-stream"}) as stream:
                lines = stream.aiter_lines()
                endpoint = next_data = ""
                async for line in lines:
                    if line.startswith("data:"):
                        endpoint = line[5:].strip()
                        break
                post = url + endpoint
                await http.post(post, json=INIT)
                await http.post(post, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
                call = {
                    "jsonrpc": "2.0",
                    "id": 6,
                    "method": "tools/call",
                    "params": {"name": "echo", "arguments": {"text": "legacy"}},
                }
                await http.post(post, json=call, headers={"traceparent": TRACEPARENT})
                async for line in lines:
                    if line.startswith("data:") and '"id":6' in line.replace(" ", ""):
                        next_data = line
                        break
            assert "legacy" in next_data
    found = list(exporter.get_finished_spans())
    streamed = _one(found, "tools/call progress", SpanKind.SERVER)
    assert streamed.status.status_code == StatusCode.UNSET
    assert [s.name for s in found if _parent(s) == _span_id(streamed)] == ["tools/call progress", "reply"]
    legacy = _one(found, "tools/call echo", SpanKind.SERVER)
    assert _parent(legacy) == CLIENT_SPAN  # the POST's traceparent header, on the legacy transport


async def test_a_session_that_closes_ends_its_open_spans_with_an_error(exporter: InMemorySpanExporter) -> None:
    manager = SessionManager(StdioServer(name="traced", argv=[sys.executable, str(TRACED)]))
    with anyio.fail_after(60):
        async with serving(build_app(manager, HTTPOptions())) as url, httpx.AsyncClient(timeout=30) as http:
            session = Session(http, url + "/mcp")
            await session.open()
            message = {
                "jsonrpc": "2.0",
                "id": 9,
                "method": "tools/call",
                "params": {"name": "sleep", "arguments": {"ms": 5000}},
            }
            sent = {**HEADERS, "mcp-session-id": session.id}
            call = asyncio.ensure_future(http.post(url + "/mcp", json=message, headers=sent))
            while not manager.sessions[session.id].inflight:
                await asyncio.sleep(0.01)
            assert (await http.delete(url + "/mcp", headers={"mcp-session-id": session.id})).status_code == 200
            call.cancel()
    ended = [s for s in exporter.get_finished_spans() if s.name == "tools/call sleep" and s.kind == SpanKind.SERVER]
    assert len(ended) == 1 and ended[0].status.status_code == StatusCode.ERROR
    assert "session closed" in (ended[0].status.description or "")


def test_tracing_is_off_without_the_environment_and_the_off_path_imports_no_opentelemetry() -> None:
    assert not tracing.wanted({})
    assert not tracing.wanted({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"})
    assert not tracing.wanted({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x"}) and tracing.wanted(
        {"OTEL_TRACES_EXPORTER": "console"}
    )
    code = (
        "import sys\n"
        "from gateway.core import tracing\n"
        "import gateway.app, gateway.hub.hub, gateway.translate.cli, gateway.transports.streamable_http\n"
        "assert tracing.configure('x', {}) is False\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    assert out.strip() == "[]"


class Collector:
    """A minimal OTLP/HTTP trace receiver: POST /v1/traces with protobuf, spans kept as dicts."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        spans: list[dict[str, Any]] = []
        self.spans = spans

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                for resource in request.resource_spans:
                    service = next(
                        a.value.string_value for a in resource.resource.attributes if a.key == "service.name"
                    )
                    for scope in resource.scope_spans:
                        for span in scope.spans:
                            spans.append(
                                {
                                    "service": service,
                                    "name": span.name,
                                    "kind": span.kind,
                                    "trace": span.trace_id.hex(),
                                    "id": span.span_id.hex(),
                                    "parent": span.parent_span_id.hex() or None,
                                    "path": self.path,
                                }
                            )
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


async def test_the_otel_environment_turns_traces_on_in_the_real_process_and_otlp_carries_them(
    translate: type[Translate],
) -> None:
    """`python -m gateway.translate` with only OTEL_* variables set exports over OTLP/HTTP to a receiver; the
    stdio child (the MCP SDK, with an SDK exporter of its own) parents its span to the gateway's CLIENT span."""
    collector = Collector()
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,  # nothing else: otlp over http/protobuf is the default
        "OTEL_SERVICE_NAME": "translate-under-test",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    try:
        bridge = translate(
            "--env-passthrough", "OTEL_EXPORTER_OTLP_ENDPOINT", command=f"{sys.executable} {TRACED}", env=env
        )
        with anyio.fail_after(60):
            async with httpx.AsyncClient(timeout=30) as http:
                session = Session(http, bridge.url + "/mcp")
                await session.open()
                await session.call(
                    1, "tools/call", {"name": "echo", "arguments": {"text": "x"}}, traceparent=TRACEPARENT
                )
            while len({s["service"] for s in collector.spans if s["name"] == "tools/call echo"}) < 2:
                await anyio.sleep(0.05)
    finally:
        collector.stop()
    ours = {
        s["kind"]: s
        for s in collector.spans
        if s["service"] == "translate-under-test" and s["name"] == "tools/call echo"
    }
    child = next(s for s in collector.spans if s["service"] == "traced-child" and s["name"] == "tools/call echo")
    server, client = ours[2], ours[3]  # OTLP SpanKind: 2 SERVER, 3 CLIENT
    assert server["trace"] == client["trace"] == child["trace"] == TRACE_ID
    assert server["parent"] == CLIENT_SPAN and client["parent"] == server["id"]
    assert child["parent"] == client["id"] and child["kind"] == 2  # the SDK server took its parent from _meta
    assert {s["path"] for s in collector.spans} == {"/v1/traces"}
    assert "traces=True" in bridge.log() or '"traces": true' in bridge.log()
