"""The MCP face of the evaluation domain: typed tools, rubric resources, judge prompts. Thin on purpose.

Each tool validates its arguments through its signature, calls one domain function and returns a pydantic model,
so the tool has an `outputSchema` and the result carries `structuredContent` with its `warnings`. How a function
becomes a tool (result mapping, strict arguments, client sampling) lives in `mcp_face.py`.

Never: print (stdout is the wire), touch the network at start-up, or return an API key.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
from mcp import types
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from pydantic import BaseModel

from mcp_eval_server import __version__, agents, calibration, judgments, rag, runs, safety
from mcp_eval_server import metrics as metric_lib
from mcp_eval_server.config import Settings, load_settings
from mcp_eval_server.errors import EvalError
from mcp_eval_server.inputs import CalibrationItem, CriterionSpec, EvalTask, MetricOptions, ToolCall
from mcp_eval_server.judges import prompts
from mcp_eval_server.judges.base import Judge
from mcp_eval_server.judges.registry import JudgeRegistry
from mcp_eval_server.mcp_face import Register, collect, sampling, tool_result
from mcp_eval_server.result_warnings import warning
from mcp_eval_server.results import (
    CalibrationResult,
    JudgeList,
    MetricsResult,
    PairwiseResult,
    RagResult,
    RankResult,
    RunComparison,
    RunDetail,
    RunList,
    RunSummary,
    SafetyResult,
    ScoreResult,
    TrajectoryResult,
)
from mcp_eval_server.store import Store

# Hints for clients: local tools only read; judged tools may call an outside model; run_eval also stores a run.
_LOCAL = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)
_JUDGED = types.ToolAnnotations(read_only_hint=True, open_world_hint=True)
_RUN = types.ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
DEFAULT_METRICS = ["bleu", "chrf", "rougeL", "exact_match", "f1"]


class EvalServer:
    """Holds settings, store and judge registry for one process and registers the MCP surface."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.db_path)
        self.judges = JudgeRegistry(settings, self.store)

    def judge(self, name: str | None, ctx: Context, no_cache: bool = False) -> Judge:
        create, reason = sampling(ctx, self.settings.timeout_s, self.judges)
        return self.judges.resolve(name, create, reason, use_cache=not no_cache)

    @asynccontextmanager
    async def lifespan(self, _server: MCPServer[Any]) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await self.judges.aclose()
            self.store.close()


def _dump(values: list[Any] | None) -> list[Any] | None:
    """Pydantic argument models back to the plain dicts the domain functions take."""
    if values is None:
        return None
    return [v.model_dump() if isinstance(v, BaseModel) else v for v in values]


def _with_judge(result: dict[str, Any], judge: Judge) -> dict[str, Any]:
    return {**result, "judge": judge.describe(), "usage": judge.usage.summary()}


def build_server(settings: Settings | None = None) -> MCPServer[Any]:
    """Create the server; no socket is opened and no database touched here (SQLite opens on first use)."""
    app = EvalServer(settings or load_settings())
    tools: list[Tool] = []
    _register_tools(collect(tools), app)
    _register_run_tools(collect(tools), app)
    server: MCPServer[Any] = MCPServer(
        "mcp-eval-server",
        version=__version__,
        instructions="Evaluation tools: reference metrics, LLM judges (list_judges first), stored batch runs.",
        lifespan=app.lifespan,
        tools=tools,
    )
    _register_resources_and_prompts(server)
    return server


