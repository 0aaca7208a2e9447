"""The 2026-07-28 envelope ladder and header rules, as pure functions (the order the spec gives them)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core import era

META = {era.META_VERSION: "2026-07-28", era.META_CAPABILITIES: {}}


def _request(method: str = "tools/call", meta: Any = META, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 3, "method": method, "params": {**params}}
    if meta is not None:
        body["params"]["_meta"] = meta
    return body


def _headers(method: str = "tools/call", name: str | None = "echo", version: str = "2026-07-28") -> dict[str, str]:
    headers = {era.VERSION_HEADER: version, era.METHOD_HEADER: method}
    if name is not None:
        headers[era.NAME_HEADER] = name
    return headers


def test_a_modern_request_is_known_by_its_header_or_else_its_meta() -> None:
    assert era.is_modern({}, {era.VERSION_HEADER: "2026-07-28"})
    assert not era.is_modern(_request(), {era.VERSION_HEADER: "2025-11-25"})  # the header decides when present
    assert era.is_modern(_request(), {}) and not era.is_modern({"method": "initialize"}, {})


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        (_request(meta=None), _headers(), -32602),
        (_request(meta={era.META_CAPABILITIES: {}}), _headers(), -32602),
        (_request(meta={era.META_VERSION: "2026-07-28"}), _headers(), -32602),
        (_request(name="echo"), _headers(version="2025-11-25"), -32020),
        (_request(name="echo"), {era.METHOD_HEADER: "tools/call", era.NAME_HEADER: "echo"}, -32020),
        (_request(name="echo"), _headers(method="tools/list"), -32020),
        (_request(name="echo"), _headers(name="other"), -32020),
        (_request(meta={**META, era.META_VERSION: "2099-01-01"}, name="echo"), _headers(version="2099-01-01"), -32022),
        (_request(meta={**META, era.META_CAPABILITIES: []}, name="echo"), _headers(), -32602),
    ],
)
def test_the_ladder_rejects_with_the_spec_code(body: dict[str, Any], headers: dict[str, str], code: int) -> None:
    rejected = era.envelope(body, headers)
    assert isinstance(rejected, era.Rejection) and rejected.code == code
    if code == -32022:
        assert rejected.data == {"supported": ["2026-07-28"], "requested": "2099-01-01"}
    assert era.HTTP_STATUS[code] == 400


def test_a_good_envelope_is_read_and_the_name_header_may_be_base64() -> None:
    body = _request(meta={**META, era.META_LOG_LEVEL: "info", era.META_CLIENT_INFO: {"name": "c"}}, name="héllo")
    checked = era.envelope(body, _headers(name="=?base64?aMOpbGxv?="))
    assert isinstance(checked, era.Envelope) and checked.log_level == "info" and checked.client_info == {"name": "c"}
    assert era.duplicated_header([(b"Mcp-Method", b"a"), (b"mcp-method", b"b")]) == "mcp-method"


def test_header_values_are_compared_without_surrounding_whitespace() -> None:
    body = _request(name="test_simple_text")
    spaced = {k: f"  {v}\t" for k, v in _headers(name="test_simple_text").items()}  # RFC 9110: OWS is not the value
    assert isinstance(era.envelope(body, spaced), era.Envelope)
    assert isinstance(era.envelope(body, _headers(name="other")), era.Rejection)


def test_envelopes_come_off_and_go_on_without_touching_the_rest() -> None:
    params = {"name": "t", "inputResponses": {}, "requestState": "s", "_meta": {**META, "progressToken": 1}}
    assert era.without_envelope(params) == {"name": "t", "_meta": {"progressToken": 1}}
    added = era.with_envelope({"name": "t"}, {"sampling": {}}, {"name": "c"}, None)
    assert added["_meta"][era.META_CAPABILITIES] == {"sampling": {}} and added["name"] == "t"


def test_mcp_param_headers_must_agree_with_the_arguments() -> None:
    schema = {
        "type": "object",
        "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "n": {"type": "integer", "x-mcp-header": "N"},
        },
    }
    ok = [(b"mcp-param-region", b"eu"), (b"mcp-param-n", b"42.0")]
    assert era.param_header_rejection(schema, {"region": "eu", "n": 42}, ok) is None
    assert era.param_header_rejection(schema, {"region": "us", "n": 42}, ok) is not None
    assert era.param_header_rejection(schema, {"region": "eu"}, ok) is not None  # header without its argument
    missing = era.param_header_rejection(schema, {"region": "eu", "n": 1}, [(b"mcp-param-region", b"eu")])
    assert missing is not None and missing.code == -32020
    assert (
        era.param_header_rejection(
            {"type": "object", "properties": {"x": {"type": "number", "x-mcp-header": "X"}}}, {"x": 1}, []
        )
        is None
    )  # invalid annotation: nothing checked
