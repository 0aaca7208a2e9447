"""Streamable HTTP in the 2026-07-28 era, as a client — bridged onto a host that speaks the handshake era.

Desktop hosts open with `initialize`; a 2026-07-28 remote has no handshake and no session. So the host's
`initialize` becomes a `server/discover` (its clientInfo and capabilities kept), whose result is answered to
the host as an InitializeResult at the host's own version. Every request then travels alone: its `_meta`
carries the protocol version, the host's clientInfo and capabilities (and the log level the host set), and
its headers `MCP-Protocol-Version`, `Mcp-Method` and, for tools/call, prompts/get and resources/read,
`Mcp-Name`. What the era dropped is answered here: `ping` and `logging/setLevel` locally; resource
subscriptions and `*/list_changed` through one long-lived `subscriptions/listen` stream (`listen`).

A result of type `input_required` (the era's replacement for server→client requests) is resolved here:
each embedded request (sampling, elicitation, roots) is sent to the host as an ordinary server→client
request through `ask_host`, and the original request is retried with `inputResponses` and the echoed
`requestState`, at most `INPUT_ROUNDS` times; the host sees one request and one reply, under its own id.
The era has no resumption and no client→server notifications over HTTP: cancelling a call is closing its
POST (the bridge cancels the request), and a dropped answer stream is `CallLost`.
"""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import httpx
import orjson
import structlog

from gateway import __version__
from gateway.connect.streamable import Cursor, Dropped, parse, read_answer
from gateway.connect.transport import (
    ACCEPT_BOTH,
    CallLost,
    Deliver,
    Message,
    RemoteRefused,
    RemoteUnreachable,
    backoff,
    describe,
    is_reply_to,
)

log = structlog.get_logger("gateway.connect")

MODERN_VERSION = "2026-07-28"
HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"
NAME_BEARING = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
LIST_FILTERS = {"tools": "toolsListChanged", "prompts": "promptsListChanged", "resources": "resourcesListChanged"}
INPUT_ROUNDS = 10
_HEADER_SAFE = re.compile(r"[\x20-\x7E]*")

AskHost = Callable[[str, dict[str, Any]], Awaitable[Message]]


class NotModern(RemoteRefused):
    """The remote does not answer `server/discover` with 2026-07-28: use the handshake era instead."""


class HostRefused(Exception):
    """The host answered one of the remote's input requests with an error; the call gets that error."""

    def __init__(self, error: Any) -> None:
        super().__init__(str(error))
        self.error = error


def header_value(value: str) -> str:
    """A value as an HTTP field: printable ASCII as it is, anything else in the `=?base64?…?=` wrapping."""
    if _HEADER_SAFE.fullmatch(value) and value == value.strip() and not value.startswith("=?base64?"):
        return value
    return f"=?base64?{base64.b64encode(value.encode()).decode('ascii')}?="


def _reply(request_id: Any, result: dict[str, Any]) -> Message:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


