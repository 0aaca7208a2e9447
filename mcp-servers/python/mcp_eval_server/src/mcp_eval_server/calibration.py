"""How well does a judge agree with human labels? Agreement statistics on one declared integer scale.

The criterion declares the scale (default quality 1-5). Every human label and every given judge score must be an
integer on that scale: a 4.5 or a 7 on a 1-5 scale is refused with the items that carry it, before any judge call,
because κ treats each value as a category and a category outside the scale would silently reshape the statistic.
Weighted κ uses every category of the declared scale (`labels=`), including ones nobody used, so distances are
steps of the scale. κ, Spearman and Pearson come from sklearn/scipy (`agreement.py`); an undefined statistic (a
constant rater) is `null` with an `undefined_statistic` warning that says why. Never imports `mcp`.
"""

from __future__ import annotations

import functools
from typing import Any

from mcp_eval_server import agreement
from mcp_eval_server.errors import InvalidInputError
from mcp_eval_server.judges.base import Criterion, Judge, gather, parse_criteria
from mcp_eval_server.result_warnings import ResultWarning, warning

DEFAULT_CRITERION = {"name": "quality", "description": "overall quality", "scale": [1, 5]}


def declared_criterion(criterion: dict[str, Any] | None) -> Criterion:
    """The criterion whose scale the labels must be on (default quality 1-5).

    Raises:
        InvalidInputError: an invalid criterion.
    """
    return parse_criteria([criterion or DEFAULT_CRITERION])[0]


def _off_scale(values: list[Any], crit: Criterion) -> list[int]:
    return [
        i
        for i, v in enumerate(values)
        if v is not None
        and (
            isinstance(v, bool)
            or not isinstance(v, int | float)
            or v != int(v)
            or not crit.scale_min <= v <= crit.scale_max
        )
    ]


def validate_scale(items: list[dict[str, Any]], crit: Criterion) -> None:
    """Raises InvalidInputError naming the items whose human_score or judge_score is not on the declared scale."""
    scale = f"the declared scale {crit.scale_min}-{crit.scale_max} (integers)"
    for field in ("human_score", "judge_score"):
        values = [it.get(field) for it in items]
        if field == "human_score" and any(v is None for v in values):
            raise InvalidInputError("every item needs a numeric 'human_score'")
        bad = _off_scale(values, crit)
        if bad:
            shown = ", ".join(f"items[{i}].{field}={values[i]!r}" for i in bad[:5])
            raise InvalidInputError(
                f"{shown}{' ...' if len(bad) > 5 else ''} not on {scale}; fix the labels or declare the scale "
                'in criterion, e.g. {"name": "quality", "scale": [0, 10]}'
            )


def _statistics(human: list[float], scores: list[float], crit: Criterion, weights: str) -> dict[str, Any]:
    labels = list(range(crit.scale_min, crit.scale_max + 1))
    return {
        "kappa": agreement.cohen_kappa(human, scores, "none", labels),
        "weighted_kappa": agreement.cohen_kappa(human, scores, weights, labels),  # type: ignore[arg-type]
        "spearman": agreement.spearman(human, scores),
        "pearson": agreement.pearson(human, scores),
    }


def _undefined(stats: dict[str, Any], human: list[float], scores: list[float]) -> list[ResultWarning]:
    return [
        warning("undefined_statistic", agreement.undefined_reason(name, human, scores, "human score", "judge score"))
        for name, value in stats.items()
        if value is None
    ]


async def calibrate_judge(
    judge: Judge | None, items: list[dict[str, Any]], criterion: dict[str, Any] | None, weights: str, concurrency: int
) -> dict[str, Any]:
    """Agreement of judge scores with human labels on the criterion's integer scale.

    Items carry `human_score` and either `response` (judged now) or `judge_score` (scored earlier).

    Raises:
        InvalidInputError: fewer than 2 items, missing fields, a score off the declared scale, or `judge` needed
            but None.
    """
    if len(items) < 2:
        raise InvalidInputError("calibrate_judge needs at least 2 labelled items")
    crit = declared_criterion(criterion)
    validate_scale(items, crit)
    judge_scores: list[float | None] = [it.get("judge_score") for it in items]
    pending = [i for i, s in enumerate(judge_scores) if s is None]
    for i in pending:
        if not isinstance(items[i].get("response"), str):
            raise InvalidInputError(f"items[{i}] needs 'response' (to judge) or 'judge_score'")
    if pending and judge is None:
        raise InvalidInputError("some items lack judge_score and no judge is available to score them")

    async def one(it: dict[str, Any]) -> float:
        assert judge is not None
        verdict = await judge.score(it["response"], [crit], it.get("prompt"), it.get("context"), it.get("reference"))
        return float(verdict[crit.name]["score"])

    scored = await gather([functools.partial(one, items[i]) for i in pending], limit=concurrency)
    for i, score in zip(pending, scored, strict=True):
        judge_scores[i] = score
    human = [float(it["human_score"]) for it in items]
    scores = [float(s) for s in judge_scores if s is not None]
    stats = _statistics(human, scores, crit, weights)
    pairs = list(zip(human, scores, strict=True))
    return {
        "n": len(items),
        "criterion": crit.as_prompt(),
        "exact_agreement": sum(h == j for h, j in pairs) / len(items),
        "within_one": sum(abs(h - j) <= 1 for h, j in pairs) / len(items),
        **stats,
        "kappa_weights": weights,
        "kappa_labels": [crit.scale_min, crit.scale_max],
        "method": "sklearn cohen_kappa_score over every category of the declared scale; scipy spearmanr, pearsonr",
        "mean_bias": sum(j - h for h, j in pairs) / len(items),
        "judge_scores": [int(s) for s in scores[:200]],
        "judge": judge.describe() if judge else None,
        "usage": judge.usage.summary() if judge else None,
        "warnings": _undefined(stats, human, scores),
    }
