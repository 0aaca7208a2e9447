"""Modern (2026-07-28) requests served by a handshake-era child: server→client requests become input rounds.

A `ModernCall` is one modern request, attached to a handshake-era `Router` like a client session of its own
(so its ids, progress token and cancellation are rewritten like anyone's). Its request reaches the child as a
plain handshake-era request of the gateway's own session on that child. When the child asks the client
something while serving it — `sampling/createMessage`, `elicitation/create`, `roots/list` — the call collects
those requests for `SETTLE` seconds (a child that asks three things at once asks them together) and answers
the modern client with an `InputRequiredResult`: the input requests keyed by name, and an opaque `requestState`
(`RoundStates`: HMAC-signed, constant size, bound to the identity, valid for `ROUND_WINDOW` seconds). The child's
requests stay pending meanwhile. The client's retry — the same method and name, `inputResponses` and that
`requestState` — delivers each response to the child request waiting for it and picks the call up again: the
tool is never run twice. More rounds follow if the child asks again.

Keys: a child may name an input request with `params._meta["harbor/inputKey"]` (a handshake-era server has no
other way to), else the call names it `elicitation-1`, `sampling-1`, `roots-1`, …. A request carrying
`inputResponses` but no `requestState` is a new call whose answers are offered to the child's requests by key.
A request the client's capabilities (from its `_meta`) do not cover is answered to the child with -32021
(`requiredCapabilities`): the child decides what that means. Log notifications reach the client only when its
`_meta` asked for a log level, and only at or above it. Nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import secrets
import time
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from gateway.core import era, errors, jsonrpc
from gateway.core.errors import GatewayError
from gateway.core.jsonrpc import Message, RequestId
from gateway.session.client import ClientSession, Outbox
from gateway.session.stateless import is_cacheable

log = structlog.get_logger("gateway.session.bridge")

SETTLE = 0.002  # seconds to gather the input requests a child sends together, before answering the client
ROUND_WINDOW = 300.0  # seconds a client has to answer an input round; past it the child's requests get an error
KEY_META = "harbor/inputKey"
_KIND = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}
_BOOT = secrets.token_hex(4)  # with a serial, names every call of this process uniquely, across restarts too
_SERIAL = itertools.count(1)
LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")


class StateError(GatewayError):
    code = errors.INVALID_PARAMS


class RoundStates:
    """Signs and checks `requestState` tokens: `<payload>.<mac>`, base64url, HMAC-SHA256 with a secret of this
    process (the scale-out configuration gives every replica the same one). The payload names the call, the
    identity and the expiry — nothing of the conversation, so a token never grows."""

    def __init__(self, secret: bytes | None = None, window: float = ROUND_WINDOW) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self.window = window

    def issue(self, call_key: str, identity: str, round_no: int) -> str:
        payload = orjson.dumps({"c": call_key, "i": identity, "r": round_no, "e": int(time.time() + self.window)})
        body = base64.urlsafe_b64encode(payload).rstrip(b"=")
        mac = base64.urlsafe_b64encode(hmac.new(self._secret, body, hashlib.sha256).digest()[:18])
        return f"{body.decode()}.{mac.decode()}"

    @staticmethod
    def call_key(token: Any) -> str | None:
        """The call a token names, unverified (to know which replica to relay it to; that one verifies it)."""
        if not isinstance(token, str) or token.count(".") != 1:
            return None
        body = token.split(".")[0]
        try:
            claims = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, orjson.JSONDecodeError):
            return None
        key = claims.get("c") if isinstance(claims, dict) else None
        return key if isinstance(key, str) else None

    def check(self, token: Any, identity: str) -> tuple[str, int]:
        """The call and round a token names.

        Raises:
            StateError: the token is not one this gateway issued (forged or altered), has expired, or belongs to
                another identity; the message says which, and what to do.
        """
        if not isinstance(token, str) or token.count(".") != 1:
            raise StateError("requestState is not a token this gateway issued; call again without it")
        body, mac = token.split(".")
        expected = base64.urlsafe_b64encode(hmac.new(self._secret, body.encode(), hashlib.sha256).digest()[:18])
        if not hmac.compare_digest(expected, mac.encode()):
            raise StateError("requestState failed its integrity check (altered or forged); call again without it")
        claims = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if claims["i"] != identity:
            raise StateError("requestState belongs to another identity; call again without it")
        if claims["e"] < time.time():
            raise StateError(f"requestState expired (rounds are kept {self.window:g} s); call again without it")
        return str(claims["c"]), int(claims["r"])


class ModernCall(ClientSession):
    """One modern request and its input rounds, as a session on a handshake-era router."""

    modern = True

    def __init__(self, identity: str, envelope: era.Envelope, request: Message, calls: Calls) -> None:
        # The key only has to be unique: a requestState naming it is signed, so it cannot be forged or guessed.
        self.key = f"{calls.prefix}{_BOOT}{next(_SERIAL):x}"  # the prefix names the replica, when there are several
        super().__init__("modern", session_id=self.key)
        self.owner = identity
        self.identity = identity
        self.capabilities = envelope.capabilities
        self.client_info = envelope.client_info or {}
        self.log_level = envelope.log_level
        self.protocol_version = envelope.version
        self.method = request["method"]
        self.name = (request.get("params") or {}).get(era.NAMED.get(self.method, ""), None)
        self.first_id: RequestId = request["id"]
        self.client_id: RequestId = request["id"]  # the id of the attempt being answered now
        self.outbox: Outbox | None = None
        self.inputs: dict[str, tuple[int, str, Message]] = {}  # key → (id the child's request has here, method, params)
        self.supplied: dict[str, Any] = {}  # answers given before they were asked (no requestState)
        self.round = 0
        self._counts: dict[str, int] = {}
        self._flush: asyncio.TimerHandle | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._calls = calls
        self.finished = False
        self.on_finish: Callable[[], None] | None = None  # e.g. let an identity's child go idle

    # --- the router delivers everything for this call here ------------------------------------------------

    def deliver(self, message: Message, related: RequestId | None = None) -> None:
        if self.finished:
            return
        if "method" not in message:  # the reply to the client's request: the call is over
            self._finish(message)
            return
        method = message["method"]
        if "id" in message:
            self._asked(message)
        elif method == "notifications/progress" or (
            method == "notifications/message" and self._alone_busy() and self._wants_log(message)
        ):
            self._send(message)
        # anything else (list_changed, resources/updated) is for `subscriptions/listen`, not a request's stream

    @property
    def awaiting_client(self) -> bool:
        """Parked in an input round: every request the child made for it is with the client, so its handler is
        blocked on them and cannot be the sender of a new request (nor of a log line)."""
        return not self.finished and self.outbox is None and bool(self.inputs)

    def _alone_busy(self) -> bool:
        """A log line has no link to a request: it is this call's only when no other session has calls running."""
        router = self.router
        return router is not None and all(
            s is self or not s.inflight or getattr(s, "awaiting_client", False) for s in router.sessions
        )

    def _wants_log(self, message: Message) -> bool:
        level = (message.get("params") or {}).get("level")
        if self.log_level not in LEVELS or level not in LEVELS:
            return False
        return LEVELS.index(level) >= LEVELS.index(self.log_level)

    def _asked(self, request: Message) -> None:
        """The child asks the client something for this call: answer from what was supplied, or collect it."""
        params = dict(request.get("params") or {})
        meta = dict(params.get("_meta") or {})
        hint = meta.pop(KEY_META, None)
        if meta:
            params["_meta"] = meta
        else:
            params.pop("_meta", None)
        kind = _KIND.get(request["method"], "input")
        if isinstance(hint, str) and hint:
            key = hint
        else:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            key = f"{kind}-{self._counts[kind]}"
        if key in self.supplied:
            self._answer_child(request["id"], self.supplied.pop(key))
            return
        self.inputs[key] = (request["id"], request["method"], params)
        if self._flush is None and self.outbox is not None:
            self._flush = asyncio.get_running_loop().call_later(SETTLE, self._ask_client)

    def _ask_client(self) -> None:
        """Answer the client's request with an input round; the call is parked until it retries."""
        self._flush = None
        if self.finished or self.outbox is None or not self.inputs:
            return
        self.round += 1
        token = self._calls.states.issue(self.key, self.identity, self.round)
        result = {
            "resultType": "input_required",
            "inputRequests": {k: {"method": m, "params": p} for k, (_, m, p) in self.inputs.items()},
            "requestState": token,
        }
        self._send({"jsonrpc": "2.0", "id": self.client_id, "result": result})
        self.outbox = None
        self._calls.park(self)
        self._cancel_expiry()
        self._expiry = asyncio.get_running_loop().call_later(self._calls.states.window, self._expired)

    # --- the client's retry --------------------------------------------------------------------------------

    def resume(self, request: Message, outbox: Outbox, responses: dict[str, Any]) -> None:
        """Pick the call up again with the client's answers (unknown keys are ignored, missing ones re-asked)."""
        self._cancel_expiry()
        self.client_id, self.outbox = request["id"], outbox
        for key, answer in responses.items():
            waiting = self.inputs.pop(key, None)
            if waiting is not None:
                self._answer_child(waiting[0], answer)
        if self.inputs:  # still something the client did not answer: ask again, at once
            self._ask_client()

    def _answer_child(self, request_id: int, answer: Any) -> None:
        router = self.router
        if router is not None:
            router._response(self, {"jsonrpc": "2.0", "id": request_id, "result": answer})

    def _refuse_child(self, request_id: int, code: int, message: str) -> None:
        router = self.router
        if router is not None:
            router._response(self, jsonrpc.error_response(request_id, code, message))

    def _expired(self) -> None:
        """Nobody came back within the window: the child's questions get an error; nothing is left behind."""
        self._expiry = None
        log.info("input_round_expired", call=self.key, inputs=sorted(self.inputs))
        for request_id, method, _ in list(self.inputs.values()):
            self._refuse_child(request_id, errors.REQUEST_TIMEOUT, f"the client did not answer {method} in time")
        self.inputs.clear()
        self._calls.forget(self)

    # --- plumbing ------------------------------------------------------------------------------------------

    def _send(self, message: Message) -> None:
        if self.outbox is not None:
            self.outbox.put(message)

    def _finish(self, reply: Message) -> None:
        """The child's reply to the call: sent to the client under the id of the attempt being answered."""
        self.finished = True
        reply = {**reply, "id": self.client_id}
        if "result" in reply:
            reply["result"] = era.complete(reply["result"], cacheable=is_cacheable(self.method))
        self._send(reply)
        self.outbox = None
        self._cancel_expiry()
        if self._flush is not None:
            self._flush.cancel()
        self._calls.forget(self)
        router = self.router
        if router is not None:
            router.detach(self)
        if self.on_finish is not None:
            self.on_finish()

    def _cancel_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def abandon(self) -> None:
        """The client's connection went away: stop writing to it. A call parked for a retry keeps waiting; any
        other is cancelled (in this era, closing the response stream is how a client cancels)."""
        self.outbox = None
        if self.finished or self.key in self._calls.parked:
            return
        self.finished = True
        if self._flush is not None:
            self._flush.cancel()
        for request_id, method, _ in list(self.inputs.values()):
            self._refuse_child(request_id, errors.REQUEST_CANCELLED, f"the client went away before answering {method}")
        router = self.router
        if router is not None:
            router.detach(self)  # the child gets notifications/cancelled for the call
        if self.on_finish is not None:
            self.on_finish()


