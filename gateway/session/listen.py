"""`subscriptions/listen` (2026-07-28): a long-lived stream of the notifications a modern client opts into.

A `Listen` is one such stream, attached to the routers (or the aggregator) whose notifications it may carry.
Its first message is `notifications/subscriptions/acknowledged` with the subset of the requested filter that will
be honoured (list changes only where the server can announce them, resource updates only where it can
subscribe); then only the notification types it asked for, each stamped with
`_meta["io.modelcontextprotocol/subscriptionId"]` = the listen request's id. Handshake-era children are
subscribed (`resources/subscribe`) on the first listener of a URI and unsubscribed after the last, by their
router. The stream ends when the client goes away, or with a `SubscriptionsListenResult` when the gateway stops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.core import era
from gateway.core.jsonrpc import Message, RequestId
from gateway.session.client import ClientSession, Outbox

FLAGS = {
    "notifications/tools/list_changed": "toolsListChanged",
    "notifications/prompts/list_changed": "promptsListChanged",
    "notifications/resources/list_changed": "resourcesListChanged",
}
_CAPABILITY = {"toolsListChanged": "tools", "promptsListChanged": "prompts", "resourcesListChanged": "resources"}


def honoured(requested: Any, capabilities: dict[str, Any]) -> dict[str, Any]:
    """The part of a listen filter the server can keep, given its capabilities (unknown keys are dropped)."""
    wanted = requested if isinstance(requested, dict) else {}
    out: dict[str, Any] = {}
    for flag, capability in _CAPABILITY.items():
        if wanted.get(flag) is True and (capabilities.get(capability) or {}).get("listChanged"):
            out[flag] = True
    uris = wanted.get("resourceSubscriptions")
    if isinstance(uris, list) and (capabilities.get("resources") or {}).get("subscribe"):
        out["resourceSubscriptions"] = [u for u in uris if isinstance(u, str)]
    return out


class Listen(ClientSession):
    """One `subscriptions/listen` stream; routers deliver broadcasts to it like to any session."""

    def __init__(self, request_id: RequestId, filter_: dict[str, Any], outbox: Outbox) -> None:
        super().__init__("listen")
        self.request_id = request_id
        self.filter = filter_
        self.outbox: Outbox | None = outbox
        self.finished = False
        self.on_finish: Callable[[], None] | None = None
        self._stamp = {era.META_SUBSCRIPTION: request_id}

    def acknowledge(self) -> None:
        self._put("notifications/subscriptions/acknowledged", {"notifications": self.filter})

    def deliver(self, message: Message, related: RequestId | None = None) -> None:
        method = message.get("method")
        if "id" in message or not isinstance(method, str):
            return
        flag = FLAGS.get(method)
        if flag is not None and self.filter.get(flag):
            self._put(method, message.get("params") or {})
        elif method == "notifications/resources/updated":
            uri = (message.get("params") or {}).get("uri")
            if uri in (self.filter.get("resourceSubscriptions") or ()):
                self._put(method, message.get("params") or {})

    def _put(self, method: str, params: Message) -> None:
        if self.outbox is None:
            return
        meta = {**(params.get("_meta") or {}), **self._stamp}
        self.outbox.put({"jsonrpc": "2.0", "method": method, "params": {**params, "_meta": meta}})

    def end(self) -> None:
        """The gateway stops: say so with the listen request's result, then let the stream close."""
        if self.outbox is not None:
            result = {"resultType": "complete", "_meta": dict(self._stamp)}
            self.outbox.put({"jsonrpc": "2.0", "id": self.request_id, "result": result})
        self.abandon()

    def abandon(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.outbox = None
        if self.on_finish is not None:
            self.on_finish()
