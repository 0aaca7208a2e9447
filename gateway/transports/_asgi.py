"""Small raw-ASGI helpers shared by the transports: headers, bounded body reads, JSON replies.

The hot endpoints are plain ASGI callables rather than Starlette request/response objects: a call through
the bridge then costs one body read and one send, which is most of what separates a bridge from the
no-op ceiling in `make bench`.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from gateway.core import jsonrpc
from gateway.core.errors import MessageTooLarge

JSON_HEADERS = [(b"content-type", b"application/json")]


def headers_of(scope: Scope) -> dict[str, str]:
    """Request headers, lower-cased names; a repeated header keeps its last value."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def identity_of(scope: Scope) -> Any:
    """The identity an authentication middleware put in the scope, or None."""
    state = scope.get("state")
    return state.get("identity") if isinstance(state, dict) else None


def query_param(scope: Scope, name: str) -> str | None:
    from urllib.parse import parse_qs

    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
    return values[-1] if values else None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing early past `limit` bytes.

    Raises:
        MessageTooLarge: Content-Length or the bytes received exceed the limit.
    """
    for key, value in scope["headers"]:
        if key == b"content-length" and value.isdigit() and int(value) > limit:
            raise MessageTooLarge(f"request body of {int(value)} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise MessageTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_json(send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*JSON_HEADERS, (b"content-length", str(len(payload)).encode()), *(headers or ())],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def send_error(
    send: Send,
    status: int,
    code: int,
    message: str,
    request_id: Any = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """An HTTP error whose body is a JSON-RPC error, so every client can show the reason."""
    await send_json(send, status, jsonrpc.error_response(request_id, code, message), headers)


async def send_empty(send: Send, status: int, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0"), *(headers or ())]}
    )
    await send({"type": "http.response.body", "body": b""})
