"""A client's session: what one connected client owns, and where messages for it are delivered.

Transports register `Outbox`es: one per in-flight Streamable HTTP POST (keyed by the client's own request
id) and one default stream (the Streamable HTTP GET stream, or the legacy SSE stream). `deliver` puts a
message on the stream related to it, else on the default stream, else on any open request stream, else
in a small bounded backlog flushed when a default stream attaches. Ids here are always the client's own.
No HTTP and no upstream knowledge: the router decides *what* goes to whom, the session decides *where*.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from typing import Any, Protocol

from gateway.core import tracing
from gateway.core.jsonrpc import Message, RequestId

BACKLOG = 256  # messages kept for a client with no open stream


class Outbox(Protocol):
    def put(self, message: Message) -> bool:
        """Queue a message without blocking; False when this stream can no longer take it."""


class ClientSession:
    def __init__(self, kind: str, env: dict[str, str] | None = None, session_id: str | None = None) -> None:
        """`session_id`: given by a session that is never addressed by its id (one modern request); otherwise a
        fresh unguessable one, since a client presents it as `Mcp-Session-Id`."""
        self.id = session_id or secrets.token_hex(16)
        self.kind = kind
        self.env = env or {}
        self.protocol_version: str | None = None
        self.capabilities: dict[str, Any] = {}
        self.client_info: dict[str, Any] = {}
        self.router: Any = None  # the Router serving this session, set at initialize
        self.inflight: dict[RequestId, int] = {}  # client request id → upstream id
        self.streams: dict[RequestId, Outbox] = {}
        self.default: Outbox | None = None
        self.backlog: deque[Message] = deque(maxlen=BACKLOG)
        self.resumable: dict[str, Any] = {}  # the transport's dropped streams a client may resume, by key
        self.subscriptions: set[str] = set()
        self.created = self.last_active = time.monotonic()
        self.closed = False
        self.opening = False  # its initialize is under way (a child may be starting): not idle
        self.owner: str | None = None  # the identity that opened it; others cannot use it

    @property
    def initialized(self) -> bool:
        return self.router is not None

    def touch(self) -> None:
        self.last_active = time.monotonic()

    def idle_for(self, now: float) -> float:
        """Seconds since the client last did anything; 0 while a call or a stream is open."""
        if self.inflight or self.streams or self.default is not None or self.opening:
            return 0.0
        return now - self.last_active

    def deliver(self, message: Message, related: RequestId | None = None) -> None:
        if self.closed:
            return
        if tracing.enabled and "method" not in message:  # a reply leaves the gateway for this client
            tracing.delivered(self, message)
        if related is not None:
            stream = self.streams.get(related)
            if stream is not None and stream.put(message):
                return
        if self.default is not None:
            if self.default.put(message):
                return
            self.default = None
        for stream in reversed(list(self.streams.values())):
            if stream.put(message):
                return
        self.backlog.append(message)

    def attach_default(self, outbox: Outbox) -> None:
        self.default = outbox
        while self.backlog and outbox.put(self.backlog[0]):
            self.backlog.popleft()

    def detach_default(self, outbox: Outbox) -> None:
        if self.default is outbox:
            self.default = None
            self.touch()
