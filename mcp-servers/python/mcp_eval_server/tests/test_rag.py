"""RAG metrics: the arithmetic with a scripted model over real HTTP, and the labelled heuristic path."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_eval_server.errors import InvalidInputError
from mcp_eval_server.judges.heuristic import HeuristicJudge
from mcp_eval_server.judges.registry import JudgeRegistry
from mcp_eval_server.rag import average_precision, evaluate_rag
from tests.conftest import make_settings
from tests.fake_provider import FakeProvider, Reply, last_user_text

pytestmark = pytest.mark.anyio
CONTEXTS = ["Paris is the capital of France.", "Bananas are yellow.", "France is in Europe."]


def scripted(request: dict[str, Any]) -> Reply:
    user = last_user_text(request)
    if user.startswith("Split the TEXT"):
        if "Berlin" in user:
            return Reply(text=json.dumps({"claims": ["Paris is the capital of France.", "Berlin is in France."]}))
        return Reply(
            text=json.dumps(
                {"claims": ["Paris is the capital of France.", "France is in Europe.", "Paris has 2 million people."]}
            )
        )
    if user.startswith("For each numbered CLAIM"):
        n = len(re.findall(r"^\d+\. ", user[user.index("CLAIMS:") :], re.M))
        verdicts = ["supported", "contradicted", "unsupported"]
        return Reply(text=json.dumps({"verdicts": [{"index": i + 1, "verdict": verdicts[i]} for i in range(n)]}))
    if user.startswith("Rate how directly"):
        return Reply(text='{"reasoning": "direct", "score": 4}')
    return Reply(
        text=json.dumps(
            {"verdicts": [{"index": 1, "useful": True}, {"index": 2, "useful": False}, {"index": 3, "useful": True}]}
        )
    )


def test_average_precision_by_hand() -> None:
    assert average_precision([True, False, True]) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision([False, True]) == pytest.approx(0.5)
    assert average_precision([False, False]) is None


async def test_llm_rag_metrics_follow_the_verdicts(tmp_path: Path) -> None:
    with FakeProvider(scripted) as fake:
        reg = JudgeRegistry(make_settings(tmp_path, fake.url), None)
        judge = reg.resolve("openai", None, None)
        with anyio.fail_after(10):
            out = await evaluate_rag(
                judge,
                "What is the capital of France?",
                "Paris. Berlin is in France.",
                CONTEXTS,
                reference="Paris, in Europe",
            )
        await reg.aclose()
    assert out["faithfulness"]["score"] == 0.5  # supported, contradicted
    assert [c["verdict"] for c in out["faithfulness"]["claims"]] == ["supported", "contradicted"]
    assert out["answer_relevance"]["score"] == 0.75
    assert out["context_precision"]["score"] == pytest.approx((1 + 2 / 3) / 2)
    assert out["context_recall"]["score"] == pytest.approx(1 / 3)
    assert {out[k]["method"] for k in out} == {"llm_judge:openai"}


async def test_heuristic_rag_is_labelled_and_needs_reference_for_context_metrics() -> None:
    out = await evaluate_rag(
        HeuristicJudge(), "capital of France?", "Paris is the capital of France. Cats fly.", CONTEXTS
    )
    assert out["faithfulness"]["method"] == "heuristic"
    assert [c["verdict"] for c in out["faithfulness"]["claims"]] == ["supported", "unsupported"]
    assert out["context_precision"]["score"] is None and "reference" in out["context_precision"]["note"]


async def test_rag_rejects_missing_contexts() -> None:
    with pytest.raises(InvalidInputError, match="contexts is empty"):
        await evaluate_rag(HeuristicJudge(), "q", "a", [])
