"""The spec's params shapes, checked before anything reaches a shared child."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core.errors import InvalidParams
from gateway.core.shapes import check_notification, check_request, check_response


def _request(method: str, params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("tools/call", {"name": "echo", "arguments": 5}, "`arguments`"),
        ("tools/call", {"name": "echo", "arguments": [1]}, "`arguments`"),
        ("tools/call", {"name": 5}, "`name`"),
        ("tools/call", {}, "`name`"),
        ("tools/call", {"name": "x", "_meta": 3}, "`_meta`"),
        ("tools/call", {"name": "x", "_meta": {"progressToken": 1.5}}, "progressToken"),
        ("tools/call", {"name": "x", "_meta": {"progressToken": False}}, "progressToken"),
        ("prompts/get", {"name": "p", "arguments": {"a": 1}}, "arguments.a"),
        ("resources/read", {"uri": None}, "`uri`"),
        ("resources/subscribe", {}, "`uri`"),
        ("tools/list", {"cursor": 1}, "`cursor`"),
        ("completion/complete", {"ref": "x", "argument": {"name": "a", "value": "b"}}, "`ref`"),
        (
            "completion/complete",
            {"ref": {"type": "ref/prompt", "name": "p"}, "argument": {"name": "a"}},
            "argument.value",
        ),
        ("logging/setLevel", {"level": "verbose"}, "`level`"),
        ("initialize", {"protocolVersion": 2025}, "`protocolVersion`"),
        ("initialize", {"protocolVersion": "2025-11-25", "capabilities": []}, "`capabilities`"),
    ],
)
def test_wrong_shapes_are_invalid_params_naming_the_field(method: str, params: Any, field: str) -> None:
    with pytest.raises(InvalidParams, match=field) as caught:
        check_request(_request(method, params))
    assert caught.value.code == -32602


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("tools/call", {"name": "echo"}),
        ("tools/call", {"name": "echo", "arguments": {"a": [1, {"b": None}]}, "_meta": {"progressToken": "t"}}),
        ("tools/call", {"name": "echo", "extra": "a field from a later revision"}),
        ("prompts/get", {"name": "p", "arguments": {"a": "1"}}),
        ("tools/list", None),
        ("tools/list", {}),
        ("resources/read", {"uri": "test://x"}),
        ("completion/complete", {"ref": {"type": "ref/resource", "uri": "u"}, "argument": {"name": "a", "value": ""}}),
        ("logging/setLevel", {"level": "debug"}),
        ("ping", None),
        ("my/own-method", {"anything": 5}),
    ],
)
def test_spec_shaped_params_and_unknown_methods_pass(method: str, params: Any) -> None:
    message = _request(method, params)
    if params is None:
        del message["params"]
    check_request(message)


def test_notifications_and_client_responses_are_checked_too() -> None:
    check_notification({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}})
    with pytest.raises(InvalidParams, match="requestId"):
        check_notification({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": [3]}})
    with pytest.raises(InvalidParams, match="progress"):
        check_notification({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1}})
    check_response({"jsonrpc": "2.0", "id": 1, "result": {}})
    check_response({"jsonrpc": "2.0", "id": 1, "error": {"code": -1, "message": "no"}})
    for bad in ({"result": 5}, {"result": None}, {"error": {"code": "x", "message": "m"}}, {"error": {"code": 1}}):
        with pytest.raises(InvalidParams):
            check_response({"jsonrpc": "2.0", "id": 1, **bad})