class ModernHTTP:
    name = "streamable-http-2026"

    def __init__(self, client: httpx.AsyncClient, url: str, deliver: Deliver, ask_host: AskHost) -> None:
        self.url = url
        self.protocol_version: str | None = MODERN_VERSION
        self._client = client
        self._deliver = deliver
        self._ask_host = ask_host
        self._client_info: dict[str, Any] = {"name": "harbor-connect", "version": __version__}
        self._client_capabilities: dict[str, Any] = {}
        self._server_capabilities: dict[str, Any] = {}
        self._log_level: str | None = None
        self._subscriptions: set[str] = set()
        self._filter_changed = anyio.Event()
        self._ids = itertools.count(1)
        self._closed = False

    def _stamped(self, message: Message) -> tuple[Message, dict[str, str]]:
        params = dict(message.get("params") or {})
        meta = dict(params.get("_meta") or {})
        meta[VERSION_KEY] = MODERN_VERSION
        meta[CLIENT_INFO_KEY] = self._client_info
        meta[CLIENT_CAPABILITIES_KEY] = self._client_capabilities
        if self._log_level is not None:
            meta.setdefault(LOG_LEVEL_KEY, self._log_level)
        params["_meta"] = meta
        method = message["method"]
        headers = {
            "content-type": "application/json",
            "accept": ACCEPT_BOTH,
            "mcp-protocol-version": MODERN_VERSION,
            "mcp-method": method,
        }
        name = params.get(NAME_BEARING.get(method, ""))
        if isinstance(name, str):
            headers["mcp-name"] = header_value(name)
        return {**message, "params": params}, headers

    async def _exchange(self, message: Message) -> Message:
        """POST one request; hand related messages to `deliver`; return its reply.

        Raises:
            RemoteUnreachable: no connection. RemoteRefused: an HTTP error without a JSON-RPC reply.
            CallLost: the answer stream dropped (this era cannot resume it).
        """
        stamped, headers = self._stamped(message)
        try:
            async with self._client.stream("POST", self.url, content=orjson.dumps(stamped), headers=headers) as answer:
                if answer.status_code >= 400:
                    return await self._error_reply(answer, message["id"])
                reply = await read_answer(answer, message["id"], self._deliver, Cursor())
        except httpx.HTTPError as exc:
            if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
                raise RemoteUnreachable(f"cannot reach {self.url}: {describe(exc)}") from None
            raise CallLost(f"the answer stream dropped before the reply ({describe(exc)})") from None
        except Dropped as exc:
            raise CallLost(f"the answer stream dropped before the reply ({exc}); 2026-07-28 cannot resume") from None
        if reply is None:
            raise CallLost(f"{self.url} answered {message['method']} with no reply")
        return reply

    async def _error_reply(self, answer: httpx.Response, request_id: Any) -> Message:
        body = await answer.aread()
        try:
            replies = [m for m in parse(body) if is_reply_to(m, request_id)]
        except RemoteRefused:
            replies = []
        if replies:
            return replies[0]
        text = body[:300].decode(errors="replace").strip()
        raise RemoteRefused(f"HTTP {answer.status_code}" + (f": {text}" if text else ""), answer.status_code)

    async def handshake(self, initialize: Message) -> Message:
        params = initialize.get("params") or {}
        if isinstance(params.get("clientInfo"), dict):
            self._client_info = params["clientInfo"]
        self._client_capabilities = params.get("capabilities") or {}
        discover = {"jsonrpc": "2.0", "id": f"harbor-connect-discover-{next(self._ids)}", "method": "server/discover"}
        try:
            reply = await self._exchange(discover)
        except RemoteRefused as exc:
            raise NotModern(f"server/discover: {exc}", exc.status) from None
        except CallLost as exc:
            raise RemoteUnreachable(str(exc)) from None
        result = reply.get("result")
        if not isinstance(result, dict) or MODERN_VERSION not in (result.get("supportedVersions") or []):
            raise NotModern(f"server/discover did not offer {MODERN_VERSION}: {reply.get('error') or result}", 0)
        self._server_capabilities = result.get("capabilities") or {}
        asked = params.get("protocolVersion")
        answer: dict[str, Any] = {
            "protocolVersion": asked if asked in HANDSHAKE_VERSIONS else HANDSHAKE_VERSIONS[-1],
            "capabilities": self._server_capabilities,
            "serverInfo": (result.get("_meta") or {}).get(SERVER_INFO_KEY) or {"name": self.url, "version": "0"},
        }
        if isinstance(result.get("instructions"), str):
            answer["instructions"] = result["instructions"]
        return _reply(initialize["id"], answer)

    async def request(self, message: Message) -> None:
        request_id, method = message["id"], message["method"]
        params = message.get("params") or {}
        if method == "ping":
            self._deliver(_reply(request_id, {}))  # the era has no ping: the connection is per request
            return
        if method == "logging/setLevel":
            self._log_level = params.get("level")  # stamped on every later request
            self._deliver(_reply(request_id, {}))
            return
        if method in ("resources/subscribe", "resources/unsubscribe") and isinstance(params.get("uri"), str):
            (self._subscriptions.add if method == "resources/subscribe" else self._subscriptions.discard)(params["uri"])
            self._filter_changed.set()  # the listen stream reopens with the new filter
            self._deliver(_reply(request_id, {}))
            return
        reply = await self._exchange(message)
        rounds = 0
        while isinstance(result := reply.get("result"), dict) and result.get("resultType") == "input_required":
            if rounds == INPUT_ROUNDS:
                message_text = f"harbor-connect: the remote asked for input more than {INPUT_ROUNDS} times; gave up"
                reply = {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32603, "message": message_text}}
                break
            try:
                retry = await self._retry(message, result, rounds)
            except HostRefused as exc:
                reply = {"jsonrpc": "2.0", "id": request_id, "error": exc.error}
                break
            reply = await self._exchange(retry)
            rounds += 1
        self._deliver({**reply, "id": request_id})

    async def _retry(self, message: Message, result: dict[str, Any], attempt: int) -> Message:
        """The original request again, with the host's answers to the remote's input requests."""
        requests = result.get("inputRequests") or {}
        responses: dict[str, Any] = {}
        refused: list[Any] = []

        async def answer(key: str, request: dict[str, Any], group: anyio.abc.TaskGroup) -> None:
            reply = await self._ask_host(request.get("method", ""), request.get("params") or {})
            if "error" in reply:
                refused.append(reply["error"])
                group.cancel_scope.cancel()  # one refusal ends the call: the others need not be waited for
            else:
                responses[key] = reply.get("result")

        if requests:
            async with anyio.create_task_group() as group:
                for key, request in requests.items():
                    group.start_soon(answer, key, request, group)
            if refused:
                raise HostRefused(refused[0])
        else:
            await anyio.sleep(min(0.25, backoff(attempt) / 5))  # state only: the remote wants time
        params = {k: v for k, v in (message.get("params") or {}).items() if k not in ("inputResponses", "requestState")}
        if responses:
            params["inputResponses"] = responses
        if result.get("requestState") is not None:
            params["requestState"] = result["requestState"]
        return {**message, "id": f"harbor-connect-retry-{next(self._ids)}", "params": params}

    async def send(self, message: Message) -> None:
        log.debug("not_sent_in_2026_era", method=message.get("method"))  # no client→server notifications

    async def listen(self) -> None:
        """One `subscriptions/listen` stream for list changes and resource updates, reopened as needed."""
        attempt = 0
        while not self._closed:
            wanted: dict[str, Any] = {
                key: True
                for capability, key in LIST_FILTERS.items()
                if (self._server_capabilities.get(capability) or {}).get("listChanged")
            }
            if self._subscriptions:
                wanted["resourceSubscriptions"] = sorted(self._subscriptions)
            self._filter_changed = anyio.Event()
            if not wanted:
                await self._filter_changed.wait()
                continue
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as group:
                    group.start_soon(_cancel_when, self._filter_changed, scope)
                    attempt = await self._listen_once(wanted, attempt)
                    group.cancel_scope.cancel()
            if not self._filter_changed.is_set():
                await anyio.sleep(backoff(attempt))

    async def _listen_once(self, wanted: dict[str, Any], attempt: int) -> int:
        listen = {
            "jsonrpc": "2.0",
            "id": f"harbor-connect-listen-{next(self._ids)}",
            "method": "subscriptions/listen",
            "params": {"notifications": wanted},
        }
        stamped, headers = self._stamped(listen)
        try:
            async with self._client.stream("POST", self.url, content=orjson.dumps(stamped), headers=headers) as answer:
                if answer.status_code >= 400:
                    log.info("listen_refused", url=self.url, status=answer.status_code)
                    return attempt + 1
                await read_answer(answer, listen["id"], self._from_listen, Cursor())
                return 0
        except (httpx.HTTPError, Dropped) as exc:
            log.info("listen_reconnecting", url=self.url, reason=str(exc))
            return attempt + 1

    def _from_listen(self, message: Message) -> None:
        if message.get("method") != "notifications/subscriptions/acknowledged":
            self._deliver(message)

    async def close(self) -> None:
        self._closed = True
        self._filter_changed.set()


async def _cancel_when(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()