class Calls:
    """The calls parked between rounds, by key; `states` signs their tokens."""

    def __init__(self, states: RoundStates | None = None) -> None:
        self.states = states or RoundStates()
        self.prefix = ""  # with replicas: `<ordinal>.`, so a round retried on another replica is relayed here
        self.parked: dict[str, ModernCall] = {}
        self._ids = itertools.count(1)

    def park(self, call: ModernCall) -> None:
        self.parked[call.key] = call

    def forget(self, call: ModernCall) -> None:
        self.parked.pop(call.key, None)

    def find(self, token: Any, identity: str, request: Message) -> ModernCall:
        """The parked call a retry names.

        Raises:
            StateError: a bad, expired or foreign token, a call that is no longer waiting, or a retry that is not
                the same request (method and name) as the one that asked.
        """
        key, round_no = self.states.check(token, identity)
        call = self.parked.get(key)
        if call is None or call.identity != identity:
            raise StateError("requestState names no waiting call (it finished, expired or is unknown); call again")
        if round_no != call.round:
            raise StateError("requestState is from an earlier round of this call; use the latest one")
        params = request.get("params") or {}
        if request["method"] != call.method or params.get(era.NAMED.get(call.method, ""), None) != call.name:
            raise StateError("requestState belongs to a different request; retry the same method and name")
        return call


