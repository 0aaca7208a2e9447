"""A server docked in the aggregating gateway: its shared router, its cached lists, the gateway's own session.

The gateway asks each upstream for its tools, prompts, resources and templates through an internal
session on that upstream's `Router` (so its requests are id-rewritten like any client's), and caches the
full lists — every upstream page — until the upstream says a list changed, restarts, or goes down.
Nothing here knows about HTTP or about the clients of the merged view.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import structlog

from gateway.core.errors import UpstreamError
from gateway.core.jsonrpc import Message, RequestId
from gateway.session.client import ClientSession
from gateway.session.instances import PerIdentity, PerSession
from gateway.session.router import Router

log = structlog.get_logger("gateway.hub.docked")

LIST_TIMEOUT = 30.0
MAX_PAGES = 100
# list method → (result key, the list_changed notification that invalidates it, capability)
LISTS = {
    "tools/list": ("tools", "notifications/tools/list_changed", "tools"),
    "prompts/list": ("prompts", "notifications/prompts/list_changed", "prompts"),
    "resources/list": ("resources", "notifications/resources/list_changed", "resources"),
    "resources/templates/list": ("resourceTemplates", "notifications/resources/list_changed", "resources"),
}


class _Waiter:
    def __init__(self, future: asyncio.Future[Message]) -> None:
        self.future = future

    def put(self, message: Message) -> bool:
        if "method" not in message and not self.future.done():
            self.future.set_result(message)
        return True


class _InternalSession(ClientSession):
    """The gateway's own session on a router: replies resolve futures; broadcasts are not for it."""

    def deliver(self, message: Message, related: RequestId | None = None) -> None:
        waiter = self.streams.get(related) if related is not None else None
        if waiter is not None:
            waiter.put(message)


class DockedServer:
    def __init__(self, slug: str, router: Router, *, prefix: str | None = None, settings: Any = None) -> None:
        self.slug = slug
        self.prefix = prefix or slug
        self.router = router
        self.settings = settings
        self.internal = _InternalSession("internal")
        router.attach(self.internal)
        self._cache: dict[str, list[Message]] = {}
        self._schemas: tuple[list[Message], dict[Any, Any]] | None = None  # (tools list, name → inputSchema)
        self._fetching: dict[str, asyncio.Task[list[Message]]] = {}
        self._ids = itertools.count(1)
        self.listeners: list[Callable[[DockedServer, str], None]] = []  # told "changed" / "ready" / "down"
        self.per_session: PerSession | None = None  # set for servers that give each session its own child
        self.per_identity: PerIdentity | None = None  # set for servers that give each identity its own child
        self.modern: Any = None  # its `gateway.session.modern.ModernServer`: how it answers 2026-07-28 requests
        self.clashes: dict[str, list[str]] = {}  # "tools"/"prompts" → why some of its names are left out
        router.on_event = self._event

    @property
    def state(self) -> str:
        return self.router.child.state if self.router.child is not None else "stopped"

    @property
    def capabilities(self) -> dict[str, Any]:
        child = self.router.child
        return dict((child.init_result or {}).get("capabilities") or {}) if child is not None else {}

    def cached(self, method: str) -> list[Message] | None:
        return self._cache.get(method)

    def input_schema(self, tool: Any) -> Any:
        """The `inputSchema` of `tool` in the cached tools list (None when unknown, or nothing is cached yet);
        the list is indexed once, not searched on every call."""
        tools = self._cache.get("tools/list")
        if tools is None or not isinstance(tool, str):
            return None
        index = self._schemas
        if index is None or index[0] is not tools:
            by_name: dict[Any, Any] = {}
            for item in tools:
                if isinstance(item, dict):
                    by_name.setdefault(item.get("name"), item.get("inputSchema"))  # the first of a name, as listed
            index = self._schemas = (tools, by_name)
        return index[1].get(tool)

    @property
    def degraded(self) -> str | None:
        """Why part of this server is not published (its own names clash), or None when all of it is."""
        reasons = [reason for kind in sorted(self.clashes) for reason in self.clashes[kind]]
        return "; ".join(reasons) or None

    def report_clashes(self, kind: str, clashes: dict[str, list[str]]) -> None:
        """Record the name clashes found in this server's `kind` list ("tools" or "prompts")."""
        reasons = [
            f"{kind} {' and '.join(repr(n) for n in names)} both publish as {public!r}: left out; rename one upstream"
            for public, names in sorted(clashes.items())
        ]
        if reasons != self.clashes.get(kind, []):
            if reasons:
                log.warning("name_clash", server=self.slug, kind=kind, clashes=reasons)
            self.clashes[kind] = reasons
            if not reasons:
                del self.clashes[kind]

    async def request(self, method: str, params: Message | None = None, timeout: float = LIST_TIMEOUT) -> Message:
        """Send a request as the gateway itself and return its result.

        Raises:
            UpstreamError: the upstream answered with an error, or not within `timeout`.
        """
        request_id = f"gw-{next(self._ids)}"
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.internal.streams[request_id] = _Waiter(future)
        message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
        try:
            await self.router.from_client(self.internal, message, "request")
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise UpstreamError(f"{self.slug}: no reply to {method} within {timeout:g} s") from None
        finally:
            self.internal.streams.pop(request_id, None)
        if "error" in reply:
            raise UpstreamError(f"{self.slug}: {method} failed: {reply['error'].get('message')}")
        result = reply.get("result")
        return result if isinstance(result, dict) else {}

    async def items(self, method: str) -> list[Message]:
        """The upstream's whole list (every page), cached until invalidated; [] when it lacks the capability."""
        cached = self._cache.get(method)
        if cached is not None:
            return cached
        key, _, capability = LISTS[method]
        if self.state != "ready" or capability not in self.capabilities:
            return []
        task = self._fetching.get(method)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(method, key))
            self._fetching[method] = task
        try:
            return await asyncio.shield(task)
        finally:
            if task.done() and self._fetching.get(method) is task:
                self._fetching.pop(method, None)

    async def _fetch(self, method: str, key: str) -> list[Message]:
        items: list[Message] = []
        cursor = None
        for _ in range(MAX_PAGES):
            result = await self.request(method, {"cursor": cursor} if cursor else {})
            items.extend(i for i in result.get(key) or [] if isinstance(i, dict))
            cursor = result.get("nextCursor")
            if not cursor:
                break
        if self._fetching.get(method) is asyncio.current_task():  # not invalidated meanwhile: still true
            self._cache[method] = items
        return items

    def invalidate(self, methods: tuple[str, ...] | None = None) -> None:
        for method in methods or tuple(LISTS):
            self._cache.pop(method, None)
            self._fetching.pop(method, None)  # a fetch begun earlier may predate the change: the next caller asks anew

    def _event(self, kind: str, message: Message | None) -> None:
        if kind == "changed" and message is not None:
            changed = tuple(m for m, (_, note, _) in LISTS.items() if note == message["method"])
            self.invalidate(changed)
        else:
            self.invalidate()
        for listener in list(self.listeners):
            listener(self, kind if message is None else message["method"])