def _register_tools(tool: Register, app: EvalServer) -> None:
    @tool(_LOCAL)
    @tool_result
    async def compute_metrics(
        predictions: list[str],
        references: list[list[str]],
        metrics: list[str] = DEFAULT_METRICS,
        options: MetricOptions | None = None,
    ) -> MetricsResult:
        """Reference metrics equal to sacrebleu / rouge-score / jiwer / the SQuAD scripts / rapidfuzz: bleu, chrf, ter
        (0-100, corpus + per item, with signature), rouge1, rouge2, rougeL, rougeLsum (0-1, Unicode tokenizer), wer,
        cer (jiwer, corpus = total edits / total reference words or characters), exact_match, f1 (SQuAD v1.1, 0-1),
        squad_v2 (0-100; an empty reference list or "" = unanswerable, an empty prediction = no answer),
        levenshtein, normalized_similarity. references[i] lists the references of predictions[i].
        options: tokenize (BLEU, default 13a; zh/ja-mecab/char for CJK), lowercase, chrf_word_order, TER's
        normalized, asian_support, case_sensitive, no_punct (asian_support needs normalized for CJK), use_stemmer,
        per_item_limit (default 100)."""
        # On a worker thread: 10k pairs take seconds, and the session must keep answering meanwhile.
        work = functools.partial(metric_lib.compute_metrics, predictions, references, metrics, options or None)
        return MetricsResult(**await anyio.to_thread.run_sync(work))

    @tool(_JUDGED)
    @tool_result
    async def judge_response(
        response: str,
        ctx: Context,
        criteria: list[str | CriterionSpec] | None = None,
        rubric: str | None = None,
        prompt: str | None = None,
        context: str | None = None,
        reference: str | None = None,
        judge: str | None = None,
        no_cache: bool = False,
    ) -> ScoreResult:
        """Score a response per criterion (names, or {name, description, weight, scale: [min, max]}) or by a shipped
        rubric (rubric://NAME). Returns scores with reasoning and the weighted overall score (0-1). no_cache: ask
        the judge afresh (nothing read from or written to the reply cache)."""
        crit = judgments.resolve_criteria(_dump(criteria), rubric)
        j = app.judge(judge, ctx, no_cache)
        result = await judgments.judge_response(j, response, crit, prompt, context, reference)
        return ScoreResult(**_with_judge(result, j))

    @tool(_JUDGED)
    @tool_result
    async def compare_responses(
        prompt: str,
        response_a: str,
        response_b: str,
        ctx: Context,
        criteria: list[str] | None = None,
        judge: str | None = None,
        swap: bool = True,
        no_cache: bool = False,
    ) -> PairwiseResult:
        """Pairwise judgment. With swap (default) both orders are judged; a win counts only when both orders agree,
        otherwise the result is a tie; position_consistency reports whether they agreed. no_cache: fresh calls."""
        j = app.judge(judge, ctx, no_cache)
        return PairwiseResult(
            **_with_judge(await judgments.compare_responses(j, prompt, response_a, response_b, criteria, swap), j)
        )

    @tool(_JUDGED)
    @tool_result
    async def rank_responses(
        prompt: str,
        responses: list[str],
        ctx: Context,
        criteria: list[str] | None = None,
        judge: str | None = None,
        method: Literal["pairwise", "scored"] = "pairwise",
        no_cache: bool = False,
    ) -> RankResult:
        """Rank 2-10 responses: round-robin pairwise with order swap (consistent wins 1, ties 0.5) or rubric scores.
        no_cache: fresh judge calls."""
        j = app.judge(judge, ctx, no_cache)
        return RankResult(**_with_judge(await judgments.rank_responses(j, prompt, responses, criteria, method), j))

    @tool(_JUDGED)
    @tool_result
    async def evaluate_rag(
        question: str,
        answer: str,
        contexts: list[str],
        ctx: Context,
        reference: str | None = None,
        judge: str | None = None,
        no_cache: bool = False,
    ) -> RagResult:
        """RAG metrics: faithfulness (claims in the answer supported by the contexts), answer relevance, and with a
        reference answer context precision (ranked) and recall. Each result names its method. no_cache: fresh calls."""
        j = app.judge(judge, ctx, no_cache)
        return RagResult(**_with_judge(await rag.evaluate_rag(j, question, answer, contexts, reference), j))

    @tool(_LOCAL)
    @tool_result
    async def evaluate_trajectory(
        actual_calls: list[ToolCall | str],
        expected_calls: list[ToolCall | str],
        match: Literal["ordered", "unordered", "subset"] = "ordered",
        compare_args: bool = True,
    ) -> TrajectoryResult:
        """Agent tool calls ({name, arguments}) vs expected: precision, recall, F1, order agreement, argument match
        per call. Expected arguments must be present with equal values; extra actual arguments are allowed."""
        return TrajectoryResult(
            **agents.evaluate_trajectory(_dump(actual_calls) or [], _dump(expected_calls) or [], match, compare_args)
        )

    @tool(_LOCAL)
    @tool_result
    async def check_text(
        text: str, checks: list[Literal["pii", "secrets", "profanity", "prompt_injection"]] | None = None
    ) -> SafetyResult:
        """Heuristic scan for PII (email, phone, Luhn-valid cards, IBAN, SSN, NINO, IP), secrets (API-key patterns,
        returned redacted), profanity and prompt-injection phrasing; spans are [start, end) character offsets."""
        return SafetyResult(**safety.check_text(text, list(checks) if checks else None))

    @tool(_LOCAL)
    @tool_result
    async def list_judges(ctx: Context) -> JudgeList:
        """Configured judges, whether each is usable now and why not, and the default. Never reveals API keys."""
        _, reason = sampling(ctx)
        judges = app.judges.describe_all(reason)
        found = []
        if not any(j["usable"] for j in judges if j["name"] != "heuristic"):
            hints = "; ".join(f"{j['name']}: {j['enable']}" for j in judges if not j["usable"])
            found.append(warning("judge_unavailable", f"no model judge is usable now, only heuristic; {hints}."))
        return JudgeList(judges=judges, default=app.judges.default_name(), warnings=found)  # type: ignore[arg-type]


