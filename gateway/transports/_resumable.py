"""A POST's SSE answer that a client can resume with `Last-Event-ID` after its connection drops.

Event ids are `<stream>-<seq>`, unique within the session. Every message written is kept until the stream
has carried all its replies, so a client that reconnects (GET with `Last-Event-ID`) gets exactly the events
after the last one it saw, on that stream, then the rest live. A dropped stream is parked for
`RESUME_WINDOW` seconds; its calls keep running and their messages keep queueing. If nobody resumes it in
time, the queued messages go to the session's other streams (`ClientSession.deliver`), so nothing is lost
for clients that do not resume.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

from sse_starlette import ServerSentEvent

from gateway.core import jsonrpc, tracing
from gateway.core.jsonrpc import Message, RequestId
from gateway.session.client import ClientSession
from gateway.transports._outbox import SSEOutbox

RESUME_WINDOW = 10.0  # seconds a dropped stream waits for its client (the SDK retries twice, 2 s apart)
MAX_EVENTS = 10_000  # events kept per stream; past that the stream is no longer resumable and keeps no more
RETRY_MS = 2000  # SSE `retry:` advertised to clients that reconnect

_keys = itertools.count(1)


class ResumableStream:
    def __init__(
        self, session: ClientSession, outbox: SSEOutbox, release: Callable[[], None], prefix: str = ""
    ) -> None:
        self.key = f"{prefix}{next(_keys)}"  # `prefix` names the replica, when there are several
        self.session = session
        self.outbox = outbox
        self.waiting: set[RequestId] = set()  # the stream's requests not yet answered on it
        self.sent: list[str] = []  # encoded messages; event `<key>-<n>` is sent[n - 1]
        self.attached = False
        self._started = False
        self._release = release  # hands undelivered messages back to the session, unregisters the outbox
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def done(self) -> bool:
        return not self.waiting

    def record(self, message: Message) -> str:
        """Keep a message for replay (within MAX_EVENTS) and return its encoding; a reply that came before
        the stream started (a batch answered partly) is recorded first and leads the stream."""
        self._mark(message)
        data = jsonrpc.encode(message).decode()
        self.sent.append(data if len(self.sent) < MAX_EVENTS else "")  # past the cap: a placeholder
        return data

    async def events(self, after: int | None) -> AsyncIterator[ServerSentEvent]:
        """The stream from the start (None: priming event first) or after event `after`, then live."""
        self.attached = self._started = True
        self.session.resumable[self.key] = self
        self._cancel_expiry()
        try:
            if after is None:
                yield ServerSentEvent(data="", id=f"{self.key}-0", retry=RETRY_MS)  # resumable from here
                after = 0
            for n in range(after + 1, len(self.sent) + 1):
                yield self._event(self.sent[n - 1], n)
            while not self.done:
                message = await self.outbox.next_message()
                if message is None:  # the reader fell too far behind
                    return
                data = self.record(message)
                yield self._event(data, len(self.sent))
                if tracing.enabled:  # harbor tracing hook: written to the client
                    tracing.written(self.session.id, (message,))
        finally:
            self.attached = False

    def after_response(self) -> None:
        """Park the stream while its client may still resume it; otherwise hand its leftovers back."""
        if self._started and not (
            self.done or self.outbox.overflowed or len(self.sent) >= MAX_EVENTS or self.session.closed
        ):
            self.outbox.closed = False  # keep queueing this stream's messages while it is parked
            self._expiry = asyncio.get_running_loop().call_later(RESUME_WINDOW, self._expire)
            return
        self.session.resumable.pop(self.key, None)
        self._release()

    def _expire(self) -> None:
        self._expiry = None
        self.session.resumable.pop(self.key, None)
        self._release()

    def _cancel_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def _mark(self, message: Message) -> None:
        if "method" not in message and message.get("id") in self.waiting:
            self.waiting.discard(message["id"])

    def _event(self, data: str, n: int) -> ServerSentEvent:
        return ServerSentEvent(data, event="message", id=f"{self.key}-{n}")


def find(session: ClientSession, last_event_id: str) -> tuple[ResumableStream, int] | None:
    """The stream (parked, or still connected) a `Last-Event-ID` names and the event number after which to
    resume, if any."""
    key, _, n = last_event_id.partition("-")
    stream: Any = session.resumable.get(key)
    if not isinstance(stream, ResumableStream) or not n.isdigit() or int(n) > len(stream.sent):
        return None
    return stream, int(n)
