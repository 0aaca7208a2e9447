"""JSON-RPC 2.0 framing: decode and validate client bodies, encode single-line frames, build errors.

Pure functions on bytes and dicts, shared by every transport and upstream. Encoding is always compact
single-line JSON (orjson), so a frame written to a child's stdin can never break line framing, whatever
the client sent. Decoding and encoding agree on one nesting limit (`MAX_DEPTH`, below orjson's encoder
limit of 254 with room for the envelopes the gateway adds), so a message accepted here can always be
written again; anything deeper is refused at decode time with an error naming the limit. Nothing here
does I/O or knows about HTTP.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import orjson

from gateway.core.errors import GatewayError, ParseError, ProtocolError, TooDeep

Message = dict[str, Any]
Kind = Literal["request", "notification", "response"]
RequestId = int | str

# Versions of the handshake era this gateway speaks, oldest first. Batches exist only before 2025-06-18.
PROTOCOL_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
LATEST_VERSION = PROTOCOL_VERSIONS[-1]
DEFAULT_HTTP_VERSION = "2025-03-26"  # what a Streamable HTTP request without MCP-Protocol-Version means
BATCH_VERSIONS = frozenset(PROTOCOL_VERSIONS[:2])
MAX_BATCH = 100  # messages in one JSON-RPC batch; a larger batch is refused whole
MAX_DEPTH = 200  # nesting levels of objects and arrays in one message (orjson encodes at most 254)

_ID_PATTERN = re.compile(rb'"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.){0,200}")')


def decode(body: bytes) -> Any:
    """Parse one body or line.

    Raises:
        ParseError: the bytes are not JSON.
    """
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise TooDeep(_too_deep()) from None
        raise ParseError(f"Parse error: body is not valid JSON ({exc})") from None
    # Cheap pre-check: a body with fewer brackets than the limit cannot be nested deeper than it.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        raise TooDeep(_too_deep())
    return value


def _too_deep() -> str:
    return f"Invalid Request: the message is nested more than {MAX_DEPTH} levels deep; flatten the arguments"


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether objects/arrays nest more than `limit` levels (iterative: no recursion limit to hit)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def id_of(body: Any) -> RequestId | None:
    """The id of a single decoded message, if it has a valid one (a batch or anything else: None)."""
    value = body.get("id") if isinstance(body, dict) else None
    return value if isinstance(value, int | str) and not isinstance(value, bool) else None


def refused_id(body: Any, raw: bytes, exc: GatewayError) -> RequestId | None:
    """The id to put in the error for a body refused before it could be routed: the decoded message's own,
    or, for a body too deep to keep, the id read from its first bytes (it is valid JSON, only too deep)."""
    if isinstance(body, dict):
        return id_of(body)
    if isinstance(exc, TooDeep) and raw.lstrip().startswith(b"{"):
        return sniff_id(raw[:_SNIFF], b"")
    return None


_SNIFF = 512


def encode(message: Message | list[Message]) -> bytes:
    """Compact single-line JSON, the only form the gateway ever writes.

    Raises:
        ProtocolError: the message cannot be encoded (only possible for messages built in-process: every
            decoded message is within `MAX_DEPTH`).
    """
    try:
        return orjson.dumps(message)
    except TypeError as exc:
        raise ProtocolError(f"Invalid Request: the message cannot be encoded as JSON ({exc})") from None


def classify(message: Any) -> Kind:
    """Say what a decoded JSON-RPC message is, checking its shape.

    Raises:
        ProtocolError: not a JSON-RPC 2.0 request, notification or response; the message says why.
    """
    if not isinstance(message, dict):
        raise ProtocolError("Invalid Request: a JSON-RPC message must be a JSON object")
    if message.get("jsonrpc") != "2.0":
        raise ProtocolError('Invalid Request: "jsonrpc" must be "2.0"')
    if "method" in message:
        if not isinstance(message["method"], str):
            raise ProtocolError('Invalid Request: "method" must be a string')
        params = message.get("params")
        if params is not None and not isinstance(params, dict):
            raise ProtocolError('Invalid Request: MCP "params" must be an object')
        if "id" not in message:
            return "notification"
        _check_id(message["id"])
        return "request"
    if "id" in message and ("result" in message or "error" in message):
        return "response"
    raise ProtocolError('Invalid Request: expected "method" (request/notification) or "result"/"error" (response)')


def _check_id(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ProtocolError('Invalid Request: "id" must be a string or an integer')


def error_response(request_id: RequestId | None, code: int, message: str, data: Any = None) -> Message:
    """A JSON-RPC error response (id None when the request's id could not be read)."""
    error: Message = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def error_from(request_id: RequestId | None, exc: GatewayError) -> Message:
    return error_response(request_id, exc.code, exc.message, exc.data)


def notification(method: str, params: Message) -> Message:
    return {"jsonrpc": "2.0", "method": method, "params": params}


def progress_token(message: Message) -> Any:
    """The request's `_meta.progressToken`, or None."""
    params = message.get("params")
    if not params:
        return None
    meta = params.get("_meta")
    return meta.get("progressToken") if isinstance(meta, dict) else None


def with_progress_token(message: Message, token: Any) -> Message:
    """A shallow copy of the request whose `_meta.progressToken` is replaced (nothing else is copied)."""
    params = dict(message["params"])
    params["_meta"] = {**params["_meta"], "progressToken": token}
    return {**message, "params": params}


def sniff_id(head: bytes, tail: bytes) -> RequestId | None:
    """Recover the id of a frame too large to parse, from its first and last bytes.

    SDKs write "id" near the start of a response; some write it last. Only a well-formed id is returned.
    """
    for chunk in (head, tail):
        match = _ID_PATTERN.search(chunk)
        if match:
            try:
                value = orjson.loads(match.group(1))
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, (int, str)) and not isinstance(value, bool):
                return value
    return None


def negotiate(requested: Any, upstream: str) -> str:
    """The version to answer a client's initialize with.

    Echo the client's version when both this gateway and the upstream speak it (never newer than what
    the upstream negotiated); otherwise answer the upstream's, per the spec's negotiation rule.
    """
    if isinstance(requested, str) and requested in PROTOCOL_VERSIONS and requested <= upstream:
        return requested
    return upstream if upstream in PROTOCOL_VERSIONS else LATEST_VERSION
