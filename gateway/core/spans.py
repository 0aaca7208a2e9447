"""The spans of one client request, made with the OpenTelemetry SDK (imported only when tracing is on).

Per client request (translate and the gateway alike):

    SERVER  "tools/call everything__echo"    received by a transport → its reply written to the client
    ├── INTERNAL "policy"                   the gateway only: views, rate limit, routing, until forwarded
    ├── CLIENT   "tools/call echo"           the upstream call: forwarded → the upstream's reply
    └── INTERNAL "reply"                     that reply handed to the client's stream → written

Names and attributes follow the OpenTelemetry semantic conventions for MCP (development status):
`{mcp.method.name} {target}` span names, `mcp.method.name`, `mcp.session.id`, `mcp.protocol.version`,
`jsonrpc.request.id`, `gen_ai.tool.name` + `gen_ai.operation.name=execute_tool`, `gen_ai.prompt.name`,
`mcp.resource.uri`, `network.*`, `client.*`; a JSON-RPC error sets `error.type` and
`rpc.response.status_code` to its code and the status to ERROR with its message, a tool result with
`isError` sets `error.type=tool_error`. `harbor.server` names the docked server of an upstream call.

Context: the parent of the SERVER span is the W3C trace context in the request's `params._meta`
(`traceparent`/`tracestate`, SEP-414, as the MCP SDK writes it), else the HTTP request's `traceparent`
header; when both are there, the HTTP one becomes a link (the conventions' advice). The upstream request
carries the CLIENT span's context in its `params._meta` (so an SDK server makes its span a child of it),
and a remote (HTTP) upstream also gets it as `traceparent`/`tracestate` headers. Propagation uses the
globally configured propagators (`OTEL_PROPAGATORS`, W3C by default).

Open spans are keyed by (session id, request id), at most `MAX_OPEN`; a session that closes ends its
open spans with an error saying so, so no span is lost silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.util._importlib_metadata import entry_points

from gateway import __version__
from gateway.core.jsonrpc import Message, RequestId
from gateway.core.tracing import TracingUnavailable

MAX_OPEN = 10_000
_PROTOCOLS = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}
_CONTEXT_KEYS = (b"traceparent", b"tracestate", b"baggage")


def provider_from_environment(service_name: str, environ: Mapping[str, str]) -> TracerProvider:
    """A tracer provider set up as the SDK reads the environment, installed as the global one.

    The resource is `Resource.create()` (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`; `service_name` when
    they name none), the sampler the SDK's (`OTEL_TRACES_SAMPLER[_ARG]`), each exporter of
    `OTEL_TRACES_EXPORTER` (default `otlp`) is loaded from the SDK's `opentelemetry_traces_exporter` entry
    points and reads its own `OTEL_EXPORTER_OTLP_*` settings, behind a `BatchSpanProcessor` (`OTEL_BSP_*`).
    `otlp` means `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL`, by default
    `http/protobuf` (the OTLP specification's default; the `otel` extra installs that exporter).

    Raises:
        TracingUnavailable: an exporter or protocol that is not installed or not known.
    """
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    provider = TracerProvider(resource=resource)
    for exporter in _exporters(environ):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def _exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    exporters = []
    for name in (environ.get("OTEL_TRACES_EXPORTER") or "otlp").split(","):
        name = name.strip().lower()
        if name in ("", "none"):
            continue
        if name == "otlp":
            protocol = (
                environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf"
            ).strip()
            if protocol not in _PROTOCOLS:
                raise TracingUnavailable(f"OTLP protocol {protocol!r} is not known; use http/protobuf or grpc")
            name = _PROTOCOLS[protocol]
        found = list(entry_points(group="opentelemetry_traces_exporter", name=name))
        if not found:
            raise TracingUnavailable(
                f"no trace exporter {name!r} is installed (OTEL_TRACES_EXPORTER); the otel extra has "
                "otlp over http/protobuf, and console"
            )
        exporters.append(found[0].load()())
    return exporters


@dataclass
class _Request:
    server: Span
    method: str
    policy: Span | None = None
    client: Span | None = None
    reply: Span | None = None


class Tracing:
    """The hooks of `gateway.core.tracing`, recording spans with `provider` (the global one by default)."""

    def __init__(self, provider: trace.TracerProvider | None = None) -> None:
        self._tracer = (provider or trace.get_tracer_provider()).get_tracer("harbor-gateway", __version__)
        self._open: dict[tuple[str, RequestId], _Request] = {}

    # --- hooks --------------------------------------------------------------------------------------------

    def received(self, session: Any, message: Message, scope: Mapping[str, Any]) -> None:
        """A transport took a client request for `session` (before routing it)."""
        key = (session.id, message["id"])
        if key in self._open:  # a duplicate id: the first one's span is the one that stays open
            self._open[key].server.add_event("a second request with this id arrived while this one was open")
            return
        if len(self._open) >= MAX_OPEN:
            self._end(self._open.pop(next(iter(self._open))), "abandoned: too many requests open at once")
        method, params = message["method"], message.get("params") or {}
        parent, links = _parent(params, scope)
        attributes = {
            **_target_attributes(method, params),
            "jsonrpc.request.id": str(message["id"]),
            "mcp.session.id": session.id,
            "network.transport": "tcp",
            "network.protocol.name": "http",
        }
        version = session.protocol_version or (params.get("protocolVersion") if method == "initialize" else None)
        if isinstance(version, str):
            attributes["mcp.protocol.version"] = version
        if scope.get("http_version"):
            attributes["network.protocol.version"] = scope["http_version"]
        client = scope.get("client")
        if client:
            attributes["client.address"], attributes["client.port"] = client[0], client[1]
        span = self._tracer.start_span(
            _name(method, params), context=parent, kind=SpanKind.SERVER, attributes=attributes, links=links
        )
        request = _Request(span, method)
        if hasattr(session, "identity") and method not in ("initialize", "ping"):  # the gateway's policy applies
            request.policy = self._tracer.start_span("policy", context=trace.set_span_in_context(span))
        self._open[key] = request

    def forwarding(self, session: Any, client_id: RequestId, forwarded: Message, upstream: str) -> Message:
        """A router is about to send a client's request upstream; returns it with the trace context in `_meta`."""
        root = getattr(session, "parent", session)  # a merged session's presence on one server
        request = self._open.get((root.id, client_id))
        if request is None or request.client is not None:
            return forwarded
        if request.policy is not None:
            request.policy.end()
            request.policy = None
        params = forwarded.get("params") or {}
        attributes = {
            **_target_attributes(forwarded["method"], params),
            "jsonrpc.request.id": str(forwarded["id"]),
            "harbor.server": upstream,
        }
        request.client = self._tracer.start_span(
            _name(forwarded["method"], params),
            context=trace.set_span_in_context(request.server),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        meta = dict(params.get("_meta") or {})
        propagate.inject(meta, context=trace.set_span_in_context(request.client))
        return {**forwarded, "params": {**params, "_meta": meta}}

    def delivered(self, session: Any, message: Message) -> None:
        """A response is handed to the client's streams (the upstream answered, or the gateway did)."""
        request = self._open.get((session.id, message["id"])) if "id" in message else None
        if request is None or request.reply is not None:
            return
        error = _error(request.method, message)
        step = request.client or request.policy
        if step is not None:
            _mark(step, error)
            step.end()
            request.client = request.policy = None
        request.reply = self._tracer.start_span("reply", context=trace.set_span_in_context(request.server))

    def written(self, session_id: str, messages: Iterable[Message]) -> None:
        """Messages were written to the client; a response among them ends its request's spans."""
        for message in messages:
            if "method" in message or "id" not in message:
                continue
            request = self._open.pop((session_id, message["id"]), None)
            if request is None:
                continue
            error = _error(request.method, message)
            for step in (request.policy, request.client, request.reply):
                if step is not None:
                    step.end()
            _mark(request.server, error)
            request.server.end()

    def session_closed(self, session_id: str) -> None:
        """The session ended: whatever it still had open ends, saying so."""
        for key in [k for k in self._open if k[0] == session_id]:
            self._end(self._open.pop(key), "the session closed before the reply was written")

    def http_headers(self, message: Message) -> dict[str, str]:
        """The trace context of a request bound for a remote upstream, as HTTP headers."""
        meta = (message.get("params") or {}).get("_meta") if "method" in message else None
        if not isinstance(meta, dict):
            return {}
        return {k: meta[k] for k in ("traceparent", "tracestate") if isinstance(meta.get(k), str)}

    def _end(self, request: _Request, why: str) -> None:
        for span in (request.policy, request.client, request.reply, request.server):
            if span is not None:
                span.set_status(Status(StatusCode.ERROR, why))
                span.end()


def _parent(params: Message, scope: Mapping[str, Any]) -> tuple[Context | None, list[Link]]:
    meta = params.get("_meta")
    from_meta = _valid(propagate.extract(meta)) if isinstance(meta, dict) and "traceparent" in meta else None
    carrier = {k.decode(): v.decode("latin-1") for k, v in scope.get("headers", ()) if k in _CONTEXT_KEYS}
    from_http = _valid(propagate.extract(carrier)) if carrier else None
    if from_meta is None:
        return from_http, []
    if from_http is None:
        return from_meta, []
    http_span = trace.get_current_span(from_http).get_span_context()
    same = http_span == trace.get_current_span(from_meta).get_span_context()
    return from_meta, [] if same else [Link(http_span)]


def _valid(context: Context) -> Context | None:
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def _name(method: str, params: Message) -> str:
    target = params.get("name") if method in ("tools/call", "prompts/get") else None
    return f"{method} {target}" if isinstance(target, str) else method


def _target_attributes(method: str, params: Message) -> dict[str, Any]:
    attributes: dict[str, Any] = {"mcp.method.name": method}
    name, uri = params.get("name"), params.get("uri")
    if method == "tools/call" and isinstance(name, str):
        attributes["gen_ai.tool.name"], attributes["gen_ai.operation.name"] = name, "execute_tool"
    elif method == "prompts/get" and isinstance(name, str):
        attributes["gen_ai.prompt.name"] = name
    elif method.startswith("resources/") and isinstance(uri, str):
        attributes["mcp.resource.uri"] = uri
    return attributes


def _error(method: str, message: Message) -> tuple[str, str] | None:
    """(error.type, description) of a response that failed; None for a success."""
    error = message.get("error")
    if isinstance(error, dict):
        return str(error.get("code")), str(error.get("message", ""))
    result = message.get("result")
    if method == "tools/call" and isinstance(result, dict) and result.get("isError") is True:
        return "tool_error", ""
    return None


def _mark(span: Span, error: tuple[str, str] | None) -> None:
    if error is None:
        return
    kind, description = error
    span.set_attribute("error.type", kind)
    if kind != "tool_error":
        span.set_attribute("rpc.response.status_code", kind)
    span.set_status(Status(StatusCode.ERROR, description or None))
