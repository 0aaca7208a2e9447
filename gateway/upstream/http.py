"""A remote MCP server as an upstream, over Streamable HTTP (`kind="http"`) or legacy HTTP+SSE (`kind="sse"`).

Same contract as the stdio upstream: `send` never blocks (each message is POSTed by its own task), every
message that comes back — in a JSON body, on a POST's SSE stream, or on the long-lived GET/SSE stream — is
handed to the `Listener`. A request the remote refuses at the HTTP level gets a JSON-RPC error reply of our
own, so no caller waits for a reply that cannot come; a lost session (404) or a dropped legacy SSE stream
closes the upstream, and the `Child` supervising it re-initializes with backoff. One pooled httpx client per
upstream; the gateway's handshake is reused for every call (never a new handshake per request).

Resumption, as a 2025-11-25 client does it: SSE events carry ids and `retry:`. When a POST's stream ends (or
breaks) before the reply to its request came — a server that polls (SEP-1699) closes it on purpose — the
upstream waits `retry` and GETs the endpoint with `Last-Event-ID`, up to `RESUME_ATTEMPTS` times; if it still
cannot get the reply, the caller gets a JSON-RPC error, never silence. The standalone GET stream is
re-opened the same way whenever it ends, until the upstream is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urljoin

import httpx
import structlog

from gateway.core import errors, jsonrpc, tracing
from gateway.core.errors import UpstreamError
from gateway.core.jsonrpc import Message
from gateway.upstream.base import Listener

log = structlog.get_logger("gateway.upstream.http")

CONNECT_TIMEOUT = 10.0
ACCEPT = "application/json, text/event-stream"
RESUME_ATTEMPTS = 5  # consecutive reconnections of one stream before giving up on it
DEFAULT_RETRY = 1.0  # seconds before reconnecting, when the server's events named no `retry:`
MAX_RETRY = 30.0


class _Cursor:
    """Where a stream got to: the last event id seen, the server's retry advice, whether the reply came."""

    __slots__ = ("answered", "last_id", "retry")

    def __init__(self) -> None:
        self.last_id: str | None = None
        self.retry = DEFAULT_RETRY
        self.answered = False


