"""Replica to replica over HTTP: forwarding a client's request to the replica that must serve it, and the
endpoint where a replica serves calls another replica forwarded (`gateway.state: redis://…` only).

`forward` relays one request as it is — method, path, query, headers, body — to another replica and streams
its answer back unchanged, so the client cannot tell (legacy SSE `/message` POSTs, a GET resuming another
replica's POST stream, a modern input round whose call is parked elsewhere). The relayed request carries the
cluster secret (`harbor-peer`) and `harbor-forwarded-by`, so it is served where it lands, never forwarded again.

`PeerCallEndpoint` (`POST /_harbor/peer/call`, secret required) runs one call for a session on this replica's
child (a per-session or per-identity server lives on one replica) and streams every message of that call back
as NDJSON until its reply; the calling replica puts them on the client's own stream. The caller closing the
connection cancels the call here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import structlog
from starlette.types import Receive, Scope, Send

from gateway.core import errors, jsonrpc
from gateway.core.errors import MessageTooLarge
from gateway.core.jsonrpc import Message
from gateway.transports._asgi import read_body, send_error

log = structlog.get_logger("gateway.transports.peer")

PEER_HEADER = "harbor-peer"
FORWARDED_HEADER = "harbor-forwarded-by"
CALL_PATH = "/_harbor/peer/call"
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host"}
)
_END = object()


class PeerUnreachable(Exception):
    """The other replica could not be reached before anything was answered (it is down or partitioned)."""


def is_forwarded(scope: Scope) -> bool:
    return any(k == FORWARDED_HEADER.encode() for k, _ in scope["headers"])


async def forward(
    scope: Scope,
    receive: Receive,
    send: Send,
    address: str,
    http: httpx.AsyncClient,
    peer: tuple[str, str],
    by: str,
    body: bytes | None = None,
    max_bytes: int = 16 * 1024 * 1024,
) -> None:
    """Relay this request to the replica at `address` and its answer back.

    Raises:
        PeerUnreachable: the other replica cannot be reached (nothing was sent to the client yet).
        MessageTooLarge: the body exceeds `max_bytes` (the gateway's own message limit), read before relaying.
    """
    if body is None:
        body = await read_body(scope, receive, max_bytes)
    query = scope.get("query_string", b"").decode("latin-1")
    url = f"{address}{scope.get('root_path', '')}{scope['path']}" + (f"?{query}" if query else "")
    headers = [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in scope["headers"]
        if k.decode("latin-1") not in _HOP_BY_HOP
    ]
    headers += [("host", _host(scope)), (peer[0], peer[1]), (FORWARDED_HEADER, by)]
    request = http.build_request(scope["method"], url, headers=headers, content=body)
    try:
        response = await http.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise PeerUnreachable(f"{type(exc).__name__}: {exc}") from exc
    try:
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [
                    (k.encode("latin-1"), v.encode("latin-1"))
                    for k, v in response.headers.multi_items()
                    if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"
                ],
            }
        )
        await _relay_body(response, receive, send)
    finally:
        await response.aclose()


async def _relay_body(response: httpx.Response, receive: Receive, send: Send) -> None:
    """Stream the body until it ends or the client goes away (an SSE answer may never end by itself)."""

    async def pump() -> None:
        try:
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.HTTPError as exc:  # the other replica died mid-answer: end the stream here too
            log.info("peer_stream_broken", reason=str(exc))
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    pumping = asyncio.ensure_future(pump())
    watching = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({pumping, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pumping, watching):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pumping


def _host(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"host":
            return str(value.decode("latin-1"))
    return "localhost"


class Peering:
    """What the transports of a replica need to relay requests to the others: the pooled client, the secret,
    and where a `Last-Event-ID` or a `requestState` from another replica must go."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        header: tuple[str, str],
        replica: str,
        locate_event: Callable[[str], Awaitable[str | None]],
        locate_state: Callable[[Any], Awaitable[str | None]],
        *,
        stream_prefix: str = "",
        max_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.http = http
        self.max_bytes = max_bytes  # gateway.max_message_bytes: a relayed body is held to the same limit
        self.stream_prefix = stream_prefix  # POST stream keys carry it: `r<ordinal>.`
        self.header = header
        self.replica = replica
        self.locate_event = locate_event  # address of the replica whose POST stream an event id names, else None
        self.locate_state = locate_state  # address of the replica whose parked call a requestState names, else None

    async def relay(self, scope: Scope, receive: Receive, send: Send, address: str, body: bytes | None = None) -> bool:
        """Relay to `address`; False (nothing sent) when that replica cannot be reached."""
        if is_forwarded(scope):  # relayed once already: never bounce between replicas
            return False
        try:
            await forward(scope, receive, send, address, self.http, self.header, self.replica, body, self.max_bytes)
        except PeerUnreachable as exc:
            log.info("peer_unreachable", address=address, reason=str(exc))
            return False
        except MessageTooLarge as exc:
            await send_error(send, 413, exc.code, exc.message)
        return True


class ReplicaHeader:
    """Every answer says which replica gave it (`Harbor-Replica`), once this gateway is one of several: what an
    operator reading a client's logs, and the tests, need to see where each request went."""

    def __init__(self, app: Any, replica: Callable[[], str | None]) -> None:
        self.app = app
        self._replica = replica

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = self._replica() if scope["type"] == "http" else None
        if name is None:
            await self.app(scope, receive, send)
            return
        header = (b"harbor-replica", name.encode())

        async def send_named(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        await self.app(scope, receive, send_named)


class StreamOutbox:
    """A call's messages on their way back to the replica that forwarded it: an unbounded queue (a call's own
    messages are bounded by the call), ended by `close`."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = False

    def put(self, message: Message) -> bool:
        if self.closed:
            return False
        self._queue.put_nowait(message)
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(_END)

    async def get(self) -> Message | None:
        item = await self._queue.get()
        return None if item is _END else item


ServeCall = Callable[[dict[str, Any], StreamOutbox], Awaitable[Callable[[bool], None]]]


class PeerCallEndpoint:
    """`POST /_harbor/peer/call`: run a call another replica forwarded; stream its messages back as NDJSON."""

    def __init__(self, serve: ServeCall, is_peer: Callable[[str | None], bool]) -> None:
        self._serve = serve  # starts the call; returns what cancels it
        self._is_peer = is_peer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        secret = next((v.decode("latin-1") for k, v in scope["headers"] if k == PEER_HEADER.encode()), None)
        if scope["method"] != "POST" or not self._is_peer(secret):
            await send_error(send, 404, errors.INVALID_REQUEST, "Not Found")
            return
        try:
            payload = orjson.loads(await read_body(scope, receive, 1 << 31))
        except orjson.JSONDecodeError:
            await send_error(send, 400, errors.PARSE_ERROR, "peer call: the body is not JSON")
            return
        request_id = payload["message"]["id"]
        outbox = StreamOutbox()
        try:
            finish = await self._serve(payload, outbox)
        except errors.GatewayError as exc:
            outbox.put(jsonrpc.error_from(request_id, exc))
            outbox.close()
            finish = _nothing
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/x-ndjson")]}
        )
        finished = False

        async def pump() -> None:
            nonlocal finished
            while True:
                message = await outbox.get()
                if message is None:
                    break
                await send({"type": "http.response.body", "body": orjson.dumps(message) + b"\n", "more_body": True})
                if "method" not in message and message.get("id") == request_id:
                    break
            finished = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        pumping = asyncio.ensure_future(pump())
        watching = asyncio.ensure_future(disconnected())
        try:
            await asyncio.wait({pumping, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pumping, watching):
                task.cancel()
            outbox.closed = True
            finish(finished)  # not finished: the forwarding replica (its client) went away — cancel it here


def _nothing(_completed: bool) -> None:
    return None
