"""`LLMJudge`: evaluation questions -> prompts -> a backend -> validated JSON verdicts.

The model's reply is parsed leniently (code fences and surrounding prose are tolerated) and validated strictly
(every criterion present, integer scores inside the scale, one verdict per claim). An invalid reply gets exactly
one repair request that quotes the problem; a second failure raises `JudgeFailedError` rather than guessing.
Only a reply that validated is remembered by a caching backend, so an invalid reply is never cached.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from mcp_eval_server.errors import JudgeFailedError
from mcp_eval_server.judges import prompts
from mcp_eval_server.judges.base import Backend, Criterion, UsageMeter

T = TypeVar("T")
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


class VerdictError(ValueError):
    """A reply that is not the JSON object asked for; the message is sent back to the model in the repair."""


def extract_json(text: str) -> dict[str, Any]:
    """The first JSON object in `text`, tolerating code fences and prose around it.

    Raises:
        VerdictError: no JSON object can be decoded.
    """
    cleaned = _FENCE.sub("", text.strip())
    start = cleaned.find("{")
    if start < 0:
        raise VerdictError("the reply contains no JSON object")
    try:
        obj, _ = json.JSONDecoder().raw_decode(cleaned[start:])
    except json.JSONDecodeError as exc:
        raise VerdictError(f"the JSON object is malformed ({exc.msg} at char {exc.pos})") from exc
    if not isinstance(obj, dict):
        raise VerdictError("the reply is JSON but not an object")
    return obj


def _int_in(value: Any, lo: int, hi: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or not lo <= value <= hi:
        raise VerdictError(f"{what} must be an integer from {lo} to {hi}, got {value!r}")
    return int(value)


class LLMJudge:
    """A judge backed by a language model; one instance per tool call so usage is counted per call."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.usage = UsageMeter()

    def describe(self) -> dict[str, Any]:
        b = self.backend
        return {"name": b.name, "kind": b.kind, "model": b.model, "method": f"llm_judge:{b.name}"}

    async def _ask(self, user: str, validate: Callable[[dict[str, Any]], T]) -> T:
        """Ask, validate, repair once.

        Raises:
            JudgeFailedError: the reply is still invalid after one repair request.
        """
        messages = [{"role": "user", "content": user}]
        for attempt in range(2):
            completion = await self.backend.complete(prompts.SYSTEM, messages)
            self.usage.add(completion)
            try:
                verdict = validate(extract_json(completion.text))
            except VerdictError as exc:
                self.backend.forget(completion)  # a cached bad reply must not come back next time
                if attempt == 1:
                    raise JudgeFailedError(
                        f"judge {self.backend.name!r} returned an invalid verdict twice ({exc}); "
                        "try a stronger model or check the prompt with the judge_* MCP prompts"
                    ) from exc
                messages = [
                    *messages,
                    {"role": "assistant", "content": completion.text},
                    {"role": "user", "content": prompts.REPAIR.format(error=exc)},
                ]
                continue
            self.backend.remember(completion)
            return verdict
        raise AssertionError("unreachable")

    async def score(
        self, response: str, criteria: list[Criterion], prompt: str | None, context: str | None, reference: str | None
    ) -> dict[str, dict[str, Any]]:
        user = prompts.render_score(response, [c.as_prompt() for c in criteria], prompt, context, reference)

        def validate(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
            scores = obj.get("scores")
            if not isinstance(scores, dict):
                raise VerdictError('"scores" must be an object keyed by criterion name')
            out = {}
            for c in criteria:
                entry = scores.get(c.name)
                if not isinstance(entry, dict):
                    raise VerdictError(f'criterion {c.name!r} is missing from "scores"')
                value = _int_in(entry.get("score"), c.scale_min, c.scale_max, f"score of {c.name!r}")
                out[c.name] = {"score": value, "reasoning": str(entry.get("reasoning", ""))}
            return out

        return await self._ask(user, validate)

    async def pairwise(self, prompt: str, response_a: str, response_b: str, criteria: list[str]) -> dict[str, Any]:
        user = prompts.render_pairwise(prompt, response_a, response_b, criteria)

        def validate(obj: dict[str, Any]) -> dict[str, Any]:
            winner = str(obj.get("winner", "")).strip().upper()
            if winner not in {"A", "B", "TIE"}:
                raise VerdictError(f'"winner" must be "A", "B" or "tie", got {obj.get("winner")!r}')
            return {"winner": "tie" if winner == "TIE" else winner, "reasoning": str(obj.get("reasoning", ""))}

        return await self._ask(user, validate)

    async def claims(self, text: str) -> list[str]:
        def validate(obj: dict[str, Any]) -> list[str]:
            claims = obj.get("claims")
            if not isinstance(claims, list) or not all(isinstance(c, str) for c in claims):
                raise VerdictError('"claims" must be a list of strings')
            return [c.strip() for c in claims if c.strip()]

        return await self._ask(prompts.render_claims(text), validate)

    async def verify(self, claims: list[str], contexts: list[str]) -> list[dict[str, Any]]:
        if not claims:
            return []

        def validate(obj: dict[str, Any]) -> list[dict[str, Any]]:
            verdicts = obj.get("verdicts")
            if not isinstance(verdicts, list):
                raise VerdictError('"verdicts" must be a list')
            by_index: dict[int, dict[str, Any]] = {}
            for v in verdicts:
                if not isinstance(v, dict):
                    raise VerdictError("each verdict must be an object")
                i = _int_in(v.get("index"), 1, len(claims), "verdict index")
                label = str(v.get("verdict", "")).lower()
                if label not in {"supported", "contradicted", "unsupported"}:
                    raise VerdictError(f"verdict for claim {i} must be supported/contradicted/unsupported")
                by_index[i] = {"verdict": label, "reasoning": str(v.get("reasoning", ""))}
            missing = [i for i in range(1, len(claims) + 1) if i not in by_index]
            if missing:
                raise VerdictError(f"verdicts are missing for claims {missing}")
            return [by_index[i] for i in range(1, len(claims) + 1)]

        return await self._ask(prompts.render_verify(claims, contexts), validate)

    async def relevance(self, question: str, answer: str) -> dict[str, Any]:
        def validate(obj: dict[str, Any]) -> dict[str, Any]:
            return {"score": _int_in(obj.get("score"), 1, 5, "score"), "reasoning": str(obj.get("reasoning", ""))}

        return await self._ask(prompts.render_relevance(question, answer), validate)

    async def context_useful(self, question: str, reference: str, contexts: list[str]) -> list[bool]:
        def validate(obj: dict[str, Any]) -> list[bool]:
            verdicts = obj.get("verdicts")
            if not isinstance(verdicts, list):
                raise VerdictError('"verdicts" must be a list')
            by_index = {}
            for v in verdicts:
                if not isinstance(v, dict) or not isinstance(v.get("useful"), bool):
                    raise VerdictError('each verdict needs "index" and a boolean "useful"')
                by_index[_int_in(v.get("index"), 1, len(contexts), "context index")] = v["useful"]
            if len(by_index) != len(contexts):
                raise VerdictError(f"give one verdict per context (1..{len(contexts)})")
            return [by_index[i] for i in range(1, len(contexts) + 1)]

        return await self._ask(prompts.render_context_useful(question, reference, contexts), validate)
