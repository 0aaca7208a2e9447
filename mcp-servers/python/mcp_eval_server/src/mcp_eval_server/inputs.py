"""Typed tool arguments that are objects, so each tool's `inputSchema` documents them and pydantic validates them.

Plain pydantic models; no `mcp` import. Every model forbids unknown keys (`extra="forbid"`), so a misspelt option
is an error instead of a silently ignored default. Domain functions keep taking dicts and lists so they stay usable
from notebooks; the server dumps these models before calling them, and `compute_metrics` validates its options dict
through `MetricOptions` itself.
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


class MetricOptions(BaseModel):
    """Options of `compute_metrics` (and of `run_eval`'s metrics). Defaults are each library's own defaults."""

    model_config = ConfigDict(extra="forbid")
    tokenize: str | None = Field(
        None, description="sacrebleu BLEU tokenizer: 13a (default), intl, zh, char, none, ja-mecab, ko-mecab, ..."
    )
    lowercase: bool | None = Field(
        None, description="BLEU/chrF lowercasing (default false); also sets TER case_sensitive = not lowercase"
    )
    chrf_word_order: int = Field(0, ge=0, le=6, description="chrF word n-gram order; 2 gives chrF++")
    use_stemmer: bool = Field(False, description="ROUGE: Porter-stem ASCII tokens longer than 3 characters")
    per_item_limit: int = Field(100, ge=0, description="per-item values returned for the first N items (0: none)")
    asian_support: bool = Field(
        False, description="TER: split CJK characters (sacrebleu applies it with normalized=true only)"
    )
    normalized: bool = Field(False, description="TER: tercom normalisation (punctuation, numbers; CJK with asian)")
    case_sensitive: bool | None = Field(None, description="TER: case-sensitive matching (sacrebleu default false)")
    no_punct: bool = Field(False, description="TER: remove punctuation before matching")


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
    options: MetricOptions = Field(
        default_factory=lambda: MetricOptions.model_validate({}), description="compute_metrics options"
    )


class ToolCall(BaseModel):
    """One agent tool call; expected calls list only the arguments that matter. `arguments` is free-form."""

    model_config = ConfigDict(extra="forbid")
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
