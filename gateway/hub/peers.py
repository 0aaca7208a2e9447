"""What a merged view asks of the other replicas: where a call must run, running it there, routing answers.

The aggregator calls these hooks only with `gateway.state: redis://…` (`Aggregator.peers` is None otherwise):
- `placement(session, server)`: None when this replica serves the call, else the address of the replica that
  must — a per-session server's child lives on the session's home, a per-identity server's on the identity's.
- `call(address, session, server, message)`: forward one call there (`POST /_harbor/peer/call`) and put every
  message it streams back on the client's own stream; the reply ends it. The other replica dying fails the
  call at once with an error that says so (and ends the session when its per-session child died with it).
- `answer(session, message)`: a client's answer to a server→client request another replica asked (the id
  carries its ordinal) goes to that replica over the bus.
- `notify(session, message)`: client notifications (a cancellation of a call running elsewhere, roots changes)
  reach every replica; a replica that runs a call for the session acts on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import orjson
import structlog

from gateway.core import errors, jsonrpc
from gateway.core.errors import GatewayError, SessionNotFound, UpstreamError
from gateway.core.jsonrpc import Message, RequestId
from gateway.hub.cluster import Cluster, ordinal_of
from gateway.hub.docked import DockedServer

log = structlog.get_logger("gateway.hub.peers")

CALL_PATH = "/_harbor/peer/call"  # served by gateway.transports.peer.PeerCallEndpoint


def client() -> httpx.AsyncClient:
    """The pooled HTTP client replicas talk to each other with: a short connect (a replica that does not accept
    within a second is treated as gone), no read deadline (calls and streams have their own)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(None, connect=1.0), limits=httpx.Limits(max_keepalive_connections=64)
    )


class SessionLost(SessionNotFound):
    """The session's per-session child lived on a replica that stopped: the session is over."""


class Peers:
    def __init__(self, cluster: Cluster, view: str, http: httpx.AsyncClient) -> None:
        self.cluster = cluster
        self.view = view
        self.http = http
        self._remote: dict[tuple[str, RequestId], asyncio.Task[None]] = {}  # calls forwarded, by (session, id)

    # --- where a call runs -------------------------------------------------------------------------------

    async def placement(self, session: Any, server: DockedServer) -> str | None:
        """Raises: SessionLost when the session's home (its per-session child) is gone; StateDown."""
        cluster = self.cluster
        if server.per_session is not None:
            home = getattr(session, "home", None) or cluster.replica
            if home == cluster.replica:
                return None
            address = await cluster.address_of(home) if await cluster.alive(home) else None
            if address is None:
                await cluster.forget(session.id)
                raise SessionLost(
                    f"this session's {server.slug!r} child ran on replica {home}, which stopped: the session is over; "
                    "initialize a new one"
                )
            return address
        if server.per_identity is not None:
            replica, address = await cluster.identity_home(server.slug, session.identity.name)
            return None if replica == cluster.replica else address
        return None

    # --- a call on another replica ----------------------------------------------------------------------

    async def call(self, address: str, session: Any, server: DockedServer, message: Message, call: Any) -> None:
        """Start forwarding `message` (its reply comes later, on the client's stream, like a local call's)."""
        request_id = message["id"]
        key = (session.id, request_id)
        payload = {
            "view": self.view,
            "session": session.id,
            "server": server.slug,
            "message": message,
            "identity": {"name": session.identity.name, "scopes": sorted(session.identity.scopes)},
            "call": None
            if call is None
            else {"server": call.server, "tool": call.tool, "method": call.method, "arguments": call.arguments},
            "from": self.cluster.replica,
        }
        task = asyncio.get_running_loop().create_task(self._run(address, session, server, payload, request_id))
        self._remote[key] = task
        task.add_done_callback(lambda _t: self._remote.pop(key, None))

    async def _run(self, address: str, session: Any, server: DockedServer, payload: Message, request_id: Any) -> None:
        header, secret = self.cluster.peer_header()
        replied = False
        try:
            async with self.http.stream(
                "POST", address + CALL_PATH, content=orjson.dumps(payload), headers={header: secret}
            ) as response:
                if response.status_code != 200:
                    raise UpstreamError(
                        f"replica at {address} refused the forwarded call (HTTP {response.status_code})"
                    )
                async for line in response.aiter_lines():
                    if not line:
                        continue
                    message = orjson.loads(line)
                    if "method" not in message and message.get("id") == request_id:
                        replied = True
                        session.calls.pop(request_id, None)  # audited where it ran
                    session.deliver(message, request_id)
        except asyncio.CancelledError:
            return
        except (httpx.HTTPError, UpstreamError, ValueError) as exc:
            log.warning("peer_call_failed", server=server.slug, session=session.id, reason=str(exc))
        if replied:
            return
        session.calls.pop(request_id, None)
        lost = server.per_session is not None
        reason = (
            f"the replica running this session's {server.slug!r} child stopped during the call; the session is over, "
            "initialize a new one"
            if lost
            else f"the replica running {server.slug!r} for you stopped during the call; retry it"
        )
        session.deliver(jsonrpc.error_response(request_id, errors.INTERNAL_ERROR, reason), request_id)
        if lost:
            await self.cluster.forget(session.id)

    def cancel(self, session: Any, request_id: Any) -> bool:
        """Cancel a call forwarded from here: closing its stream cancels it at the other replica."""
        task = self._remote.pop((session.id, request_id), None)
        if task is None:
            return False
        task.cancel()
        session.calls.pop(request_id, None)
        session.deliver(
            jsonrpc.error_response(request_id, errors.REQUEST_CANCELLED, "Request cancelled by the client"), request_id
        )
        return True

    # --- answers and notifications for other replicas ---------------------------------------------------

    async def answer(self, session: Any, message: Message) -> None:
        """A client's answer to a server→client request this replica did not ask: to the replica that did."""
        ordinal = ordinal_of(message.get("id"))
        if ordinal is None or ordinal == self.cluster.ordinal or self.cluster.bus is None:
            log.info("client_response_unmatched", session=session.id, id=message.get("id"))
            return
        member = await self.cluster.member(ordinal)
        if member is None:
            log.info("client_response_for_gone_replica", session=session.id, ordinal=ordinal)
            return
        with contextlib.suppress(Exception):
            await self.cluster.bus.send(
                member[0], "answer", {"view": self.view, "session": session.id, "message": message}
            )

    async def notify(self, session: Any, message: Message) -> None:
        if self.cluster.bus is None:
            return
        with contextlib.suppress(Exception):
            await self.cluster.bus.broadcast(
                "notify", {"view": self.view, "session": session.id, "message": message, "from": self.cluster.replica}
            )

    async def subscription(self, session: Any, uri: str, on: bool) -> None:
        """A session (un)subscribed a shared server's resource here: keep it in the record (a replica adopting the
        session later subscribes it too) and tell the replicas that hold it now, whose own children send their
        own `resources/updated`."""
        records = self.cluster.records
        with contextlib.suppress(Exception):
            if records is not None:
                await (records.subscribe if on else records.unsubscribe)(session.id, uri)
            if self.cluster.bus is not None:
                await self.cluster.bus.broadcast(
                    "subscription", {"view": self.view, "session": session.id, "uri": uri, "on": on}
                )


def identity_from(payload: Message) -> Any:
    from gateway.policy.auth import Identity

    who = payload.get("identity") or {}
    return Identity(str(who.get("name", "anonymous")), frozenset(who.get("scopes") or ()))


__all__ = ["GatewayError", "Peers", "SessionLost", "identity_from"]
