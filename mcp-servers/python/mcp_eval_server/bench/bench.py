"""Benchmarks from issue 4, run through the real server over stdio (`make bench`).

1. compute_metrics on 10k pairs via MCP vs the raw libraries doing the same work in this process (target <= 1.2x).
2. run_eval with 200 judge calls against a fake OpenAI-compatible provider with 200 ms latency at concurrency 8
   (target <= 1.3x the ideal 200 / 8 x 0.2 s = 5 s).
Results are printed and written to bench/results/bench.json.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF

PKG = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PKG))
from mcp_eval_server.metrics import UnicodeTokenizer, exact_match, token_f1  # noqa: E402
from tests.fake_provider import FakeProvider, Reply  # noqa: E402

N_PAIRS = 10_000
METRICS = ["bleu", "chrf", "rougeL", "exact_match", "f1"]
WORDS = "the a cat dog sat ran on mat fast slow red blue house tree river city model judge score data run".split()


def corpus(rng: random.Random) -> tuple[list[str], list[list[str]]]:
    def sentence() -> str:
        return " ".join(rng.choices(WORDS, k=rng.randint(5, 25))) + "."

    return [sentence() for _ in range(N_PAIRS)], [[sentence()] for _ in range(N_PAIRS)]


def raw_libraries(preds: list[str], refs: list[list[str]], per_item: int = 100) -> float:
    """The same computation as compute_metrics with its default per_item_limit, straight on the libraries."""
    start = time.perf_counter()
    streams = [[r[0] for r in refs]]
    for metric, sentence in ((BLEU(), BLEU(effective_order=True)), (CHRF(), CHRF())):
        metric.corpus_score(preds, streams)
        [sentence.sentence_score(p, r).score for p, r in zip(preds[:per_item], refs[:per_item], strict=True)]
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=UnicodeTokenizer())
    [scorer.score(r[0], p)["rougeL"].fmeasure for p, r in zip(preds, refs, strict=True)]
    [exact_match(p, r) for p, r in zip(preds, refs, strict=True)]
    [token_f1(p, r) for p, r in zip(preds, refs, strict=True)]
    return time.perf_counter() - start


def server(env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "mcp_eval_server"], env=env, cwd=str(PKG))


async def bench_metrics(env: dict[str, str]) -> dict[str, Any]:
    """Alternate raw and MCP runs (3 each) and keep the best of each, so machine noise hits both sides alike."""
    preds, refs = corpus(random.Random(0))
    raw_times, mcp_times = [], []
    async with Client(server(env), mode="legacy", read_timeout_seconds=600) as client:
        await client.call_tool("compute_metrics", {"predictions": preds[:10], "references": refs[:10]})  # warm-up
        for _ in range(3):
            raw_times.append(raw_libraries(preds, refs))
            start = time.perf_counter()
            result = await client.call_tool(
                "compute_metrics", {"predictions": preds, "references": refs, "metrics": METRICS}
            )
            mcp_times.append(time.perf_counter() - start)
            assert not result.is_error, result.content
    raw, via_mcp = min(raw_times), min(mcp_times)
    return {
        "pairs": N_PAIRS,
        "metrics": METRICS,
        "raw_s": round(raw, 3),
        "mcp_s": round(via_mcp, 3),
        "ratio": round(via_mcp / raw, 3),
        "target_ratio": 1.2,
    }


async def bench_run_eval(env: dict[str, str]) -> dict[str, Any]:
    verdict = json.dumps({"scores": {"accuracy": {"reasoning": "ok", "score": 4}}})
    with FakeProvider(lambda request: Reply(text=verdict, delay_s=0.2)) as fake:
        env = env | {"OPENAI_BASE_URL": fake.url + "/v1", "OPENAI_API_KEY": "bench-key"}
        dataset = [{"id": str(i), "prediction": f"answer number {i}"} for i in range(200)]
        async with Client(server(env), mode="legacy", read_timeout_seconds=600) as client:
            start = time.perf_counter()
            result = await client.call_tool(
                "run_eval",
                {"dataset": dataset, "task": {"criteria": ["accuracy"], "judge": "openai", "concurrency": 8}},
            )
            elapsed = time.perf_counter() - start
            assert not result.is_error, result.content
            calls = result.structured_content["usage"]["calls"]  # type: ignore[index]
    ideal = 200 / 8 * 0.2
    return {
        "judge_calls": calls,
        "latency_s": 0.2,
        "concurrency": 8,
        "elapsed_s": round(elapsed, 3),
        "ideal_s": ideal,
        "ratio": round(elapsed / ideal, 3),
        "target_ratio": 1.3,
    }


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"MCP_EVAL_DB": str(Path(tmp) / "bench.sqlite3"), "MCP_EVAL_DATA_ROOTS": tmp}
        which = sys.argv[1:] or ["compute_metrics", "run_eval"]
        benches = {"compute_metrics": bench_metrics, "run_eval": bench_run_eval}
        results = {name: await benches[name](env) for name in which}
    out = PKG / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(results, indent=2))
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
    ok = all(r["ratio"] <= r["target_ratio"] for r in results.values())
    sys.stdout.write("PASS\n" if ok else "FAIL: a ratio is above its target\n")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    anyio.run(main)
