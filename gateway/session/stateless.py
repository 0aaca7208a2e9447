"""What translate and the gateway answer to a modern request themselves, and the pieces both fronts share.

`discover` turns a handshake `initialize` result into the modern `server/discover` shape (supported versions,
capabilities, instructions, the server's identity in `_meta`), so a server's discovery never needs its child to
speak the modern era. `Relay` is an outbox that rewrites a call's final reply on its way (URIs, audit). `Done`
stands for a request answered on the spot. Pure: no HTTP, no processes.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.core import era
from gateway.core.jsonrpc import Message, RequestId
from gateway.session.client import Outbox


def discover(init_result: Message | None, name: str) -> Message:
    """A `server/discover` result from what a handshake-era server said in `initialize`."""
    init = init_result or {}
    info = init.get("serverInfo") or {"name": name, "version": "unknown"}
    result: Message = {
        "supportedVersions": list(era.MODERN_VERSIONS),
        "capabilities": dict(init.get("capabilities") or {}),
        "_meta": {era.META_SERVER_INFO: info},
    }
    if init.get("instructions"):
        result["instructions"] = init["instructions"]
    return era.complete(result, cacheable=True)  # type: ignore[no-any-return]


def answer(outbox: Outbox, request_id: RequestId, result: Message, cacheable: bool = False) -> Done:
    """Put a final reply computed here on the request's outbox."""
    outbox.put({"jsonrpc": "2.0", "id": request_id, "result": era.complete(result, cacheable)})
    return Done()


class Done:
    """A request already answered: nothing to cancel when its client goes away."""

    finished = True

    def abandon(self) -> None:
        return None


class Relay:
    """An outbox that hands each message to `target`, the final reply through `on_reply` first."""

    def __init__(self, target: Outbox, on_reply: Callable[[Message], Message]) -> None:
        self.target = target
        self.on_reply = on_reply

    def put(self, message: Message) -> bool:
        if "method" not in message:
            message = self.on_reply(message)
        return self.target.put(message)


def is_cacheable(method: str) -> bool:
    return method in ("tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read")
