"""The shapes the MCP spec gives the params of the methods the gateway routes, checked before forwarding.

A shared child serves every client, so a message it cannot parse (`"arguments": 5`, a `name` that is a
number) must never reach it: one client's malformed call would crash the child under everyone else's calls.
`check_request` and `check_notification` look only at what the spec fixes for each method — types of the
fields the gateway or the child reads — and raise `InvalidParams` (-32602) naming the field and what it
should be. Methods the gateway does not know pass unchecked (a server may define its own), and so do extra
fields (the spec lets messages grow). Responses a client sends to a server's request must carry an object
`result` or a well-formed `error` (`check_response`).

Plain isinstance checks on dicts: a few hundred nanoseconds a call, no I/O, no pydantic on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.core.errors import InvalidParams
from gateway.core.jsonrpc import Message

LOG_LEVELS = frozenset({"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"})


def _fail(method: str, field: str, expected: str) -> InvalidParams:
    return InvalidParams(f"Invalid params for {method}: `{field}` must be {expected}")


def _string(params: Message, method: str, field: str, *, required: bool = True) -> None:
    value = params.get(field)
    if value is None and not required and field not in params:
        return
    if not isinstance(value, str):
        raise _fail(method, field, "a string")


def _object(params: Message, method: str, field: str, *, required: bool = False) -> None:
    if field not in params and not required:
        return
    if not isinstance(params.get(field), dict):
        raise _fail(method, field, "an object")


def _meta(params: Message, method: str) -> None:
    if "_meta" not in params:
        return
    meta = params["_meta"]
    if not isinstance(meta, dict):
        raise _fail(method, "_meta", "an object")
    if "progressToken" in meta and not _is_id(meta["progressToken"]):
        raise _fail(method, "_meta.progressToken", "a string or an integer")


def _is_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def _initialize(params: Message, method: str) -> None:
    _string(params, method, "protocolVersion")
    _object(params, method, "capabilities")
    _object(params, method, "clientInfo")


def _named(params: Message, method: str) -> None:
    _string(params, method, "name")
    _object(params, method, "arguments")


def _prompt(params: Message, method: str) -> None:
    _named(params, method)
    arguments = params.get("arguments") or {}
    for key, value in arguments.items():
        if not isinstance(value, str):
            raise _fail(method, f"arguments.{key}", "a string (prompt arguments are strings)")


def _uri(params: Message, method: str) -> None:
    _string(params, method, "uri")


def _cursor(params: Message, method: str) -> None:
    _string(params, method, "cursor", required=False)


def _complete(params: Message, method: str) -> None:
    _object(params, method, "ref", required=True)
    ref = params["ref"]
    kind = ref.get("type")
    if kind == "ref/prompt":
        _string(ref, method, "name")
    elif kind == "ref/resource":
        _string(ref, method, "uri")
    else:
        raise _fail(method, "ref.type", '"ref/prompt" or "ref/resource"')
    _object(params, method, "argument", required=True)
    argument = params["argument"]
    for field in ("name", "value"):
        if not isinstance(argument.get(field), str):
            raise _fail(method, f"argument.{field}", "a string")
    _object(params, method, "context")


def _set_level(params: Message, method: str) -> None:
    if params.get("level") not in LOG_LEVELS:
        raise _fail(method, "level", "one of " + ", ".join(sorted(LOG_LEVELS)))


def _cancelled(params: Message, method: str) -> None:
    if not _is_id(params.get("requestId")):
        raise _fail(method, "requestId", "a string or an integer")
    _string(params, method, "reason", required=False)


def _progress(params: Message, method: str) -> None:
    if not _is_id(params.get("progressToken")):
        raise _fail(method, "progressToken", "a string or an integer")
    progress = params.get("progress")
    if isinstance(progress, bool) or not isinstance(progress, int | float):
        raise _fail(method, "progress", "a number")


_REQUESTS: dict[str, Callable[[Message, str], None]] = {
    "initialize": _initialize,
    "tools/call": _named,
    "prompts/get": _prompt,
    "resources/read": _uri,
    "resources/subscribe": _uri,
    "resources/unsubscribe": _uri,
    "tools/list": _cursor,
    "prompts/list": _cursor,
    "resources/list": _cursor,
    "resources/templates/list": _cursor,
    "completion/complete": _complete,
    "logging/setLevel": _set_level,
}
_NOTIFICATIONS: dict[str, Callable[[Message, str], None]] = {
    "notifications/cancelled": _cancelled,
    "notifications/progress": _progress,
}


def check_request(message: Message) -> None:
    """Check a classified request's params against its method's shape.

    Raises:
        InvalidParams: a field the spec fixes has the wrong type; the message names it.
    """
    method = message["method"]
    params = message.get("params")
    check = _REQUESTS.get(method)
    if params is None:
        if check is None or method.endswith("/list"):
            return
        params = {}
    _meta(params, method)
    if check is not None:
        check(params, method)


def check_notification(message: Message) -> None:
    """Check a classified notification's params.

    Raises:
        InvalidParams: as `check_request`.
    """
    check = _NOTIFICATIONS.get(message["method"])
    if check is not None:
        check(message.get("params") or {}, message["method"])


def check_response(message: Message) -> None:
    """Check a client's response to a server's request: an object `result`, or an `error` with code and message.

    Raises:
        InvalidParams: the response has neither shape.
    """
    if "error" in message:
        error = message["error"]
        if not isinstance(error, dict) or isinstance(error.get("code"), bool) or not isinstance(error.get("code"), int):
            raise InvalidParams("Invalid response: `error` must be an object with an integer `code`")
        if not isinstance(error.get("message"), str):
            raise InvalidParams("Invalid response: `error.message` must be a string")
    elif not isinstance(message.get("result"), dict):
        raise InvalidParams("Invalid response: `result` must be an object")
