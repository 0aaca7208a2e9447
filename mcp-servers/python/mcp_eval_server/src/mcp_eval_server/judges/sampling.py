"""The `client` judge backend: the connected host's own model, reached through MCP sampling.

Two transports, one backend. On handshake-era connections the server injects `create`, which sends
`sampling/createMessage` on the session and waits. Stateless 2026-07-28 connections have no server-to-client
requests: there `SamplingRounds.create` answers from the replies gathered so far and, for a new question, records it
and raises `JudgePending`. The server then returns an "input required" result carrying every recorded question; the
client answers them and retries the tool call, which replays deterministically and gets one step further each round.
Judge calls that do not depend on each other run together (`gather`), so a round collects all of them.

This module stays free of `mcp` imports. Sampling reports no token counts, so usage carries the model name only,
and replies are not cached: the host may route to a different model on every call.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mcp_eval_server.errors import JudgePending
from mcp_eval_server.judges.base import Completion

CreateMessage = Callable[[str, list[dict[str, str]], int], Awaitable[tuple[str, str]]]
"""(system prompt, messages, max tokens) -> (reply text, model name reported by the host)."""


class SamplingBackend:
    """Backend that asks the MCP client's model; `create` raises `JudgeFailedError` on a sampling error."""

    name = "client"
    kind = "client"

    def __init__(self, create: CreateMessage, max_tokens: int = 1024) -> None:
        self._create = create
        self._max_tokens = max_tokens
        self.model = "host model (via MCP sampling)"

    async def complete(self, system: str, messages: list[dict[str, str]]) -> Completion:
        text, model = await self._create(system, messages, self._max_tokens)
        self.model = model or self.model
        return Completion(text=text, model=self.model)

    def remember(self, completion: Completion) -> None:
        """Nothing to store: sampling replies are never cached."""

    def forget(self, completion: Completion) -> None:
        """Nothing was stored."""


@dataclass
class SamplingRounds:
    """Replay state of one stateless tool call: answers so far (from request state + this round's responses)."""

    answers: dict[str, list[str]] = field(default_factory=dict)  # key -> [text, model]
    pending: dict[str, tuple[str, list[dict[str, str]], int]] = field(default_factory=dict)

    @staticmethod
    def key(system: str, messages: list[dict[str, str]], max_tokens: int) -> str:
        blob = json.dumps([system, messages, max_tokens], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    async def create(self, system: str, messages: list[dict[str, str]], max_tokens: int) -> tuple[str, str]:
        key = self.key(system, messages, max_tokens)
        if key in self.answers:
            text, model = self.answers[key]
            return text, model
        self.pending[key] = (system, messages, max_tokens)
        raise JudgePending()

    def state(self) -> str:
        """Opaque request state for the next round (the SDK seals it before it leaves the server)."""
        return json.dumps({"answers": self.answers}, ensure_ascii=False)

    @classmethod
    def from_state(cls, state: str | None) -> SamplingRounds:
        if not state:
            return cls()
        try:
            answers = json.loads(state).get("answers", {})
        except (ValueError, AttributeError):
            answers = {}
        return cls(answers={str(k): [str(v[0]), str(v[1])] for k, v in answers.items()})
