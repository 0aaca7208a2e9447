"""Output models of the MCP tools: they give each tool an `outputSchema` and validate its `structuredContent`.

Each model names the fields a client can rely on and allows extra ones (`extra="allow"`), so domain functions can
add detail without a schema change. Every model has `warnings` (see `result_warnings.py`): always present, `[]`
when there is nothing to say. No `mcp` import: these are plain pydantic models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ToolWarning(BaseModel):
    """Something the caller must know to read the result right: a stable `code` and a sentence saying what to do."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(description="stable snake_case code, e.g. undefined_statistic, judge_failed")
    message: str = Field(description="what happened and what to do about it")


class _Open(BaseModel):
    """Result models name their main fields for the output schema and allow the rest."""

    model_config = ConfigDict(extra="allow")
    warnings: list[ToolWarning] = Field(
        default_factory=list, description="what may make this result misleading; [] when nothing"
    )


class MetricsResult(_Open):
    metrics: dict[str, dict[str, Any]]
    total_items: int
    returned_items: int
    truncated: bool


class JudgedResult(_Open):
    judge: dict[str, Any] = Field(description="name, kind, model and method of the judge that produced the verdicts")
    usage: dict[str, Any] | None = Field(
        default=None, description="calls, cache hits, tokens and cost; a total is null when unknown (unknown_reason)"
    )


class ScoreResult(JudgedResult):
    scores: list[dict[str, Any]]
    overall: float


class PairwiseResult(JudgedResult):
    winner: Literal["A", "B", "tie"]
    consistent: bool | None
    position_consistency: float | None


class RankResult(JudgedResult):
    ranking: list[dict[str, Any]]
    method: str


class RagResult(JudgedResult):
    faithfulness: dict[str, Any]
    answer_relevance: dict[str, Any]
    context_precision: dict[str, Any]
    context_recall: dict[str, Any]


class TrajectoryResult(_Open):
    success: bool
    precision: float
    recall: float
    f1: float
    order_agreement: float | None


class SafetyResult(_Open):
    flagged: bool
    counts: dict[str, int]
    findings: list[dict[str, Any]]
    method: str


class RunSummary(_Open):
    run_id: str
    name: str
    means: dict[str, float]
    corpus: dict[str, Any]
    n_items: int


class RunDetail(_Open):
    run_id: str
    name: str
    summary: dict[str, Any]
    items: list[dict[str, Any]]
    total_items: int
    returned_items: int
    truncated: bool


class RunList(_Open):
    runs: list[dict[str, Any]]


class RunComparison(_Open):
    run_a: str
    run_b: str
    paired_items: int
    metrics: dict[str, dict[str, Any]]


class CalibrationResult(_Open):
    n: int
    exact_agreement: float
    kappa: float | None
    weighted_kappa: float | None
    spearman: float | None


class JudgeList(_Open):
    judges: list[dict[str, Any]]
    default: str
