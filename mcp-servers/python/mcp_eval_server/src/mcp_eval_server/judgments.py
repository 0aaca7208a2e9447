"""Judge-based evaluations of free text: rubric scoring, pairwise comparison with order swap, ranking.

Bias control for pairwise judgments (position bias is the best documented judge bias): by default both orders are
evaluated; a win counts only when both orders agree, otherwise the pair is a tie. Results report the position
consistency so users can see how often the judge flipped. Rubrics are JSON files shipped in `rubrics/`.
"""

from __future__ import annotations

import functools
import itertools
import json
from importlib import resources
from typing import Any

from mcp_eval_server.errors import InvalidInputError
from mcp_eval_server.judges.base import Criterion, Judge, gather, parse_criteria, weighted_overall

DEFAULT_PAIRWISE_CRITERIA = ["helpfulness", "accuracy", "relevance to the prompt"]
MAX_RANK_RESPONSES = 10


def rubric_names() -> list[str]:
    folder = resources.files("mcp_eval_server") / "rubrics"
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def rubric_text(name: str) -> str:
    """The shipped rubric file `name` as JSON text.

    Raises:
        InvalidInputError: no rubric of that name.
    """
    if name not in rubric_names():
        raise InvalidInputError(f"unknown rubric {name!r}; shipped rubrics: {rubric_names()}")
    return (resources.files("mcp_eval_server") / "rubrics" / f"{name}.json").read_text(encoding="utf-8")


def load_rubric(name: str) -> dict[str, Any]:
    """The shipped rubric `name` as a dict (raises like `rubric_text`)."""
    return json.loads(rubric_text(name))


def resolve_criteria(criteria: list[Any] | None, rubric: str | None) -> list[Criterion]:
    """Criteria from the call or from a rubric, not both.

    Raises:
        InvalidInputError: neither or both given, or invalid criteria.
    """
    if bool(criteria) == bool(rubric):
        raise InvalidInputError("pass exactly one of criteria (list) or rubric (name, see rubric:// resources)")
    return parse_criteria(load_rubric(rubric)["criteria"] if rubric else list(criteria or []))


async def judge_response(
    judge: Judge,
    response: str,
    criteria: list[Criterion],
    prompt: str | None = None,
    context: str | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    """Per-criterion scores with reasoning and a weighted overall score normalised to 0-1."""
    scores = await judge.score(response, criteria, prompt, context, reference)
    per = [
        {
            "criterion": c.name,
            "score": scores[c.name]["score"],
            "scale": [c.scale_min, c.scale_max],
            "weight": c.weight,
            "reasoning": scores[c.name]["reasoning"],
        }
        for c in criteria
    ]
    return {"scores": per, "overall": weighted_overall(criteria, scores), "overall_scale": "0-1 (weighted, normalised)"}


_SWAP = {"A": "B", "B": "A", "tie": "tie"}


async def compare_responses(
    judge: Judge, prompt: str, response_a: str, response_b: str, criteria: list[str] | None = None, swap: bool = True
) -> dict[str, Any]:
    """Pairwise verdict; with `swap` the second call sees B first and its verdict is mapped back to A/B labels."""
    crit = criteria or DEFAULT_PAIRWISE_CRITERIA
    if not swap:
        first = await judge.pairwise(prompt, response_a, response_b, crit)
        orders = [{"order": "A,B", "winner": first["winner"], "reasoning": first["reasoning"]}]
        return {"winner": first["winner"], "consistent": None, "position_consistency": None, "orders": orders}
    first, second = await gather(
        [
            lambda: judge.pairwise(prompt, response_a, response_b, crit),
            lambda: judge.pairwise(prompt, response_b, response_a, crit),
        ]
    )
    orders = [{"order": "A,B", "winner": first["winner"], "reasoning": first["reasoning"]}]
    mapped = _SWAP[second["winner"]]
    orders.append({"order": "B,A", "winner": mapped, "raw_winner": second["winner"], "reasoning": second["reasoning"]})
    consistent = mapped == first["winner"]
    return {
        "winner": first["winner"] if consistent else "tie",
        "consistent": consistent,
        "position_consistency": 1.0 if consistent else 0.0,
        "orders": orders,
    }


async def rank_responses(
    judge: Judge, prompt: str, responses: list[str], criteria: list[Any] | None = None, method: str = "pairwise"
) -> dict[str, Any]:
    """Ranking by round-robin pairwise wins (both orders, consistent wins only) or by rubric scores.

    Raises:
        InvalidInputError: fewer than 2 or more than MAX_RANK_RESPONSES responses, or an unknown method.
    """
    if not 2 <= len(responses) <= MAX_RANK_RESPONSES:
        raise InvalidInputError(f"rank_responses needs 2 to {MAX_RANK_RESPONSES} responses, got {len(responses)}")
    if method == "scored":
        crit = parse_criteria(criteria or DEFAULT_PAIRWISE_CRITERIA)
        results = await gather([functools.partial(judge_response, judge, r, crit, prompt=prompt) for r in responses])
        points = [r["overall"] for r in results]
        detail: list[dict[str, Any]] = [{"index": i, "overall": p} for i, p in enumerate(points)]
        consistency = None
    elif method == "pairwise":
        names = [c if isinstance(c, str) else c.get("name", "") for c in (criteria or DEFAULT_PAIRWISE_CRITERIA)]
        points = [0.0] * len(responses)
        detail, flips = [], 0
        pairs = list(itertools.combinations(range(len(responses)), 2))
        verdicts = await gather(
            [functools.partial(compare_responses, judge, prompt, responses[i], responses[j], names) for i, j in pairs]
        )
        for (i, j), verdict in zip(pairs, verdicts, strict=True):
            win = verdict["winner"]
            points[i] += 1.0 if win == "A" else 0.5 if win == "tie" else 0.0
            points[j] += 1.0 if win == "B" else 0.5 if win == "tie" else 0.0
            flips += 0 if verdict["consistent"] else 1
            detail.append({"pair": [i, j], "winner": {"A": i, "B": j}.get(win), "consistent": verdict["consistent"]})
        consistency = 1 - flips / len(detail)
    else:
        raise InvalidInputError(f"method must be 'pairwise' or 'scored', got {method!r}")
    order = sorted(range(len(responses)), key=lambda k: (-points[k], k))
    return {
        "ranking": [{"rank": r + 1, "index": k, "points": points[k]} for r, k in enumerate(order)],
        "method": method,
        "position_consistency": consistency,
        "details": detail,
    }
