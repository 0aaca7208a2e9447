"""The `client` judge backend: the connected host's own model, reached through MCP sampling.

The server injects `create`, a callable that sends `sampling/createMessage` on the current session; this module
stays free of `mcp` imports. Sampling reports no token counts, so usage carries the model name only, and replies
are not cached: the host may route to a different model on every call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

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
