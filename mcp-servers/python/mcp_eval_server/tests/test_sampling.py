"""Stateless sampling rounds: questions are recorded once, answers replay, state survives a round trip."""

from __future__ import annotations

import pytest

from mcp_eval_server.errors import JudgePending
from mcp_eval_server.judges.base import gather
from mcp_eval_server.judges.sampling import SamplingRounds

pytestmark = pytest.mark.anyio
MSG = [{"role": "user", "content": "rate this"}]


async def test_unanswered_question_is_recorded_then_answered_from_state() -> None:
    rounds = SamplingRounds()
    with pytest.raises(JudgePending):
        await rounds.create("sys", MSG, 100)
    (key,) = rounds.pending
    assert key == SamplingRounds.key("sys", MSG, 100)
    rounds.answers[key] = ["{}", "host-model"]
    replay = SamplingRounds.from_state(rounds.state())
    assert await replay.create("sys", MSG, 100) == ("{}", "host-model")
    assert replay.pending == {}


def test_unreadable_state_starts_a_fresh_round() -> None:
    assert SamplingRounds.from_state("not json").answers == {}
    assert SamplingRounds.from_state(None).answers == {}


async def test_gather_lets_every_call_ask_before_raising_pending() -> None:
    rounds = SamplingRounds()

    async def ask(i: int) -> tuple[str, str]:
        return await rounds.create("sys", [{"role": "user", "content": str(i)}], 10)

    with pytest.raises(JudgePending):
        await gather([lambda i=i: ask(i) for i in range(5)], limit=2)
    assert len(rounds.pending) == 5