def responses_of(params: Any) -> dict[str, Any]:
    """A request's `inputResponses`, checked: an object of objects (absent: none).

    Raises:
        StateError: `inputResponses` is not an object, or one of its values is not.
    """
    if not isinstance(params, dict) or "inputResponses" not in params:
        return {}
    responses = params["inputResponses"]
    if not isinstance(responses, dict):
        raise StateError("inputResponses must be an object mapping each input request's key to its result")
    for key, value in responses.items():
        if not isinstance(value, dict):
            raise StateError(f"inputResponses.{key} must be an object (the result of the input request {key!r})")
    return responses


async def call_on_handshake_child(
    router: Any, calls: Calls, identity: str, envelope: era.Envelope, request: Message, outbox: Outbox,
    prepare: Callable[[Message], Message] = lambda m: m,
) -> ModernCall:  # fmt: skip
    """Serve one modern request on a handshake-era child's `router`, putting its messages on `outbox`: a retry
    resumes its parked call; anything else starts a call (with `prepare` applied to the forwarded request).

    Raises:
        StateError: a bad retry (see `Calls.find`) or malformed `inputResponses`.
    """
    params = request.get("params") or {}
    responses = responses_of(params)
    if "requestState" in params and params["requestState"] is not None:
        call = calls.find(params["requestState"], identity, request)
        call.resume(request, outbox, responses)
        return call
    call = ModernCall(identity, envelope, request, calls)
    call.supplied = dict(responses)
    call.outbox = outbox
    router.attach(call)
    forwarded = prepare({**request, "params": era.without_envelope(params)})
    await router.from_client(call, forwarded, "request")
    return call


