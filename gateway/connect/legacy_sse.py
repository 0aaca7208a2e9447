"""Legacy HTTP+SSE (2024-11-05) as a client: one GET stream is the session, messages are POSTed beside it.

The first event of the stream, `endpoint`, names the URI to POST to (it differs between SDKs: Python's
`/messages/?session_id=…`, TypeScript's `/message?sessionId=…`, so it is always taken from the event, resolved
against the stream's URL). POSTs are answered 202; every reply arrives on the stream. The transport has one
reader: `handshake` reads up to the reply to `initialize`, `listen` reads the rest. This era has no
resumption: when the stream ends the session is gone (`SessionLost`), and replies still owed are lost, which
the bridge reports to the host.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urljoin

import anyio
import httpx
import orjson
from httpx_sse import EventSource, ServerSentEvent, SSEError

from gateway.connect.streamable import parse_event
from gateway.connect.transport import (
    HANDSHAKE_TIMEOUT,
    Deliver,
    Message,
    RemoteRefused,
    RemoteUnreachable,
    SessionLost,
    describe,
    is_reply_to,
)


class LegacySSE:
    name = "sse"

    def __init__(self, client: httpx.AsyncClient, url: str, deliver: Deliver) -> None:
        self.url = url
        self.protocol_version: str | None = None
        self._client = client
        self._deliver = deliver
        self._endpoint: str | None = None
        self._stack = contextlib.AsyncExitStack()
        self._events: AsyncIterator[ServerSentEvent] | None = None

    async def _next(self) -> ServerSentEvent | None:
        assert self._events is not None
        try:
            return await self._events.__anext__()
        except StopAsyncIteration:
            return None
        except (httpx.HTTPError, SSEError) as exc:
            raise SessionLost(f"the SSE stream of {self.url} broke: {exc}") from None

    async def handshake(self, initialize: Message) -> Message:
        try:
            with anyio.fail_after(HANDSHAKE_TIMEOUT):
                await self._open()
                await self._post(initialize)
                while (event := await self._next()) is not None:
                    for message in self._messages(event):
                        if is_reply_to(message, initialize["id"]):
                            version = (message.get("result") or {}).get("protocolVersion")
                            self.protocol_version = version if isinstance(version, str) else None
                            return message
                        self._deliver(message)
        except TimeoutError:
            raise RemoteUnreachable(f"{self.url} did not answer initialize within {HANDSHAKE_TIMEOUT:g} s") from None
        except SessionLost as exc:
            raise RemoteUnreachable(str(exc)) from None
        raise RemoteUnreachable(f"the SSE stream of {self.url} ended before the reply to initialize")

    async def _open(self) -> None:
        headers = {"accept": "text/event-stream", "cache-control": "no-store"}
        try:
            response = await self._stack.enter_async_context(self._client.stream("GET", self.url, headers=headers))
        except httpx.HTTPError as exc:
            raise RemoteUnreachable(f"cannot reach {self.url}: {describe(exc)}") from None
        kind = response.headers.get("content-type", "").partition(";")[0].strip().lower()
        if response.status_code != 200 or kind != "text/event-stream":
            text = (await response.aread())[:300].decode(errors="replace").strip()
            raise RemoteRefused(f"GET {self.url}: HTTP {response.status_code} {kind}: {text}", response.status_code)
        self._events = EventSource(response).aiter_sse()
        while (event := await self._next()) is not None:
            if event.event == "endpoint":
                self._endpoint = urljoin(self.url, event.data.strip())
                return
        raise RemoteRefused(f"the SSE stream of {self.url} ended without an endpoint event", 0)

    def _messages(self, event: ServerSentEvent) -> list[Message]:
        if event.event not in ("", "message") or not event.data.strip():
            return []
        return parse_event(event.data)

    async def _post(self, message: Message) -> None:
        assert self._endpoint is not None
        headers = {"content-type": "application/json"}
        try:
            response = await self._client.post(self._endpoint, content=orjson.dumps(message), headers=headers)
        except httpx.HTTPError as exc:
            raise RemoteUnreachable(f"cannot reach {self._endpoint}: {describe(exc)}") from None
        if response.status_code == 404:
            raise SessionLost(f"{self.url} no longer knows this session (HTTP 404)")
        if response.status_code >= 400:
            text = response.text[:300].strip()
            raise RemoteRefused(f"HTTP {response.status_code}: {text}", response.status_code)

    async def request(self, message: Message) -> None:
        await self._post(message)

    async def send(self, message: Message) -> None:
        await self._post(message)

    async def listen(self) -> None:
        while (event := await self._next()) is not None:
            for message in self._messages(event):
                self._deliver(message)
        raise SessionLost(f"the SSE stream of {self.url} ended")

    async def close(self) -> None:
        with contextlib.suppress(httpx.HTTPError, RuntimeError):
            await self._stack.aclose()
