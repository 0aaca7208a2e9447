"""The MCP face of the evaluation domain: typed tools, rubric resources, judge prompts. Thin on purpose.

Each tool validates its arguments through its signature, calls one domain function and returns a pydantic model,
so the tool has an `outputSchema` and the result carries `structuredContent`. `_tool` is the one place that maps
domain outcomes to MCP results. The `client` judge is wired here because only this module may talk to the MCP
session: on handshake-era connections it sends `sampling/createMessage`; on stateless 2026-07-28 connections it
answers with "input required" results and replays the call with the client's answers (see `judges/sampling.py`).

Never: print (stdout is the wire), touch the network at start-up, or return an API key.
"""

from __future__ import annotations

import functools
import inspect
import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, Literal, ParamSpec, TypeVar

import anyio
from mcp import types
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel

from mcp_eval_server import __version__, agents, judgments, rag, runs, safety
from mcp_eval_server import metrics as metric_lib
from mcp_eval_server.config import Settings, load_settings
from mcp_eval_server.errors import EvalError, JudgeFailedError, JudgePending
from mcp_eval_server.inputs import CalibrationItem, CriterionSpec, EvalTask, ToolCall
from mcp_eval_server.judges import prompts
from mcp_eval_server.judges.base import Judge
from mcp_eval_server.judges.registry import JudgeRegistry
from mcp_eval_server.judges.sampling import CreateMessage, SamplingRounds
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

logger = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
# Hints for clients: local tools only read; judged tools may call an outside model; run_eval also stores a run.
_LOCAL = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)
_JUDGED = types.ToolAnnotations(read_only_hint=True, open_world_hint=True)
_RUN = types.ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
DEFAULT_METRICS = ["bleu", "chrf", "rougeL", "exact_match", "f1"]


# The replay state of the current stateless tool call, set by `_sampling` and read by `_tool` on `JudgePending`.
_ROUNDS: ContextVar[SamplingRounds | None] = ContextVar("mcp_eval_sampling_rounds", default=None)


