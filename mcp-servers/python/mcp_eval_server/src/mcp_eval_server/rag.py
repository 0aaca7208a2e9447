"""RAG evaluation: faithfulness by claim decomposition, answer relevance, context precision and recall.

Definitions follow the RAGAS family so numbers are comparable in spirit: faithfulness = supported claims / claims
in the answer; context precision = mean precision@k over the ranks of useful contexts; context recall = reference
claims supported by the contexts / reference claims. Every result names its method (`llm_judge:<name>` or
`heuristic`), because a lexical proxy and a model verdict are not the same measurement.
"""

from __future__ import annotations

from typing import Any

from mcp_eval_server.errors import InvalidInputError
from mcp_eval_server.judges.base import Judge, gather


def average_precision(useful: list[bool]) -> float | None:
    """Mean of precision@k over the positions k of useful contexts; None when no context is useful."""
    hits, total = 0, 0.0
    for k, flag in enumerate(useful, 1):
        if flag:
            hits += 1
            total += hits / k
    return total / hits if hits else None


async def _faithfulness(judge: Judge, answer: str, contexts: list[str]) -> dict[str, Any]:
    claims = await judge.claims(answer)
    verdicts = await judge.verify(claims, contexts)
    supported = sum(1 for v in verdicts if v["verdict"] == "supported")
    return {
        "score": supported / len(claims) if claims else None,
        "claims": [{"claim": c, **v} for c, v in zip(claims, verdicts, strict=True)],
        "note": None if claims else "the answer contains no checkable claims",
    }


async def _context_recall(judge: Judge, reference: str, contexts: list[str]) -> dict[str, Any]:
    claims = await judge.claims(reference)
    verdicts = await judge.verify(claims, contexts)
    supported = sum(1 for v in verdicts if v["verdict"] == "supported")
    return {
        "score": supported / len(claims) if claims else None,
        "reference_claims": [{"claim": c, **v} for c, v in zip(claims, verdicts, strict=True)],
    }


async def evaluate_rag(
    judge: Judge, question: str, answer: str, contexts: list[str], reference: str | None = None
) -> dict[str, Any]:
    """Faithfulness and answer relevance always; context precision/recall only with a reference answer.

    Raises:
        InvalidInputError: empty answer or no contexts.
    """
    if not answer.strip():
        raise InvalidInputError("answer is empty: pass the generated answer to evaluate")
    if not contexts or not any(c.strip() for c in contexts):
        raise InvalidInputError("contexts is empty: pass the retrieved passages, in retrieval order")
    method = judge.describe()["method"]
    calls: list = [lambda: judge.relevance(question, answer), lambda: _faithfulness(judge, answer, contexts)]
    if reference:
        calls += [
            lambda: judge.context_useful(question, reference, contexts),
            lambda: _context_recall(judge, reference, contexts),
        ]
    relevance, faithfulness, *with_reference = await gather(calls)
    result: dict[str, Any] = {
        "faithfulness": {**faithfulness, "method": method},
        "answer_relevance": {
            "score": (relevance["score"] - 1) / 4,
            "raw_score": relevance["score"],
            "scale": "1-5 mapped to 0-1",
            "reasoning": relevance["reasoning"],
            "method": method,
        },
    }
    if reference:
        useful, recall = with_reference
        result["context_precision"] = {
            "score": average_precision(useful) or 0.0,
            "useful": useful,
            "definition": "mean precision@k over ranks of contexts judged useful for the reference",
            "method": method,
        }
        result["context_recall"] = {**recall, "method": method}
    else:
        result["context_precision"] = result["context_recall"] = {
            "score": None,
            "note": "needs a reference answer: pass reference to compute it",
        }
    return result
