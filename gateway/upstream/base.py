"""The one contract every upstream keeps: send a message, report what comes back, close.

An upstream moves JSON-RPC messages and nothing else: it never rewrites ids, never routes, never retries.
It reports to a `Listener` from the event loop's thread, synchronously, so the router can deliver a reply
with no extra task switch. `send` never blocks; it raises when the upstream cannot take the message.
"""

from __future__ import annotations

from typing import Protocol

from gateway.core.jsonrpc import Message, RequestId


class Listener(Protocol):
    def message_received(self, message: Message) -> None:
        """A decoded message from the upstream."""

    def frame_too_large(self, request_id: RequestId | None, size: int) -> None:
        """A frame over the byte limit was dropped; `request_id` is its id when it could be read."""

    def frame_invalid(self, line: bytes, reason: str) -> None:
        """A frame that is not JSON-RPC was dropped."""

    def upstream_closed(self, reason: str) -> None:
        """The upstream is gone (process exit, connection loss); called once."""


class Upstream(Protocol):
    async def start(self, listener: Listener) -> None:
        """Connect or spawn. Raises UpstreamError when that fails."""

    def send(self, message: Message) -> None:
        """Queue one message. Raises UpstreamError when the upstream cannot take it."""

    async def close(self, quick: bool = False) -> None:
        """Stop, gracefully first (briefly when `quick`: the gateway itself is stopping); idempotent."""