class HTTPUpstream:
    def __init__(
        self,
        url: str,
        *,
        kind: str = "http",
        headers: Mapping[str, str] | None = None,
        name: str = "remote",
        max_message_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.url = url
        self.kind = kind
        self.name = name
        self.max_message_bytes = max_message_bytes
        self._headers = dict(headers or {})
        self._client: httpx.AsyncClient | None = None
        self._listener: Listener | None = None
        self._session_id: str | None = None
        self._protocol_version: str | None = None
        self._post_url: str | None = None  # legacy SSE: from the endpoint event
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.pid = None

    async def start(self, listener: Listener) -> None:
        self._listener = listener
        timeout = httpx.Timeout(connect=CONNECT_TIMEOUT, read=None, write=30.0, pool=30.0)
        self._client = httpx.AsyncClient(timeout=timeout, headers=self._headers, follow_redirects=False)
        if self.kind == "sse":
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._spawn(self._sse_stream(ready))
            try:
                await asyncio.wait_for(asyncio.shield(ready), CONNECT_TIMEOUT)
            except TimeoutError:
                raise UpstreamError(f"{self.url}: no endpoint event within {CONNECT_TIMEOUT:g} s") from None

    def send(self, message: Message) -> None:
        if self._closed or self._client is None:
            raise UpstreamError(f"the {self.name} server connection is closed")
        self._spawn(self._post(message))

    async def close(self, quick: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        client, self._client = self._client, None
        if client is not None:
            if self.kind == "http" and self._session_id:
                with contextlib.suppress(httpx.HTTPError):
                    await client.delete(self.url, headers=self._session_headers(), timeout=2.0)
            await client.aclose()

    # --- Streamable HTTP -----------------------------------------------------------------------------------

    async def _post(self, message: Message) -> None:
        assert self._client is not None
        url = self._post_url if self.kind == "sse" else self.url
        if url is None:
            self._refuse(message, "no message endpoint yet")
            return
        body = jsonrpc.encode(message)
        headers = {"content-type": "application/json", "accept": ACCEPT, **self._session_headers()}
        if tracing.enabled:  # harbor tracing hook: W3C trace context as headers too
            headers.update(tracing.http_headers(message))
        cursor = _Cursor()
        try:
            async with self._client.stream("POST", url, content=body, headers=headers) as response:
                await self._handle_post(message, response, cursor)
        except httpx.HTTPError as exc:
            if isinstance(exc, httpx.ConnectError):
                self._refuse(message, f"{type(exc).__name__}: {exc}")
                self._lost(f"cannot reach {self.url}")
            elif _is_request(message) and cursor.last_id is not None and not cursor.answered:
                await self._resume(message, cursor)  # the stream broke after an event id: resume it
            else:
                self._refuse(message, f"{type(exc).__name__}: {exc}")

    async def _handle_post(self, message: Message, response: httpx.Response, cursor: _Cursor) -> None:
        if message.get("method") == "initialize" and response.status_code == 200:
            self._session_id = response.headers.get("mcp-session-id")
        if response.status_code == 404 and self._session_id:
            self._refuse(message, "the remote session expired")
            self._lost("remote session expired (HTTP 404)")
            return
        if response.status_code >= 400:
            text = (await response.aread())[:300].decode(errors="replace")
            self._refuse(message, f"HTTP {response.status_code}: {text}")
            return
        kind = response.headers.get("content-type", "")
        if "text/event-stream" in kind:
            await self._read(response, cursor, message.get("id") if _is_request(message) else None)
            if _is_request(message) and not cursor.answered:
                await self._resume(message, cursor)
        elif response.status_code == 200:
            self._deliver(await response.aread())
        if message.get("method") == "notifications/initialized" and self.kind == "http" and self._session_id:
            self._spawn(self._get_stream())

    async def _read(self, response: httpx.Response, cursor: _Cursor, want: Any) -> None:
        """Deliver a stream's messages, noting event ids, retry advice and whether the reply to `want` came."""
        async for event in _sse_events(response, self.max_message_bytes):
            if event.id is not None:
                cursor.last_id = event.id
            if event.retry is not None:
                cursor.retry = min(MAX_RETRY, event.retry / 1000)
            if event.kind == "message":
                for delivered in self._deliver(event.data):
                    if want is not None and "method" not in delivered and delivered.get("id") == want:
                        cursor.answered = True

    async def _resume(self, message: Message, cursor: _Cursor) -> None:
        """Get the rest of a POST's stream with `Last-Event-ID`; the caller gets an error if that fails."""
        assert self._client is not None
        reason = "the remote closed the stream before replying and offered no event id to resume from"
        for _ in range(RESUME_ATTEMPTS):
            if cursor.last_id is None or self._closed:
                break
            await asyncio.sleep(cursor.retry)
            headers = {"accept": "text/event-stream", "last-event-id": cursor.last_id, **self._session_headers()}
            try:
                async with self._client.stream("GET", self.url, headers=headers) as response:
                    if response.status_code == 404 and self._session_id:
                        self._refuse(message, "the remote session expired")
                        self._lost("remote session expired (HTTP 404)")
                        return
                    if response.status_code != 200:
                        reason = f"resuming the stream got HTTP {response.status_code}"
                        break
                    await self._read(response, cursor, message["id"])
            except httpx.HTTPError as exc:
                reason = f"resuming the stream failed: {type(exc).__name__}"
                continue
            if cursor.answered:
                return
            reason = "the remote closed the resumed stream before replying"
        self._refuse(message, reason)

    async def _get_stream(self) -> None:
        """Server-initiated messages, re-opened with `Last-Event-ID` whenever the stream ends; a server without
        one (405, or any refusal) is fine. Runs until the upstream closes."""
        assert self._client is not None
        cursor, failures = _Cursor(), 0
        while not self._closed and self._client is not None:
            headers = {"accept": "text/event-stream", **self._session_headers()}
            if cursor.last_id is not None:
                headers["last-event-id"] = cursor.last_id
            try:
                async with self._client.stream("GET", self.url, headers=headers) as response:
                    if response.status_code == 404 and self._session_id:
                        self._lost("remote session expired (HTTP 404)")
                        return
                    if response.status_code != 200:
                        return
                    failures = 0
                    await self._read(response, cursor, None)
            except httpx.HTTPError as exc:
                failures += 1
                log.info("remote_stream_broke", server=self.name, reason=str(exc), failures=failures)
            await asyncio.sleep(min(MAX_RETRY, cursor.retry * 2 ** min(failures, 5)))

    def _session_headers(self) -> dict[str, str]:
        headers = {}
        if self._session_id:
            headers["mcp-session-id"] = self._session_id
        if self._protocol_version:
            headers["mcp-protocol-version"] = self._protocol_version
        return headers

    # --- legacy HTTP+SSE -----------------------------------------------------------------------------------

    async def _sse_stream(self, ready: asyncio.Future[None]) -> None:
        assert self._client is not None
        try:
            async with self._client.stream("GET", self.url, headers={"accept": "text/event-stream"}) as response:
                if response.status_code != 200:
                    raise UpstreamError(f"{self.url}: HTTP {response.status_code}")
                async for event in _sse_events(response, self.max_message_bytes):
                    if event.kind == "endpoint":
                        self._post_url = urljoin(self.url, event.data.decode())
                        if not ready.done():
                            ready.set_result(None)
                    elif event.kind == "message":
                        self._deliver(event.data)
        except (httpx.HTTPError, UpstreamError) as exc:
            if not ready.done():
                ready.set_exception(UpstreamError(f"cannot open {self.url}: {exc}"))
                return
        self._lost("the remote SSE stream ended")

    # --- delivery --------------------------------------------------------------------------------------------

    def _deliver(self, data: bytes) -> list[Message]:
        """Hand the messages of one body or event to the listener; return them."""
        if self._listener is None or not data.strip():
            return []
        try:
            parsed = jsonrpc.decode(data)
        except errors.ProtocolError as exc:
            self._listener.frame_invalid(data, exc.message)
            return []
        messages = [m for m in (parsed if isinstance(parsed, list) else [parsed]) if isinstance(m, dict)]
        for message in messages:
            if isinstance(message, dict) and message.get("method") is None and "result" in message:
                version = (message.get("result") or {}).get("protocolVersion")
                if isinstance(version, str) and str(message.get("id", "")).startswith("harbor-initialize"):
                    self._protocol_version = version
            self._listener.message_received(message)
        return messages

    def _refuse(self, message: Message, reason: str) -> None:
        if "id" in message and "method" in message and self._listener is not None:
            self._listener.message_received(
                jsonrpc.error_response(message["id"], errors.UPSTREAM_UNAVAILABLE, f"{self.name}: {reason}")
            )

    def _lost(self, reason: str) -> None:
        if not self._closed and self._listener is not None:
            self._closed = True
            self._listener.upstream_closed(reason)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _Event:
    __slots__ = ("data", "id", "kind", "retry")

    def __init__(self, kind: str, data: bytes, event_id: str | None, retry: int | None) -> None:
        self.kind, self.data, self.id, self.retry = kind, data, event_id, retry


async def _sse_events(response: httpx.Response, limit: int) -> AsyncIterator[_Event]:
    """The events of an SSE body (WHATWG rules: `event`, `data`, `id`, `retry` fields; comments skipped).

    An event with an id or retry but no data (a priming event) is yielded too, with empty data."""
    kind, size, event_id, retry = "message", 0, None, None
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data or event_id is not None or retry is not None:
                yield _Event(kind, "\n".join(data).encode(), event_id, retry)
            kind, data, size, event_id, retry = "message", [], 0, None, None
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            kind = value.strip()
        elif field == "data":
            size += len(line)
            if size > limit:
                raise UpstreamError(f"an SSE event over {limit} bytes")
            data.append(value)
        elif field == "id" and "\0" not in value:
            event_id = value
        elif field == "retry" and value.isdigit():
            retry = int(value)


def _is_request(message: Message) -> bool:
    return "method" in message and "id" in message
