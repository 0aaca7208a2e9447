"""Streamable HTTP, handshake era (2025-03-26 … 2025-11-25), as a client: one session, every stream resumable.

Each request is its own POST; its answer is a JSON body or an SSE stream carrying related messages and then
the reply. The session id from the `initialize` answer and the negotiated `MCP-Protocol-Version` go on every
later request. A POST stream that drops before the reply is resumed with `GET` + `Last-Event-ID` (the id of
the last event seen on it, waiting the server's `retry:` or a backoff between tries); the long-lived GET
stream is reopened the same way, for as long as the session lasts, so a network drop or a restarting remote
costs no message that the remote kept. HTTP 404 means the remote no longer knows the session: a request that
got it was not run (`SessionLost`, re-initialize); a call whose stream cannot be resumed is `CallLost`.

The era-specific parts (the handshake and the headers it fixes) are kept in `handshake` and `_headers`, so the
2026-07-28 era (`server/discover`, per-request `_meta`, `Mcp-Method`) can be a sibling transport that reuses
`read_answer`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import orjson
import structlog
from httpx_sse import EventSource, SSEError

from gateway.connect.transport import (
    ACCEPT_BOTH,
    RESUME_ATTEMPTS,
    CallLost,
    Deliver,
    Message,
    NotStreamable,
    RemoteRefused,
    RemoteUnreachable,
    SessionLost,
    backoff,
    describe,
    is_reply_to,
)

log = structlog.get_logger("gateway.connect")

NOT_STREAMABLE = (400, 404, 405)  # what a legacy-SSE-only server answers to a POST of initialize


@dataclass
class Cursor:
    """Where a stream is: the last event id seen on it and the server's advised reconnection delay."""

    last_id: str | None = None
    retry_ms: int | None = None

    def delay(self, attempt: int) -> float:
        return self.retry_ms / 1000 if self.retry_ms is not None else backoff(attempt)


class Dropped(Exception):
    """A stream ended (or broke) before it carried what was awaited.

    `clean` when the server closed it in good order: with SSE polling (SEP-1699) a server may close a call's
    stream after its priming event and expect the client to come back with `Last-Event-ID`, which is no fault.
    """

    def __init__(self, reason: str, *, clean: bool = False) -> None:
        super().__init__(reason)
        self.clean = clean


