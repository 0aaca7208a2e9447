"""compare_runs: per-item tests from scipy, corpus BLEU/chrF/TER tests from sacrebleu, refusals with reasons."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import anyio
import pytest
from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.significance import PairedTest

from mcp_eval_server.comparison import compare_runs
from mcp_eval_server.runs import run_eval
from mcp_eval_server.store import Store

pytestmark = pytest.mark.anyio
WORDS = "the a cat dog sat on mat ran fast slow big small red blue".split()


async def _quiet(done: float, total: float, message: str) -> None:
    pass


def _systems(n: int = 60) -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(1)
    refs = [" ".join(rng.choices(WORDS, k=10)) for _ in range(n)]
    a = [" ".join(w if rng.random() < 0.6 else rng.choice(WORDS) for w in r.split()) for r in refs]
    b = [" ".join(w if rng.random() < 0.8 else rng.choice(WORDS) for w in r.split()) for r in refs]
    return refs, a, b


def _records(preds: list[str], refs: list[str]) -> list[dict[str, Any]]:
    return [{"id": f"s{i}", "prediction": p, "reference": r} for i, (p, r) in enumerate(zip(preds, refs, strict=True))]


async def _run(store: Store, preds: list[str], refs: list[str], tmp: Path, **options: Any) -> str:
    task = {"metrics": ["bleu", "chrf", "ter", "rougeL"], "options": options}
    with anyio.fail_after(30):
        return (await run_eval(store, _records(preds, refs), task, None, [tmp], None, 4, _quiet))["run_id"]


async def test_corpus_metrics_get_sacrebleus_paired_bootstrap_and_randomization(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite3")
    refs, a, b = _systems()
    out = compare_runs(store, await _run(store, a, refs, tmp_path), await _run(store, b, refs, tmp_path))
    metrics = {"bleu": BLEU(), "chrf": CHRF(), "ter": TER()}
    for test_type, key in (("bs", "p_value_paired_bootstrap"), ("ar", "p_value_approximate_randomization")):
        _, expected = PairedTest([("a", a), ("b", b)], metrics, [refs], test_type=test_type)()
        for name, label in (("bleu", "BLEU"), ("chrf", "chrF2"), ("ter", "TER")):
            assert out["corpus"][name][key] == expected[label][1].p_value
            assert out["corpus"][name]["b"] == expected[label][1].score
    assert out["corpus"]["bleu"]["a"] == BLEU().corpus_score(a, [refs]).score
    assert out["corpus"]["bleu"]["delta"] > 0 and out["corpus"]["bleu"]["p_value_paired_bootstrap"] < 0.01
    assert "bs:1000" in out["corpus"]["bleu"]["signature_bs"] and "ar:10000" in out["corpus"]["bleu"]["signature_ar"]
    assert set(out["corpus"]["rougeL"]) == {"a", "b"}  # not a sacrebleu metric: side by side only
    assert out["warnings"] == []
    assert out["metrics"]["bleu"]["p_value_permutation"] < 0.05  # per-item sentence BLEU, scipy


async def test_runs_with_different_options_are_not_tested_and_say_why(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite3")
    refs, a, b = _systems(20)
    run_a = await _run(store, a, refs, tmp_path)
    run_b = await _run(store, b, refs, tmp_path, tokenize="char")
    out = compare_runs(store, run_a, run_b)
    assert out["corpus"]["bleu"]["p_value_paired_bootstrap"] is None
    assert out["corpus"]["ter"]["p_value_paired_bootstrap"] is not None  # TER's options did not change
    assert [w["code"] for w in out["warnings"]] == ["not_comparable"]
    assert "bleu" in out["warnings"][0]["message"]


async def test_runs_stored_without_texts_say_so(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite3")
    refs, a, b = _systems(10)
    run_a, run_b = await _run(store, a, refs, tmp_path), await _run(store, b, refs, tmp_path)
    rows = store.conn.execute("SELECT run_id, idx, result FROM run_items").fetchall()
    for run_id, idx, result in rows:  # strip the texts, as runs stored by the previous version lack them
        item = {k: v for k, v in json.loads(result).items() if k not in ("prediction", "references")}
        store.conn.execute(
            "UPDATE run_items SET result = ? WHERE run_id = ? AND idx = ?", (json.dumps(item), run_id, idx)
        )
    out = compare_runs(store, run_a, run_b)
    assert out["corpus"]["bleu"]["p_value_approximate_randomization"] is None
    assert "stored without its texts" in out["warnings"][0]["message"]


async def test_partially_overlapping_runs_are_tested_on_the_shared_items(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite3")
    refs, a, b = _systems(30)
    out = compare_runs(store, await _run(store, a, refs, tmp_path), await _run(store, b[:20], refs[:20], tmp_path))
    assert out["paired_items"] == 20
    assert out["corpus"]["bleu"]["a"] == BLEU().corpus_score(a[:20], [refs[:20]]).score
    assert [w["code"] for w in out["warnings"]] == ["partial_overlap"]
