"""The `heuristic` judge: deterministic lexical statistics, used only when asked for by name.

It exists for smoke tests, CI without keys and sanity baselines, not as a stand-in for a model: every result
carries `method: heuristic` and the reasoning says which statistic produced it. It cannot detect contradictions,
so claim verdicts are only "supported" or "unsupported".
"""

from __future__ import annotations

import re
from typing import Any

from mcp_eval_server.judges.base import Criterion, UsageMeter

_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?。！？])\s+|\n+")
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "them",
        "his",
        "her",
        "our",
        "their",
        "my",
        "your",
        "not",
        "no",
        "do",
        "does",
        "did",
        "so",
        "than",
        "then",
        "there",
        "here",
        "what",
        "which",
        "who",
        "whom",
        "how",
        "why",
        "when",
        "where",
    ]
)
SUPPORT_THRESHOLD = 0.7
USEFUL_THRESHOLD = 0.3


def content_tokens(text: str) -> list[str]:
    return [t for t in _WORD.findall(text.lower()) if t not in _STOP]


def coverage(needle: str, haystack: str) -> float:
    """Share of `needle`'s distinct content tokens that occur in `haystack` (0 when needle has none)."""
    wanted = set(content_tokens(needle))
    return len(wanted & set(content_tokens(haystack))) / len(wanted) if wanted else 0.0


def overlap_f1(a: str, b: str) -> float:
    ta, tb = set(content_tokens(a)), set(content_tokens(b))
    common = len(ta & tb)
    if not common:
        return 0.0
    p, r = common / len(ta), common / len(tb)
    return 2 * p * r / (p + r)


class HeuristicJudge:
    """Lexical-overlap answers to the judge questions; makes no calls, so usage stays empty."""

    def __init__(self) -> None:
        self.usage = UsageMeter()

    def describe(self) -> dict[str, Any]:
        return {"name": "heuristic", "kind": "heuristic", "model": None, "method": "heuristic"}

    async def score(
        self, response: str, criteria: list[Criterion], prompt: str | None, context: str | None, reference: str | None
    ) -> dict[str, dict[str, Any]]:
        anchor, label = next(
            ((t, n) for t, n in ((reference, "reference"), (context, "context"), (prompt, "prompt")) if t), (None, "")
        )
        f1 = overlap_f1(response, anchor) if anchor else 0.0
        why = (
            f"heuristic: content-token F1 with the {label} = {f1:.3f}"
            if anchor
            else "heuristic: nothing to compare with"
        )
        return {
            c.name: {"score": c.scale_min + round(f1 * (c.scale_max - c.scale_min)), "reasoning": why} for c in criteria
        }

    async def pairwise(self, prompt: str, response_a: str, response_b: str, criteria: list[str]) -> dict[str, Any]:
        fa, fb = overlap_f1(response_a, prompt), overlap_f1(response_b, prompt)
        winner = "tie" if abs(fa - fb) < 0.05 else ("A" if fa > fb else "B")
        return {"winner": winner, "reasoning": f"heuristic: prompt-overlap F1 A={fa:.3f} B={fb:.3f}"}

    async def claims(self, text: str) -> list[str]:
        return [s.strip() for s in _SENTENCE.split(text) if content_tokens(s)]

    async def verify(self, claims: list[str], contexts: list[str]) -> list[dict[str, Any]]:
        joined = "\n".join(contexts)
        out = []
        for claim in claims:
            cov = coverage(claim, joined)
            verdict = "supported" if cov >= SUPPORT_THRESHOLD else "unsupported"
            out.append(
                {
                    "verdict": verdict,
                    "reasoning": f"heuristic: {cov:.2f} of the claim's content words occur in the context",
                }
            )
        return out

    async def relevance(self, question: str, answer: str) -> dict[str, Any]:
        cov = coverage(question, answer)
        return {"score": 1 + round(4 * cov), "reasoning": f"heuristic: {cov:.2f} of the question's content words recur"}

    async def context_useful(self, question: str, reference: str, contexts: list[str]) -> list[bool]:
        return [coverage(reference, c) >= USEFUL_THRESHOLD for c in contexts]