def _register_run_tools(tool: Register, app: EvalServer) -> None:
    @tool(_RUN)
    @tool_result
    async def run_eval(
        dataset: str | list[dict[str, Any]],
        task: EvalTask,
        ctx: Context,
        name: str | None = None,
        no_cache: bool = False,
    ) -> RunSummary:
        """Batch evaluation, stored. dataset: JSONL path under MCP_EVAL_DATA_ROOTS or inline records
        {id?, prediction, references?, prompt?, context?}. task: {metrics?: [...], criteria?: [...] | rubric?: name,
        judge?: name, concurrency?: int, options?: {...}}. Sends a progress notification per judged item. Items a
        judge could not score are counted in judge_errors and named in warnings. no_cache: fresh judge calls."""
        spec = task.model_dump(exclude_none=True)
        j = app.judge(task.judge, ctx, no_cache) if (task.criteria or task.rubric) else None
        result = await runs.run_eval(
            app.store, dataset, spec, name, app.settings.data_roots, j, app.settings.concurrency, ctx.report_progress
        )
        return RunSummary(**result)

    @tool(_LOCAL)
    @tool_result
    async def get_run(run_id: str, offset: int = 0, limit: int = 50) -> RunDetail:
        """A stored run: task, summary and a page of per-item results (offset/limit, at most 500 per call)."""
        head = app.store.get_run(run_id)
        limit = max(0, min(limit, 500))
        offset = max(0, offset)
        items = app.store.get_items(run_id, offset, limit)
        truncated = offset + len(items) < head["n_items"]
        return RunDetail(
            **head, items=items, total_items=head["n_items"], returned_items=len(items), truncated=truncated
        )

    @tool(_LOCAL)
    @tool_result
    async def list_runs(limit: int = 50) -> RunList:
        """Stored runs, newest first, with their mean scores."""
        return RunList(runs=app.store.list_runs(max(1, min(limit, 500))))

    @tool(_LOCAL)
    @tool_result
    async def compare_runs(run_a: str, run_b: str, n_resamples: int = 2000, seed: int = 0) -> RunComparison:
        """Per-metric means and delta (b - a) over items with the same id, with paired bootstrap and sign-flip
        permutation p-values (scipy) and a 95% CI of the delta; corpus bleu/chrf/ter with sacrebleu's paired
        bootstrap resampling and approximate randomization p-values. n_resamples: 100-20000."""
        if not 100 <= n_resamples <= 20000:
            raise EvalError(f"n_resamples must be between 100 and 20000, got {n_resamples}")
        work = functools.partial(runs.compare_runs, app.store, run_a, run_b, n_resamples, seed)
        return RunComparison(**await anyio.to_thread.run_sync(work))

    @tool(_JUDGED)
    @tool_result
    async def calibrate_judge(
        items: list[CalibrationItem],
        ctx: Context,
        judge: str | None = None,
        criterion: CriterionSpec | None = None,
        weights: Literal["none", "linear", "quadratic"] = "quadratic",
        no_cache: bool = False,
    ) -> CalibrationResult:
        """Agreement of a judge with human labels. items: {response, prompt?, reference?, context?, human_score} or
        {judge_score, human_score}; every score must be an integer on the criterion's scale. Returns exact agreement,
        Cohen's kappa and weighted kappa over every category of the scale (sklearn), Spearman and Pearson (scipy);
        an undefined statistic is null with a warning. criterion: {name, description, scale: [min, max]} (default
        quality 1-5). no_cache: fresh judge calls."""
        raw = [it.model_dump(exclude_none=True) for it in items]
        crit = criterion.model_dump() if criterion else None
        calibration.validate_scale(raw, calibration.declared_criterion(crit))  # before any judge is resolved
        j = app.judge(judge, ctx, no_cache) if any(it.judge_score is None for it in items) else None
        return CalibrationResult(**await calibration.calibrate_judge(j, raw, crit, weights, app.settings.concurrency))


