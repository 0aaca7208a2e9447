"""End to end: the server runs as a real subprocess (`python -m mcp_eval_server`) driven by the `mcp` SDK Client over
stdio. The `client` judge is answered by the test's sampling callback, which scores like a scripted model."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters, types
from sacrebleu.metrics import BLEU

from tests.fake_provider import FakeProvider, Reply, last_user_text

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]
TOOLS = {
    "compute_metrics",
    "judge_response",
    "compare_responses",
    "rank_responses",
    "evaluate_rag",
    "evaluate_trajectory",
    "check_text",
    "run_eval",
    "get_run",
    "list_runs",
    "compare_runs",
    "calibrate_judge",
    "list_judges",
}


def _between(text: str, label: str) -> str:
    match = re.search(label + r":\n<<<\n(.*?)\n>>>", text, re.S)
    assert match, f"{label} block missing from judge prompt"
    return match.group(1)


def scripted_model(user: str) -> str:
    """What a well-behaved model would answer, derived from the prompt so results are predictable.

    Scoring: the response text carries `score=N`. Pairwise: the response containing "good" wins, in either slot.
    """
    if "RESPONSE A:" in user:
        a = _between(user, "RESPONSE A")
        return json.dumps({"reasoning": "content", "winner": "A" if "good" in a else "B"})
    response = _between(user, "RESPONSE")
    names = re.findall(r"^- (\S+) \(\d+-\d+\):", user, re.M)
    score = int(m.group(1)) if (m := re.search(r"score=(\d)", response)) else 3
    return json.dumps({"scores": {n: {"reasoning": "scripted", "score": score} for n in names}})


class ProgressLog:
    """Progress callback; the SDK runs each callback as its own task, so they may finish after the result arrives
    and in any order: tests wait for the expected count instead of reading the list right away."""

    def __init__(self, expected: int) -> None:
        self.values: list[tuple[float, float | None]] = []
        self.expected = expected
        self.complete = anyio.Event()

    async def __call__(self, done: float, total: float | None, message: str | None) -> None:
        self.values.append((done, total))
        if len([v for v in self.values if v[0] > 0]) >= self.expected:
            self.complete.set()

    async def wait(self) -> list[tuple[float, float | None]]:
        with anyio.fail_after(5):
            await self.complete.wait()
        return sorted(self.values)


class Sampler:
    """Sampling callback that records requests; `biased` makes it always pick slot A."""

    def __init__(self, biased: bool = False) -> None:
        self.requests: list[types.CreateMessageRequestParams] = []
        self.biased = biased

    async def __call__(self, ctx: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        self.requests.append(params)
        user = params.messages[-1].content.text  # type: ignore[union-attr]
        text = json.dumps({"reasoning": "first", "winner": "A"}) if self.biased else scripted_model(user)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=text), model="scripted-host-model"
        )


@asynccontextmanager
async def connect(
    tmp_path: Path, sampler: Sampler | None = None, mode: str = "legacy", **env: str
) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_eval_server"],
        env={"MCP_EVAL_DB": str(tmp_path / "e2e.sqlite3"), "MCP_EVAL_DATA_ROOTS": str(tmp_path), **env},
        cwd=str(Path(__file__).resolve().parents[1]),
    )
    async with Client(params, sampling_callback=sampler, mode=mode, read_timeout_seconds=60) as client:
        yield client


async def call(client: Client, tool: str, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args, **kw)
    assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
    assert result.structured_content is not None
    return result.structured_content


async def test_tools_have_output_schemas_and_metrics_equal_sacrebleu(tmp_path: Path) -> None:
    refs = [
        ["The dog bit the man.", "The dog had bit the man."],
        ["It was not unexpected.", "No one was surprised."],
        ["The man bit him first.", "The man had bitten the dog."],
    ]
    hyps = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
    with anyio.fail_after(60):
        async with connect(tmp_path) as client:
            tools = (await client.list_tools()).tools
            out = await call(
                client, "compute_metrics", {"predictions": hyps, "references": refs, "metrics": ["bleu", "rouge1"]}
            )
            bad = await client.call_tool(
                "compute_metrics", {"predictions": ["a"], "references": [["a"]], "metrics": ["meteor"]}
            )
    assert {t.name for t in tools} == TOOLS
    assert all(t.output_schema for t in tools)
    hints = {t.name: t.annotations for t in tools}
    assert hints["compute_metrics"].read_only_hint and not hints["compute_metrics"].open_world_hint  # type: ignore[union-attr]
    assert hints["judge_response"].open_world_hint and hints["run_eval"].read_only_hint is False  # type: ignore[union-attr]
    streams = [list(s) for s in zip(*refs, strict=True)]
    assert out["metrics"]["bleu"]["score"] == BLEU().corpus_score(hyps, streams).score
    assert round(out["metrics"]["bleu"]["score"], 6) == 48.530827
    assert bad.is_error and "choose from" in bad.content[0].text  # type: ignore[union-attr]


async def test_client_judge_scores_through_mcp_sampling(tmp_path: Path) -> None:
    sampler = Sampler()
    with anyio.fail_after(60):
        async with connect(tmp_path, sampler) as client:
            out = await call(
                client,
                "judge_response",
                {
                    "response": "Paris. score=4",
                    "rubric": "helpfulness",
                    "prompt": "Capital of France?",
                    "judge": "client",
                },
            )
            listed = await call(client, "list_judges", {})
    assert [s["score"] for s in out["scores"]] == [4, 4, 4]
    assert out["overall"] == pytest.approx(0.75)
    assert out["judge"] == {
        "name": "client",
        "kind": "client",
        "model": "scripted-host-model",
        "method": "llm_judge:client",
    }
    params = sampler.requests[0]
    assert params.temperature == 0 and "impartial evaluator" in (params.system_prompt or "")
    assert {j["name"]: j["usable"] for j in listed["judges"]}["client"] is True
    assert listed["default"] == "client"


async def test_pairwise_order_swap_through_mcp(tmp_path: Path) -> None:
    args = {"prompt": "Say something useful", "response_a": "bad answer", "response_b": "good answer"}
    with anyio.fail_after(60):
        async with connect(tmp_path, Sampler()) as client:
            fair = await call(client, "compare_responses", args)
            ranked = await call(client, "rank_responses", {"prompt": "p", "responses": ["bad", "good", "meh"]})
        async with connect(tmp_path, Sampler(biased=True)) as client:
            biased = await call(client, "compare_responses", args)
    assert (fair["winner"], fair["consistent"]) == ("B", True)
    assert [o["winner"] for o in fair["orders"]] == ["B", "B"]
    assert (biased["winner"], biased["consistent"], biased["position_consistency"]) == ("tie", False, 0.0)
    # "bad" vs "meh" has no "good": the scripted model then always picks slot B, so that pair flips and ties
    assert [(r["index"], r["points"]) for r in ranked["ranking"]] == [(1, 2.0), (0, 0.5), (2, 0.5)]
    assert ranked["position_consistency"] == pytest.approx(2 / 3)


async def test_missing_sampling_is_an_error_listing_judges_not_a_substitute(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with connect(tmp_path, sampler=None) as client:
            result = await client.call_tool("judge_response", {"response": "x", "criteria": ["accuracy"]})
            heuristic = await call(
                client,
                "judge_response",
                {"response": "x y", "criteria": ["accuracy"], "reference": "x y", "judge": "heuristic"},
            )
    text = result.content[0].text  # type: ignore[union-attr]
    assert result.is_error and "No other judge was substituted" in text
    assert "did not declare the sampling capability" in text and "OPENAI_API_KEY is not set" in text
    assert heuristic["judge"]["method"] == "heuristic" and heuristic["scores"][0]["score"] == 5


def _dataset(n: int, score: int, shift: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "id": f"q{i}",
            "prompt": f"question {i}",
            "prediction": f"answer {i} score={(score + (i + shift) % 2)}",
            "references": [f"answer {i} score={score}"],
        }
        for i in range(n)
    ]


async def test_run_eval_200_items_with_progress_stored_fetched_and_compared(tmp_path: Path) -> None:
    on_progress = ProgressLog(200)
    task = {"metrics": ["exact_match", "f1"], "criteria": ["accuracy"], "judge": "client", "concurrency": 8}
    with anyio.fail_after(120):
        async with connect(tmp_path, Sampler()) as client:
            run_a = await call(
                client,
                "run_eval",
                {"dataset": _dataset(200, 2), "task": task, "name": "base"},
                progress_callback=on_progress,
            )
            run_b = await call(client, "run_eval", {"dataset": _dataset(200, 4), "task": task, "name": "better"})
            fetched = await call(client, "get_run", {"run_id": run_a["run_id"], "offset": 190, "limit": 50})
            listed = await call(client, "list_runs", {})
            diff = await call(client, "compare_runs", {"run_a": run_a["run_id"], "run_b": run_b["run_id"]})
            missing = await client.call_tool("get_run", {"run_id": "nope"})
    progress = await on_progress.wait()
    assert [p for p in progress if p[0] > 0] == [(float(i), 200.0) for i in range(1, 201)]
    assert run_a["n_items"] == 200 and run_a["means"]["judge_overall"] == pytest.approx((0.25 + 0.5) / 2)
    assert run_a["means"]["exact_match"] == 0.5  # every even item's prediction equals its reference
    assert fetched["total_items"] == 200 and fetched["returned_items"] == 10 and not fetched["truncated"]
    assert fetched["items"][0]["id"] == "q190"
    assert [r["name"] for r in listed["runs"]][:2] == ["better", "base"]
    judged = diff["metrics"]["judge_overall"]
    assert judged["delta"] == pytest.approx(0.5) and judged["n_pairs"] == 200
    assert judged["p_value_bootstrap"] < 0.01 and judged["p_value_permutation"] < 0.01
    assert missing.is_error and "list_runs" in missing.content[0].text  # type: ignore[union-attr]


async def test_run_eval_from_jsonl_with_http_judge_in_the_server_process(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in _dataset(20, 3)))

    def respond(request: dict[str, Any]) -> Reply:
        return Reply(text=scripted_model(last_user_text(request)))

    with FakeProvider(respond) as fake, anyio.fail_after(60):
        async with connect(tmp_path, None, OPENAI_BASE_URL=fake.url + "/v1", OPENAI_API_KEY="sk-e2e-SECRET") as client:
            await call(client, "list_judges", {})
            assert fake.requests == []  # start-up and list_judges never call the provider
            run = await call(
                client, "run_eval", {"dataset": str(path), "task": {"rubric": "factuality", "judge": "openai"}}
            )
            outside = await client.call_tool("run_eval", {"dataset": "/etc/passwd", "task": {"metrics": ["f1"]}})
            listed = await call(client, "list_judges", {})
    assert run["judge"]["name"] == "openai" and run["usage"]["calls"] == 20 and run["judge_errors"] == 0
    assert run["means"]["judge_overall"] == pytest.approx((0.5 + 0.75) / 2)
    assert outside.is_error and "outside the allowed data roots" in outside.content[0].text  # type: ignore[union-attr]
    assert "SECRET" not in json.dumps(listed) and "SECRET" not in json.dumps(run)


async def test_calibrate_judge_kappa_and_spearman_match_hand_computed_values(tmp_path: Path) -> None:
    human = [1, 1, 2, 2, 3, 3]
    judge = [1, 2, 2, 2, 3, 1]
    items = [
        {"response": f"item {i} score={j}", "human_score": h} for i, (h, j) in enumerate(zip(human, judge, strict=True))
    ]
    crit = {"name": "quality", "scale": [1, 3]}
    with anyio.fail_after(60):
        async with connect(tmp_path, Sampler()) as client:
            out = await call(client, "calibrate_judge", {"items": items, "judge": "client", "criterion": crit})
            lin = await call(
                client,
                "calibrate_judge",
                {
                    "items": [{"judge_score": j, "human_score": h} for h, j in zip(human, judge, strict=True)],
                    "weights": "linear",
                },
            )
    assert out["judge_scores"] == judge
    assert out["exact_agreement"] == pytest.approx(4 / 6)
    assert out["kappa"] == pytest.approx(0.5)  # po = 2/3, pe = 1/3
    assert out["weighted_kappa"] == pytest.approx(2 / 7)  # quadratic: 1 - (5/24)/(7/24)
    assert out["spearman"] == pytest.approx(4 / 240**0.5)  # Pearson on tie-averaged ranks
    assert lin["weighted_kappa"] == pytest.approx(0.4) and lin["judge"] is None


async def test_resources_prompts_and_deterministic_tools(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with connect(tmp_path) as client:
            resources = (await client.list_resources()).resources
            rubric = await client.read_resource("rubric://helpfulness")
            prompt = await client.get_prompt("judge_pairwise", {"prompt": "p", "response_a": "a", "response_b": "b"})
            traj = await call(
                client,
                "evaluate_trajectory",
                {
                    "actual_calls": [
                        {"name": "search", "arguments": {"q": "x", "k": 5}},
                        {"name": "open", "arguments": {}},
                    ],
                    "expected_calls": [{"name": "search", "arguments": {"q": "x"}}, {"name": "summarize"}],
                },
            )
            scan = await call(client, "check_text", {"text": "mail bob@example.com, card 4111 1111 1111 1111"})
    assert "rubric://helpfulness" in {str(r.uri) for r in resources}
    assert json.loads(rubric.contents[0].text)["name"] == "helpfulness"  # type: ignore[union-attr]
    assert "Do not let the order of the responses" in prompt.messages[0].content.text  # type: ignore[union-attr]
    assert (traj["precision"], traj["recall"], traj["success"]) == (0.5, 0.5, False)
    assert {f["type"] for f in scan["findings"]} == {"email", "credit_card"}


class SlowSampler(Sampler):
    async def __call__(self, ctx: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        await anyio.sleep(5)
        return await super().__call__(ctx, params)


async def test_typed_task_validation_and_sampling_timeout_are_tool_errors(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with connect(tmp_path, SlowSampler(), MCP_EVAL_TIMEOUT_S="1") as client:
            bad_task = await client.call_tool(
                "run_eval", {"dataset": [{"prediction": "x"}], "task": {"concurrency": 0}}
            )
            typo = await client.call_tool("run_eval", {"dataset": [{"prediction": "x"}], "task": {"metric": ["f1"]}})
            slow = await client.call_tool("judge_response", {"response": "x", "criteria": ["a"], "judge": "client"})
    assert bad_task.is_error and "concurrency" in bad_task.content[0].text  # type: ignore[union-attr]
    assert typo.is_error and "metric" in typo.content[0].text  # type: ignore[union-attr]
    assert slow.is_error and "did not answer the sampling request within 1.0s" in slow.content[0].text  # type: ignore[union-attr]


async def test_client_judge_on_a_stateless_2026_connection_uses_input_required_rounds(tmp_path: Path) -> None:
    sampler = Sampler()
    on_progress = ProgressLog(200)
    task = {"criteria": ["accuracy"], "judge": "client"}
    with anyio.fail_after(120):
        async with connect(tmp_path, sampler, mode="auto") as client:
            assert client.session.protocol_version == "2026-07-28"
            scored = await call(
                client, "judge_response", {"response": "x score=5", "criteria": ["a", "b"], "judge": "client"}
            )
            pair = await call(client, "compare_responses", {"prompt": "p", "response_a": "good", "response_b": "bad"})
            asked_before_run = len(sampler.requests)
            run = await call(
                client, "run_eval", {"dataset": _dataset(200, 2), "task": task}, progress_callback=on_progress
            )
    # round 1 only asks; the retry answers all 200 items, each reported as it completes
    progress = [done for done, _ in await on_progress.wait()]
    assert progress.count(0) >= 1 and [p for p in progress if p > 0] == [float(i) for i in range(1, 201)]
    assert [s["score"] for s in scored["scores"]] == [5, 5] and scored["usage"]["calls"] == 1
    assert (pair["winner"], pair["consistent"]) == ("A", True)
    assert run["n_items"] == 200 and run["means"]["judge_overall"] == pytest.approx(0.375)
    assert len(sampler.requests) - asked_before_run == 200  # one question per item, all in one round
    assert run["usage"]["calls"] == 200


async def test_the_session_keeps_answering_while_metrics_compute(tmp_path: Path) -> None:
    """A long metric computation runs off the event loop: a second call is answered while it is under way."""
    words = "the quick brown fox jumps over a lazy dog while the cat sat on its mat".split()
    preds = [" ".join(words[i % 7 :] + words[: i % 7]) for i in range(3000)]
    refs = [[" ".join(words[i % 5 :] + words[: i % 5])] for i in range(3000)]
    finished: list[str] = []
    with anyio.fail_after(60):
        async with connect(tmp_path) as client, anyio.create_task_group() as group:

            async def heavy() -> None:
                args = {"predictions": preds, "references": refs, "metrics": ["bleu", "chrf", "rougeL"]}
                await call(client, "compute_metrics", args)
                finished.append("metrics")

            group.start_soon(heavy)
            await anyio.sleep(0.3)
            await call(client, "list_judges", {})
            finished.append("list_judges")
    assert finished == ["list_judges", "metrics"]
