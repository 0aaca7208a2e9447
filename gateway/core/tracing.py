"""OpenTelemetry traces, off by default: the switch, and the hooks the data path calls when it is on.

Contract: every hook site in the data path reads `if tracing.enabled:` and does nothing else while tracing
is off, so an untraced gateway pays one attribute test per hook and never imports OpenTelemetry (the
`otel` extra may not even be installed). `configure()` turns tracing on from the standard environment
variables, the way the OpenTelemetry SDK reads them:
- on when `OTEL_TRACES_EXPORTER` is set to anything but `none`, or when `OTEL_EXPORTER_OTLP_ENDPOINT` /
  `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set; `OTEL_SDK_DISABLED=true` keeps it off;
- everything else (exporter endpoint, headers, protocol, sampler, batch delays, resource attributes,
  propagators) is the SDK's own business: see `gateway/core/spans.py`.
The hooks (`received`, `forwarding`, `delivered`, `written`, `session_closed`, `http_headers`) are
documented where they are implemented, in `spans.Tracing`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.core.jsonrpc import Message, RequestId
    from gateway.core.spans import Tracing

enabled = False
_tracing: Tracing | None = None


class TracingUnavailable(Exception):
    """Tracing was asked for but cannot run; the message says what to install or fix."""


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether the environment asks for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure(service_name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on when the environment asks for it; True when it is on.

    Raises:
        TracingUnavailable: traces are asked for but the `otel` extra is not installed, or an exporter
            named in `OTEL_TRACES_EXPORTER` cannot be found.
    """
    environ = os.environ if environ is None else environ
    if not wanted(environ):
        return False
    try:
        from gateway.core import spans
    except ImportError as exc:
        raise TracingUnavailable(
            f"traces are asked for (OTEL_* variables) but OpenTelemetry is not installed ({exc.name}): "
            "pip install 'harbor-gateway[otel]', or unset OTEL_TRACES_EXPORTER / OTEL_EXPORTER_OTLP_ENDPOINT"
        ) from None
    install(spans.Tracing(spans.provider_from_environment(service_name, environ)))
    return True


def install(tracing: Tracing | None) -> None:
    """Route the hooks to `tracing` (None: off again). Tests install one with an in-memory exporter."""
    global enabled, _tracing
    _tracing, enabled = tracing, tracing is not None


def received(session: Any, messages: Sequence[Message], kinds: Sequence[str], scope: Mapping[str, Any]) -> None:
    if _tracing is not None:
        for message, kind in zip(messages, kinds, strict=True):
            if kind == "request":
                _tracing.received(session, message, scope)


def forwarding(session: Any, client_id: RequestId, forwarded: Message, upstream: str) -> Message:
    return _tracing.forwarding(session, client_id, forwarded, upstream) if _tracing is not None else forwarded


def delivered(session: Any, message: Message) -> None:
    if _tracing is not None:
        _tracing.delivered(session, message)


def written(session_id: str, messages: Iterable[Message]) -> None:
    if _tracing is not None:
        _tracing.written(session_id, messages)


def session_closed(session_id: str) -> None:
    if _tracing is not None:
        _tracing.session_closed(session_id)


def http_headers(message: Message) -> dict[str, str]:
    return _tracing.http_headers(message) if _tracing is not None else {}