class Passthrough(ClientSession):
    """One modern request to a child that speaks 2026-07-28 itself: forwarded with the client's own envelope,
    answered with the child's own result (input rounds and their `requestState` included, untouched)."""

    modern = True

    def __init__(self, identity: str, envelope: era.Envelope, request: Message, outbox: Outbox) -> None:
        super().__init__("modern", session_id=f"{_BOOT}{next(_SERIAL):x}")
        self.owner = identity
        self.capabilities = envelope.capabilities
        self.protocol_version = envelope.version
        self.client_id: RequestId = request["id"]
        self.outbox: Outbox | None = outbox
        self.finished = False
        self.on_finish: Callable[[], None] | None = None

    def deliver(self, message: Message, related: RequestId | None = None) -> None:
        if self.finished or self.outbox is None:
            return
        if "method" not in message:
            self.outbox.put({**message, "id": self.client_id})
            self._end()
        elif "id" not in message and (message["method"] == "notifications/progress" or related is not None):
            self.outbox.put(message)  # the child filtered its logs by the request's own level already

    def abandon(self) -> None:
        """The client went away: cancel the request at the child (closing the stream is how it cancels)."""
        if not self.finished:
            self._end()

    def _end(self) -> None:
        self.finished = True
        self.outbox = None
        if self.router is not None:
            self.router.detach(self)
        if self.on_finish is not None:
            self.on_finish()


async def call_on_modern_child(
    router: Any, identity: str, envelope: era.Envelope, request: Message, outbox: Outbox,
    prepare: Callable[[Message], Message] = lambda m: m,
) -> Passthrough:  # fmt: skip
    """Serve one modern request on a child that speaks the modern era, putting its messages on `outbox`."""
    call = Passthrough(identity, envelope, request, outbox)
    router.attach(call)
    await router.from_client(call, prepare(request), "request")
    return call
