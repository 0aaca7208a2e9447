"""Shared judge types: a backend completes chat messages; a judge turns evaluation questions into verdicts.

Two layers keep the providers dumb and the verdict logic in one place: a `Backend` (OpenAI-compatible HTTP,
Anthropic HTTP, MCP sampling through an injected callable) only turns messages into text plus usage; `LLMJudge`
(`llm.py`) builds prompts, parses and validates JSON and repairs once. `HeuristicJudge` answers the same questions
from text statistics and says so. Nothing here imports `mcp`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import anyio

from mcp_eval_server.errors import EvalError, InvalidInputError, JudgePending

T = TypeVar("T")

# The pooled HTTP client and retry policy decide these; they are module constants so tests can see them.
MAX_RETRY_AFTER_S = 30.0


@dataclass
class Completion:
    """One model reply with what it cost; token counts are None when the backend does not report them."""

    text: str
    model: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    cached: bool = False
    cache_key: str | None = None  # set by caching backends; the reply is stored only once `remember` is called


class Backend(Protocol):
    """Anything that answers a system prompt plus chat messages with text.

    A caching backend never stores a reply on its own: the judge calls `remember` once the reply validated as a
    verdict and `forget` when a cached reply did not, so a bad reply is never served again.
    """

    name: str
    kind: str
    model: str

    async def complete(self, system: str, messages: list[dict[str, str]]) -> Completion: ...

    def remember(self, completion: Completion) -> None: ...

    def forget(self, completion: Completion) -> None: ...


@dataclass
class UsageMeter:
    """Token usage and cost of every judge call made for one tool call, reported back to the user."""

    calls: list[dict[str, Any]] = field(default_factory=list)

    def add(self, c: Completion) -> None:
        self.calls.append(
            {
                "model": c.model,
                "input_tokens": c.input_tokens,
                "output_tokens": c.output_tokens,
                "cost_usd": c.cost_usd,
                "cached": c.cached,
            }
        )

    def summary(self, max_calls: int = 20) -> dict[str, Any]:
        """Totals; a total is null (with `unknown_reason`) when any call did not report it, never a partial sum."""
        out: dict[str, Any] = {"calls": len(self.calls), "cache_hits": sum(1 for c in self.calls if c["cached"])}
        reasons = []
        for key in ("input_tokens", "output_tokens", "cost_usd"):
            values = [c[key] for c in self.calls]
            out[key] = None if any(v is None for v in values) else sum(values)
        if out["input_tokens"] is None or out["output_tokens"] is None:
            reasons.append("the judge backend reported no token counts for some calls (MCP sampling never does)")
        if out["cost_usd"] is None:
            reasons.append("cost needs price_in_per_mtok and price_out_per_mtok in the judge's config and token counts")
        else:
            out["cost_usd"] = round(out["cost_usd"], 6)
        out["unknown_reason"] = "; ".join(reasons) or None
        out["per_call"] = self.calls[:max_calls]
        return out


@dataclass(frozen=True)
class Criterion:
    """One thing to score, on an integer scale, with a weight in the overall score."""

    name: str
    description: str = ""
    weight: float = 1.0
    scale_min: int = 1
    scale_max: int = 5

    def as_prompt(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "scale_min": self.scale_min,
            "scale_max": self.scale_max,
        }


def parse_criteria(raw: list[Any]) -> list[Criterion]:
    """Accept names or objects `{name, description?, weight?, scale?: [min, max]}`.

    Raises:
        InvalidInputError: empty list, duplicate names, bad weight or scale.
    """
    if not raw:
        raise InvalidInputError('criteria is empty: pass names like ["accuracy"] or objects, or a rubric name')
    out: list[Criterion] = []
    for item in raw:
        if isinstance(item, str):
            out.append(Criterion(name=item))
            continue
        if not isinstance(item, dict) or not item.get("name"):
            raise InvalidInputError(f"criterion {item!r} needs a 'name'")
        lo, hi = item.get("scale", [item.get("scale_min", 1), item.get("scale_max", 5)])
        weight = float(item.get("weight", 1.0))
        if not (isinstance(lo, int) and isinstance(hi, int) and lo < hi) or weight <= 0:
            raise InvalidInputError(f"criterion {item['name']!r}: scale must be two integers [min, max] and weight > 0")
        out.append(Criterion(item["name"], item.get("description", ""), weight, lo, hi))
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"criteria names must be unique, got {names}")
    return out


def weighted_overall(criteria: list[Criterion], scores: dict[str, dict[str, Any]]) -> float:
    """Weighted mean of scores normalised to 0-1 by each criterion's scale."""
    total = sum(c.weight for c in criteria)
    acc = sum(c.weight * (scores[c.name]["score"] - c.scale_min) / (c.scale_max - c.scale_min) for c in criteria)
    return acc / total


class Judge(Protocol):
    """The evaluation questions every judge answers; `describe()` names the judge and its method in results."""

    usage: UsageMeter

    def describe(self) -> dict[str, Any]: ...

    async def score(
        self, response: str, criteria: list[Criterion], prompt: str | None, context: str | None, reference: str | None
    ) -> dict[str, dict[str, Any]]: ...

    async def pairwise(self, prompt: str, response_a: str, response_b: str, criteria: list[str]) -> dict[str, Any]: ...

    async def claims(self, text: str) -> list[str]: ...

    async def verify(self, claims: list[str], contexts: list[str]) -> list[dict[str, Any]]: ...

    async def relevance(self, question: str, answer: str) -> dict[str, Any]: ...

    async def context_useful(self, question: str, reference: str, contexts: list[str]) -> list[bool]: ...


async def gather(calls: Sequence[Callable[[], Awaitable[T]]], limit: int = 8) -> list[T]:
    """Run independent judge calls concurrently, at most `limit` at a time, results in call order.

    A `JudgePending` from any call is raised once, after every call has had its turn, so one stateless sampling
    round collects every question that can be asked now (see `sampling.py`).

    Raises:
        EvalError: the first domain error any call raised (after all calls finished).
        JudgePending: some call waits for an answer from the client's model.
    """
    results: list[Any] = [None] * len(calls)
    errors: list[EvalError] = []
    pending = False
    limiter = anyio.Semaphore(limit)

    async def run(i: int, call: Callable[[], Awaitable[T]]) -> None:
        nonlocal pending
        async with limiter:
            try:
                results[i] = await call()
            except JudgePending:
                pending = True
            except EvalError as exc:
                errors.append(exc)

    async with anyio.create_task_group() as tg:
        for i, call in enumerate(calls):
            tg.start_soon(run, i, call)
    if errors:
        raise errors[0]
    if pending:
        raise JudgePending()
    return results
