"""A remote MCP server as an upstream, over Streamable HTTP (`kind="http"`) or legacy HTTP+SSE (`kind="sse"`).

Same contract as the stdio upstream: `send` never blocks (each message is POSTed by its own task), every
message that comes back — in a JSON body, on a POST's SSE stream, or on the long-lived GET/SSE stream — is
handed to the `Listener`. A request the remote refuses at the HTTP level gets a JSON-RPC error reply of our
own, so no caller waits for a reply that cannot come; a lost session (404) or a dropped SSE stream closes
the upstream, and the `Child` supervising it re-initializes with backoff. One pooled httpx client per
upstream; the gateway's handshake is reused for every call (never a new handshake per request).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urljoin

import httpx
import structlog

from gateway import errors, jsonrpc
from gateway.errors import UpstreamError
from gateway.jsonrpc import Message
from gateway.upstream.base import Listener

log = structlog.get_logger("gateway.upstream.http")

CONNECT_TIMEOUT = 10.0
ACCEPT = "application/json, text/event-stream"


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

    async def close(self) -> None:
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
        try:
            async with self._client.stream("POST", url, content=body, headers=headers) as response:
                await self._handle_post(message, response)
        except httpx.HTTPError as exc:
            self._refuse(message, f"{type(exc).__name__}: {exc}")
            if isinstance(exc, httpx.ConnectError):
                self._lost(f"cannot reach {self.url}")

    async def _handle_post(self, message: Message, response: httpx.Response) -> None:
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
            async for data in _sse_data(response, self.max_message_bytes):
                self._deliver(data)
        elif response.status_code == 200:
            self._deliver(await response.aread())
        if message.get("method") == "notifications/initialized" and self.kind == "http" and self._session_id:
            self._spawn(self._get_stream())

    async def _get_stream(self) -> None:
        """Server-initiated messages; a server without one (405) is fine."""
        assert self._client is not None
        headers = {"accept": "text/event-stream", **self._session_headers()}
        try:
            async with self._client.stream("GET", self.url, headers=headers) as response:
                if response.status_code != 200:
                    return
                async for data in _sse_data(response, self.max_message_bytes):
                    self._deliver(data)
        except httpx.HTTPError as exc:
            log.info("remote_stream_ended", server=self.name, reason=str(exc))

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
                async for event, data in _sse_events(response, self.max_message_bytes):
                    if event == "endpoint":
                        self._post_url = urljoin(self.url, data.decode())
                        if not ready.done():
                            ready.set_result(None)
                    else:
                        self._deliver(data)
        except (httpx.HTTPError, UpstreamError) as exc:
            if not ready.done():
                ready.set_exception(UpstreamError(f"cannot open {self.url}: {exc}"))
                return
        self._lost("the remote SSE stream ended")

    # --- delivery --------------------------------------------------------------------------------------------

    def _deliver(self, data: bytes) -> None:
        if self._listener is None or not data.strip():
            return
        try:
            parsed = jsonrpc.decode(data)
        except errors.ParseError as exc:
            self._listener.frame_invalid(data[:200], exc.message)
            return
        for message in parsed if isinstance(parsed, list) else [parsed]:
            if isinstance(message, dict) and message.get("method") is None and "result" in message:
                version = (message.get("result") or {}).get("protocolVersion")
                if isinstance(version, str) and str(message.get("id", "")).startswith("harbor-initialize"):
                    self._protocol_version = version
            self._listener.message_received(message)

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


async def _sse_events(response: httpx.Response, limit: int) -> AsyncIterator[tuple[str, bytes]]:
    event, size = "message", 0
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield event, "\n".join(data).encode()
            event, data, size = "message", [], 0
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            size += len(line)
            if size > limit:
                raise UpstreamError(f"an SSE event over {limit} bytes")
            data.append(line[5:].lstrip(" "))


async def _sse_data(response: httpx.Response, limit: int) -> AsyncIterator[bytes]:
    async for event, data in _sse_events(response, limit):
        if event == "message":
            yield data
