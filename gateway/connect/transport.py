"""What every remote transport of `harbor-connect` keeps to, and the faults it reports.

A transport carries one MCP session to a remote server: `handshake` opens it with the host's `initialize`,
`request` sends one request and returns once its reply has been handed to `deliver` (or the transport knows
it will come on a stream it already reads), `send` posts a notification or a reply to a server request,
`listen` reads the server-initiated stream until the session ends, `close` ends the session. Every message
that comes back, on any stream, goes to the `deliver` callback given at construction, exactly once.

Faults are typed so that the bridge can decide what the host sees, and never guesses:

    RemoteError                   base
    ├── RemoteUnreachable         no connection could be made: nothing was sent; safe to retry
    ├── RemoteRefused             the remote answered the handshake or a POST with an HTTP error (401, 500…)
    │   └── NotStreamable         the URL does not speak Streamable HTTP (400/404/405 to the handshake POST)
    ├── SessionLost               the remote no longer knows the session (HTTP 404, or the SSE stream ended):
    │                             re-initialize; a request that got it was not run
    └── CallLost                  the connection dropped after the request was sent and could not be resumed:
                                  the request may or may not have run; the host gets an error

Transports never write to stdout, never retry a request that may have run, and never log header values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import httpx

Message = dict[str, Any]
Deliver = Callable[[Message], None]

ACCEPT_BOTH = "application/json, text/event-stream"
HANDSHAKE_TIMEOUT = 30.0  # the remote's answer to initialize (or its SSE endpoint event)
RESUME_ATTEMPTS = 5  # tries to reopen a dropped stream in a row, each after `retry` or the backoff
BACKOFF_FIRST = 0.25
BACKOFF_MAX = 5.0


class RemoteError(Exception):
    """A fault of the remote connection; the message says what happened and is safe to show to the host."""


class RemoteUnreachable(RemoteError):
    pass


class RemoteRefused(RemoteError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class NotStreamable(RemoteRefused):
    pass


class SessionLost(RemoteError):
    pass


class CallLost(RemoteError):
    pass


class Transport(Protocol):
    name: str
    protocol_version: str | None

    async def handshake(self, initialize: Message) -> Message:
        """Send the host's `initialize`; return the remote's reply (result or error).

        Raises:
            RemoteUnreachable, RemoteRefused, NotStreamable: the session could not be opened.
        """

    async def request(self, message: Message) -> None:
        """Send one request; return when its reply is delivered or will arrive on the listened stream.

        Raises:
            RemoteUnreachable: nothing was sent. SessionLost: the remote refused the session, the request
            was not run. CallLost: the reply cannot come. RemoteRefused: an HTTP error instead of a reply.
        """

    async def send(self, message: Message) -> None:
        """Send a notification or a reply to a server request.

        Raises:
            RemoteError: it could not be delivered.
        """

    async def listen(self) -> None:
        """Read server-initiated messages until the session ends; reconnects and resumes on its own.

        Raises:
            SessionLost: the session is gone; the bridge re-initializes.
        """

    async def close(self) -> None:
        """End the session (DELETE where the transport has one); idempotent."""


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number `attempt` (0-based): 0.25 s doubling up to 5 s."""
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2**attempt))


def describe(exc: httpx.HTTPError) -> str:
    """One line for a connection fault, without the request's headers."""
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def is_reply_to(message: Message, request_id: Any) -> bool:
    return "method" not in message and message.get("id") == request_id and ("result" in message or "error" in message)
