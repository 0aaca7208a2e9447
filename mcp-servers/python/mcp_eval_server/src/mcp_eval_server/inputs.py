"""Typed tool arguments that are objects, so each tool's `inputSchema` documents them and pydantic validates them.

Plain pydantic models; no `mcp` import. Domain functions keep taking dicts and lists so they stay usable from
notebooks; the server dumps these models before calling them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CriterionSpec(BaseModel):
    """One judge criterion: an integer scale and a weight in the overall score."""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    weight: float = Field(1.0, gt=0)
    scale: tuple[int, int] = (1, 5)


class EvalTask(BaseModel):
    """What `run_eval` computes per item: reference metrics and/or judge criteria (or a shipped rubric)."""

    model_config = ConfigDict(extra="forbid")
    metrics: list[str] = Field(default_factory=list, description="metric names as in compute_metrics")
    criteria: list[str | CriterionSpec] | None = Field(None, description="judge criteria; or give rubric")
    rubric: str | None = Field(None, description="shipped rubric name, see rubric:// resources")
    judge: str | None = Field(None, description="judge name from list_judges; default judge when omitted")
    concurrency: int | None = Field(
        None, ge=1, le=64, description="parallel judge calls (default MCP_EVAL_CONCURRENCY)"
    )
    options: dict[str, Any] = Field(default_factory=dict, description="compute_metrics options")


class ToolCall(BaseModel):
    """One agent tool call; expected calls list only the arguments that matter."""

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class CalibrationItem(BaseModel):
    """A human-labelled item: a `response` to judge now, or a `judge_score` obtained earlier."""

    model_config = ConfigDict(extra="forbid")
    human_score: float
    response: str | None = None
    judge_score: float | None = None
    prompt: str | None = None
    reference: str | None = None
    context: str | None = None