def _rubric_reader(name: str) -> Callable[[], str]:
    def read() -> str:
        return judgments.rubric_text(name)

    return read


def _register_resources_and_prompts(server: MCPServer[Any]) -> None:
    for rubric_name in judgments.rubric_names():
        server.resource(
            f"rubric://{rubric_name}",
            name=rubric_name,
            mime_type="application/json",
            description=f"Shipped judge rubric '{rubric_name}'",
        )(_rubric_reader(rubric_name))

    def show(user: str) -> str:
        return f"[system]\n{prompts.SYSTEM}\n\n[user]\n{user}"

    @server.prompt()
    def judge_score(
        response: str, criteria: str = "helpfulness, accuracy", prompt: str = "", context: str = "", reference: str = ""
    ) -> str:
        """The scoring prompt judge_response sends (criteria: comma-separated names, each on a 1-5 scale)."""
        crit = [{"name": c.strip(), "scale_min": 1, "scale_max": 5} for c in criteria.split(",") if c.strip()]
        return show(prompts.render_score(response, crit, prompt or None, context or None, reference or None))

    @server.prompt()
    def judge_pairwise(prompt: str, response_a: str, response_b: str, criteria: str = "") -> str:
        """The pairwise prompt compare_responses sends (once per order)."""
        names = [c.strip() for c in criteria.split(",") if c.strip()] or judgments.DEFAULT_PAIRWISE_CRITERIA
        return show(prompts.render_pairwise(prompt, response_a, response_b, names))

    @server.prompt()
    def judge_claims(text: str) -> str:
        """The claim-decomposition prompt evaluate_rag sends for faithfulness and context recall."""
        return show(prompts.render_claims(text))

    @server.prompt()
    def judge_verify(claims: str, context: str) -> str:
        """The per-claim verification prompt (claims: one per line)."""
        return show(prompts.render_verify([c for c in claims.splitlines() if c.strip()], [context]))

    @server.prompt()
    def judge_relevance(question: str, answer: str) -> str:
        """The answer-relevance prompt evaluate_rag sends."""
        return show(prompts.render_relevance(question, answer))