def _connection_fault(exc: httpx.HTTPError) -> bool:
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def parse(data: bytes | str) -> list[Message]:
    """The JSON-RPC messages in one body or SSE event (a batch is a list).

    Raises:
        RemoteRefused: the data is not JSON-RPC.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RemoteRefused(f"the remote sent something that is not JSON ({exc})", 0) from None
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, dict) for item in items):
        raise RemoteRefused("the remote sent JSON that is not a JSON-RPC message", 0)
    return items


def parse_event(data: str) -> list[Message]:
    """The messages of one SSE event; an event that is not JSON-RPC is logged and skipped (the stream goes on)."""
    try:
        return parse(data)
    except RemoteRefused as exc:
        log.warning("event_skipped", reason=str(exc), data=data[:200])
        return []


async def read_answer(response: httpx.Response, request_id: Any, deliver: Deliver, cursor: Cursor) -> Message | None:
    """Hand every message of a POST or GET answer to `deliver`, except the reply to `request_id`, returned.

    Returns None for an answer without a body (202) and for a listening stream that ended.

    Raises:
        Dropped: an SSE stream ended or broke before the reply to `request_id` came.
        RemoteRefused: a body that is neither JSON nor SSE, or not JSON-RPC.
    """
    kind = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if response.status_code == 202 or (not kind and not await response.aread()):
        return None
    if kind == "application/json":
        reply = None
        for message in parse(await response.aread()):
            if request_id is not None and is_reply_to(message, request_id):
                reply = message
            else:
                deliver(message)
        return reply
    if kind != "text/event-stream":
        raise RemoteRefused(f"the remote answered with {kind or 'no content type'}, not JSON or SSE", 0)
    try:
        async for event in EventSource(response).aiter_sse():
            if event.id:
                cursor.last_id = event.id
            if event.retry is not None:
                cursor.retry_ms = event.retry
            if event.event not in ("", "message") or not event.data.strip():
                continue  # a priming event (id, no data) or another event type
            for message in parse_event(event.data):
                if request_id is not None and is_reply_to(message, request_id):
                    return message
                deliver(message)
    except (httpx.TransportError, SSEError) as exc:
        raise Dropped(describe(exc) if isinstance(exc, httpx.HTTPError) else str(exc)) from None
    if request_id is not None:
        raise Dropped("the stream ended before the reply", clean=True)
    return None


async def _refusal(response: httpx.Response) -> str:
    text = (await response.aread())[:300].decode(errors="replace").strip()
    hint = " (check the Authorization --header and its token)" if response.status_code in (401, 403) else ""
    return f"HTTP {response.status_code}{hint}" + (f": {text}" if text else "")


class StreamableHTTP:
    name = "streamable-http"

    def __init__(self, client: httpx.AsyncClient, url: str, deliver: Deliver) -> None:
        self.url = url
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self._client = client
        self._deliver = deliver
        self._listening = Cursor()
        self._closed = False

    def _headers(self, accept: str = ACCEPT_BOTH) -> dict[str, str]:
        headers = {"accept": accept}
        if self.session_id:
            headers["mcp-session-id"] = self.session_id
        if self.protocol_version:
            headers["mcp-protocol-version"] = self.protocol_version
        return headers

    def _post(self, message: Message, *, handshake: bool = False) -> Any:
        headers = {"content-type": "application/json", **(self._headers() if not handshake else {})}
        headers.setdefault("accept", ACCEPT_BOTH)
        return self._client.stream("POST", self.url, content=orjson.dumps(message), headers=headers)

    async def handshake(self, initialize: Message) -> Message:
        cursor = Cursor()
        try:
            async with self._post(initialize, handshake=True) as response:
                if response.status_code in NOT_STREAMABLE:
                    raise NotStreamable(await _refusal(response), response.status_code)
                if response.status_code >= 400:
                    raise RemoteRefused(await _refusal(response), response.status_code)
                self.session_id = response.headers.get("mcp-session-id")
                reply = await read_answer(response, initialize["id"], self._deliver, cursor)
        except httpx.HTTPError as exc:
            raise RemoteUnreachable(f"cannot reach {self.url}: {describe(exc)}") from None
        except Dropped as exc:
            raise RemoteUnreachable(f"{self.url} dropped the initialize answer: {exc}") from None
        if reply is None:
            raise RemoteRefused(f"{self.url} sent no reply to initialize", 0)
        version = (reply.get("result") or {}).get("protocolVersion")
        self.protocol_version = version if isinstance(version, str) else None
        return reply

    async def request(self, message: Message) -> None:
        request_id = message["id"]
        cursor = Cursor()
        try:
            async with self._post(message) as response:
                if await self._refused(response, request_id):
                    return
                reply = await read_answer(response, request_id, self._deliver, cursor)
        except httpx.HTTPError as exc:
            if _connection_fault(exc):
                raise RemoteUnreachable(f"cannot reach {self.url}: {describe(exc)}") from None
            reply = await self._resume(request_id, cursor, describe(exc))
        except Dropped as exc:
            reply = await self._resume(request_id, cursor, str(exc))
        if reply is not None:
            self._deliver(reply)

    async def _refused(self, response: httpx.Response, request_id: Any) -> bool:
        """Turn an HTTP error into the fault it means; True when it carried the request's JSON-RPC reply.

        Raises:
            SessionLost: 404 on a session. RemoteRefused: another HTTP error with no JSON-RPC reply.
        """
        if response.status_code < 400:
            return False
        if response.status_code == 404 and self.session_id:
            raise SessionLost(f"{self.url} no longer knows this session (HTTP 404): it restarted or ended it")
        body = await response.aread()
        with contextlib.suppress(RemoteRefused):
            replies = [m for m in parse(body) if is_reply_to(m, request_id)]
            if replies:
                self._deliver(replies[0])
                return True
        raise RemoteRefused(await _refusal(response), response.status_code)

    async def _resume(self, request_id: Any, cursor: Cursor, reason: str) -> Message | None:
        """GET + Last-Event-ID until the reply comes; a try counts as failed only when it brought no new event
        and did not end in good order (the bridge's deadline bounds the whole).

        Raises:
            CallLost: the stream cannot be resumed (no event id, session gone, refused, attempts exhausted).
        """
        if cursor.last_id is None:
            raise CallLost(f"the answer stream dropped before the reply ({reason}) and cannot be resumed (no event id)")
        log.info("resuming_stream", url=self.url, last_event_id=cursor.last_id, reason=reason)
        attempt = 0
        while attempt < RESUME_ATTEMPTS:
            await anyio.sleep(cursor.delay(attempt))
            seen, clean = cursor.last_id, False
            headers = {**self._headers("text/event-stream"), "last-event-id": cursor.last_id}
            try:
                async with self._client.stream("GET", self.url, headers=headers) as response:
                    if response.status_code == 404:
                        raise CallLost(f"{self.url} lost the session during this call (it restarted?): outcome unknown")
                    if response.status_code >= 400 and response.status_code != 409:
                        raise CallLost(f"{self.url} refused to resume the answer stream: {await _refusal(response)}")
                    if response.status_code == 200:
                        return await read_answer(response, request_id, self._deliver, cursor)
            except httpx.HTTPError as exc:
                reason = describe(exc)
            except Dropped as exc:
                reason, clean = str(exc), exc.clean
            attempt = 0 if clean or cursor.last_id != seen else attempt + 1
        raise CallLost(f"the answer stream dropped and {RESUME_ATTEMPTS} attempts to resume it failed ({reason})")

    async def send(self, message: Message) -> None:
        try:
            async with self._post(message) as response:
                if response.status_code == 404 and self.session_id:
                    raise SessionLost(f"{self.url} no longer knows this session (HTTP 404)")
                if response.status_code >= 400:
                    raise RemoteRefused(await _refusal(response), response.status_code)
                await read_answer(response, None, self._deliver, Cursor())
        except httpx.HTTPError as exc:
            raise RemoteUnreachable(f"cannot reach {self.url}: {describe(exc)}") from None
        except Dropped:
            pass

    async def listen(self) -> None:
        attempt = 0
        while not self._closed and self.session_id:
            headers = self._headers("text/event-stream")
            if self._listening.last_id:
                headers["last-event-id"] = self._listening.last_id
            try:
                async with self._client.stream("GET", self.url, headers=headers) as response:
                    if response.status_code == 405:
                        return  # the remote has no server-initiated stream; replies come on the POSTs
                    if response.status_code == 404:
                        raise SessionLost(f"{self.url} no longer knows this session (HTTP 404)")
                    if response.status_code == 200:
                        attempt = 0
                        await read_answer(response, None, self._deliver, self._listening)
                    else:
                        attempt += 1
            except (httpx.HTTPError, Dropped) as exc:
                attempt += 1
                log.info("stream_reconnecting", url=self.url, reason=str(exc), attempt=attempt)
            await anyio.sleep(self._listening.delay(attempt))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.session_id:
            with contextlib.suppress(httpx.HTTPError), anyio.move_on_after(2):
                await self._client.delete(self.url, headers=self._headers())