def _tool(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """The one place domain outcomes become MCP results.

    `EvalError` -> an `isError` result whose text says what to fix. `JudgePending` (stateless sampling) -> an
    "input required" result carrying the judge's open questions and the answers so far.
    """

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        token = _ROUNDS.set(None)
        try:
            return await fn(*args, **kwargs)
        except EvalError as exc:
            raise ToolError(str(exc)) from exc
        except JudgePending as exc:
            rounds = _ROUNDS.get()
            if rounds is None or not rounds.pending:
                raise ToolError("internal error: the judge is waiting but asked nothing") from exc
            return types.InputRequiredResult(  # type: ignore[return-value]
                input_requests={key: _sampling_request(*q) for key, q in rounds.pending.items()},
                request_state=rounds.state(),
            )
        finally:
            _ROUNDS.reset(token)

    wrapper.__doc__ = inspect.cleandoc(fn.__doc__ or "")  # the tool description, without source indentation
    return wrapper


def _sampling_request(system: str, messages: list[dict[str, str]], max_tokens: int) -> types.CreateMessageRequest:
    return types.CreateMessageRequest(
        params=types.CreateMessageRequestParams(
            messages=_sampling_messages(messages), system_prompt=system, max_tokens=max_tokens, temperature=0.0
        )
    )


def _sampling_messages(messages: list[dict[str, str]]) -> list[types.SamplingMessage]:
    return [
        types.SamplingMessage(role=m["role"], content=types.TextContent(type="text", text=m["content"]))  # type: ignore[arg-type]
        for m in messages
    ]


def _text_of(result: types.CreateMessageResult | Any) -> str:
    content = getattr(result, "content", None)
    if not isinstance(content, types.TextContent):
        raise JudgeFailedError("the client's model did not reply with text content")
    return content.text


def _stateless_sampling(ctx: Context) -> CreateMessage:
    """Replay sampling for 2026-07-28 connections: answers so far come from the request state and this round."""
    rounds = SamplingRounds.from_state(ctx.request_state)
    for key, response in (ctx.input_responses or {}).items():
        rounds.answers[key] = [_text_of(response), getattr(response, "model", "") or "host model"]
    _ROUNDS.set(rounds)
    return rounds.create


def _sampling(ctx: Context, timeout_s: float = 120.0) -> tuple[CreateMessage | None, str | None]:
    """A sampling function for the `client` judge, or None and the reason it cannot work on this connection."""
    caps = ctx.client_capabilities
    if caps is None or caps.sampling is None:
        return None, "the connected client did not declare the sampling capability"
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return _stateless_sampling(ctx), None

    async def create(system: str, messages: list[dict[str, str]], max_tokens: int) -> tuple[str, str]:
        try:
            with anyio.fail_after(timeout_s), warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                result = await ctx.session.create_message(
                    _sampling_messages(messages),
                    max_tokens=max_tokens,
                    system_prompt=system,
                    temperature=0.0,
                    related_request_id=ctx.request_id,
                )
        except MCPError as exc:
            raise JudgeFailedError(f"the client rejected the sampling request: {exc}") from exc
        except TimeoutError as exc:
            raise JudgeFailedError(f"the client did not answer the sampling request within {timeout_s}s") from exc
        return _text_of(result), result.model

    return create, None


class EvalServer:
    """Holds settings, store and judge registry for one process and registers the MCP surface."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.db_path)
        self.judges = JudgeRegistry(settings, self.store)

    def judge(self, name: str | None, ctx: Context) -> Judge:
        create, reason = _sampling(ctx, self.settings.timeout_s)
        return self.judges.resolve(name, create, reason)

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
    server: MCPServer[Any] = MCPServer(
        "mcp-eval-server",
        version=__version__,
        instructions="Evaluation tools: reference metrics, LLM judges (list_judges first), stored batch runs.",
        lifespan=app.lifespan,
    )
    _register_tools(server, app)
    _register_run_tools(server, app)
    _register_resources_and_prompts(server)
    return server


def _register_tools(server: MCPServer[Any], app: EvalServer) -> None:
    @server.tool(annotations=_LOCAL)
    @_tool
    async def compute_metrics(
        predictions: list[str],
        references: list[list[str]],
        metrics: list[str] = DEFAULT_METRICS,
        options: dict[str, Any] | None = None,
    ) -> MetricsResult:
        """Reference metrics equal to sacrebleu / rouge-score / SQuAD / rapidfuzz: bleu, chrf, ter (0-100, corpus +
        per item, with signature), rouge1, rouge2, rougeL, rougeLsum (0-1, Unicode tokenizer), exact_match, f1
        (SQuAD), levenshtein, normalized_similarity. references[i] lists the references of predictions[i].
        options: tokenize, lowercase, chrf_word_order, use_stemmer, per_item_limit (default 100)."""
        # On a worker thread: 10k pairs take seconds, and the session must keep answering meanwhile.
        work = functools.partial(metric_lib.compute_metrics, predictions, references, metrics, options)
        return MetricsResult(**await anyio.to_thread.run_sync(work))

    @server.tool(annotations=_JUDGED)
    @_tool
    async def judge_response(
        response: str,
        ctx: Context,
        criteria: list[str | CriterionSpec] | None = None,
        rubric: str | None = None,
        prompt: str | None = None,
        context: str | None = None,
        reference: str | None = None,
        judge: str | None = None,
    ) -> ScoreResult:
        """Score a response per criterion (names, or {name, description, weight, scale: [min, max]}) or by a shipped
        rubric (rubric://NAME). Returns scores with reasoning and the weighted overall score (0-1)."""
        crit = judgments.resolve_criteria(_dump(criteria), rubric)
        j = app.judge(judge, ctx)
        result = await judgments.judge_response(j, response, crit, prompt, context, reference)
        return ScoreResult(**_with_judge(result, j))

    @server.tool(annotations=_JUDGED)
    @_tool
    async def compare_responses(
        prompt: str,
        response_a: str,
        response_b: str,
        ctx: Context,
        criteria: list[str] | None = None,
        judge: str | None = None,
        swap: bool = True,
    ) -> PairwiseResult:
        """Pairwise judgment. With swap (default) both orders are judged; a win counts only when both orders agree,
        otherwise the result is a tie; position_consistency reports whether they agreed."""
        j = app.judge(judge, ctx)
        return PairwiseResult(
            **_with_judge(await judgments.compare_responses(j, prompt, response_a, response_b, criteria, swap), j)
        )

    @server.tool(annotations=_JUDGED)
    @_tool
    async def rank_responses(
        prompt: str,
        responses: list[str],
        ctx: Context,
        criteria: list[str] | None = None,
        judge: str | None = None,
        method: Literal["pairwise", "scored"] = "pairwise",
    ) -> RankResult:
        """Rank 2-10 responses: round-robin pairwise with order swap (consistent wins 1, ties 0.5) or rubric scores."""
        j = app.judge(judge, ctx)
        return RankResult(**_with_judge(await judgments.rank_responses(j, prompt, responses, criteria, method), j))

    @server.tool(annotations=_JUDGED)
    @_tool
    async def evaluate_rag(
        question: str,
        answer: str,
        contexts: list[str],
        ctx: Context,
        reference: str | None = None,
        judge: str | None = None,
    ) -> RagResult:
        """RAG metrics: faithfulness (claims in the answer supported by the contexts), answer relevance, and with a
        reference answer context precision (ranked) and recall. Each result names its method."""
        j = app.judge(judge, ctx)
        return RagResult(**_with_judge(await rag.evaluate_rag(j, question, answer, contexts, reference), j))

    @server.tool(annotations=_LOCAL)
    @_tool
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

    @server.tool(annotations=_LOCAL)
    @_tool
    async def check_text(
        text: str, checks: list[Literal["pii", "secrets", "profanity", "prompt_injection"]] | None = None
    ) -> SafetyResult:
        """Heuristic scan for PII (email, phone, Luhn-valid cards, IBAN, SSN, NINO, IP), secrets (API-key patterns,
        returned redacted), profanity and prompt-injection phrasing; spans are [start, end) character offsets."""
        return SafetyResult(**safety.check_text(text, list(checks) if checks else None))

    @server.tool(annotations=_LOCAL)
    @_tool
    async def list_judges(ctx: Context) -> JudgeList:
        """Configured judges, whether each is usable now and why not, and the default. Never reveals API keys."""
        _, reason = _sampling(ctx)
        return JudgeList(judges=app.judges.describe_all(reason), default=app.judges.default_name())


def _register_run_tools(server: MCPServer[Any], app: EvalServer) -> None:
    @server.tool(annotations=_RUN)
    @_tool
    async def run_eval(
        dataset: str | list[dict[str, Any]], task: EvalTask, ctx: Context, name: str | None = None
    ) -> RunSummary:
        """Batch evaluation, stored. dataset: JSONL path under MCP_EVAL_DATA_ROOTS or inline records
        {id?, prediction, references?, prompt?, context?}. task: {metrics?: [...], criteria?: [...] | rubric?: name,
        judge?: name, concurrency?: int, options?: {...}}. Sends a progress notification per judged item."""
        spec = task.model_dump(exclude_none=True)
        j = app.judge(task.judge, ctx) if (task.criteria or task.rubric) else None
        result = await runs.run_eval(
            app.store, dataset, spec, name, app.settings.data_roots, j, app.settings.concurrency, ctx.report_progress
        )
        return RunSummary(**result)

    @server.tool(annotations=_LOCAL)
    @_tool
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

    @server.tool(annotations=_LOCAL)
    @_tool
    async def list_runs(limit: int = 50) -> RunList:
        """Stored runs, newest first, with their mean scores."""
        return RunList(runs=app.store.list_runs(max(1, min(limit, 500))))

    @server.tool(annotations=_LOCAL)
    @_tool
    async def compare_runs(run_a: str, run_b: str, n_resamples: int = 2000, seed: int = 0) -> RunComparison:
        """Per-metric means and delta (b - a) over items with the same id, with paired bootstrap and sign-flip
        permutation p-values and a 95% CI of the delta."""
        return RunComparison(**runs.compare_runs(app.store, run_a, run_b, max(100, min(n_resamples, 20000)), seed))

    @server.tool(annotations=_JUDGED)
    @_tool
    async def calibrate_judge(
        items: list[CalibrationItem],
        ctx: Context,
        judge: str | None = None,
        criterion: CriterionSpec | None = None,
        weights: Literal["none", "linear", "quadratic"] = "quadratic",
    ) -> CalibrationResult:
        """Agreement of a judge with human labels. items: {response, prompt?, reference?, context?, human_score} or
        {judge_score, human_score}. Returns exact agreement, Cohen's kappa (and weighted kappa for ordinal scales),
        Spearman and Pearson. criterion: {name, description, scale: [min, max]} (default quality 1-5)."""
        raw = [it.model_dump(exclude_none=True) for it in items]
        j = app.judge(judge, ctx) if any(it.judge_score is None for it in items) else None
        crit = criterion.model_dump() if criterion else None
        return CalibrationResult(**await runs.calibrate_judge(j, raw, crit, weights, app.settings.concurrency))


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
