"""Runs in-process: dataset confinement, metric-only runs, per-item judge failures, stored results, comparison."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from mcp_eval_server.errors import DatasetError, InvalidInputError, RunNotFoundError
from mcp_eval_server.judges.registry import JudgeRegistry
from mcp_eval_server.metrics import compute_metrics
from mcp_eval_server.runs import compare_runs, load_dataset, run_eval
from mcp_eval_server.store import Store
from tests.conftest import make_settings
from tests.fake_provider import FakeProvider, Reply

pytestmark = pytest.mark.anyio
RECORDS = [
    {"id": "a", "prediction": "The cat sat.", "reference": "The cat sat."},
    {"id": "b", "prediction": "A dog ran", "references": ["The dog ran.", "Dogs run"]},
    {"id": "c", "prediction": "Nothing", "reference": "Something else"},
]


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[float, float, str]] = []

    async def __call__(self, done: float, total: float, message: str) -> None:
        self.events.append((done, total, message))


def test_jsonl_must_resolve_inside_the_roots_even_through_symlinks(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "d.jsonl").write_text(json.dumps(RECORDS[0]))
    (root / "link.jsonl").symlink_to(outside / "d.jsonl")
    (root / "ok.jsonl").write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n\n")
    assert [r["id"] for r in load_dataset(str(root / "ok.jsonl"), [root])] == ["a", "b", "c"]
    with pytest.raises(DatasetError, match="outside the allowed data roots"):
        load_dataset(str(root / "link.jsonl"), [root])
    (root / "bad.jsonl").write_text('{"prediction": "x"}\n{oops\n')
    with pytest.raises(DatasetError, match=r"bad\.jsonl:2 is not valid JSON"):
        load_dataset(str(root / "bad.jsonl"), [root])
    with pytest.raises(DatasetError, match="occurs twice"):
        load_dataset([{"id": 1, "prediction": "x"}, {"id": "1", "prediction": "y"}], [root])
    with pytest.raises(DatasetError, match="needs a string 'prediction'"):
        load_dataset([{"reference": "x"}], [root])


async def test_metric_only_run_stores_corpus_scores_equal_to_compute_metrics(tmp_path: Path) -> None:
    store, progress = Store(tmp_path / "r.sqlite3"), Recorder()
    task = {"metrics": ["bleu", "exact_match"]}
    with anyio.fail_after(10):
        run = await run_eval(store, RECORDS, task, "m", [tmp_path], None, 8, progress)
    direct = compute_metrics(
        [r["prediction"] for r in RECORDS],
        [["The cat sat."], ["The dog ran.", "Dogs run"], ["Something else"]],
        ["bleu", "exact_match"],
    )["metrics"]
    assert run["corpus"]["bleu"] == direct["bleu"]["score"]
    assert run["means"]["exact_match"] == pytest.approx(2 / 3)  # "A dog ran" = "The dog ran." after SQuAD normalisation
    assert progress.events[0][:2] == (0, 3) and progress.events[-1][:2] == (3, 3)
    stored = store.get_run(run["run_id"])
    assert stored["summary"]["corpus"]["bleu"] == direct["bleu"]["score"] and stored["task"] == task
    assert [i["metrics"]["exact_match"] for i in store.get_items(run["run_id"])] == [1.0, 1.0, 0.0]


async def test_a_failed_judge_item_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    ok = Reply(text='{"scores": {"accuracy": {"score": 4}}}')
    with FakeProvider() as fake:
        # item "b" gets garbage, also for its repair request (whose conversation still contains the response)
        fake.responder = lambda req: Reply(text="garbage") if "A dog ran" in json.dumps(req["body"]) else ok
        settings = make_settings(tmp_path, fake.url)
        store = Store(settings.db_path)
        reg = JudgeRegistry(settings, store)
        task = {"criteria": ["accuracy"], "concurrency": 3}
        with anyio.fail_after(10):
            run = await run_eval(
                store, RECORDS, task, None, [tmp_path], reg.resolve("openai", None, None), 8, Recorder()
            )
        await reg.aclose()
    items = store.get_items(run["run_id"])
    assert run["judge_errors"] == 1 and "invalid verdict twice" in items[1]["judge"]["error"]
    assert items[0]["judge"]["overall"] == 0.75 and run["means"]["judge_overall"] == 0.75
    assert run["usage"]["calls"] == 4


async def test_task_validation_happens_before_any_work(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.sqlite3")
    with pytest.raises(InvalidInputError, match="task needs"):
        await run_eval(store, RECORDS, {}, None, [tmp_path], None, 8, Recorder())
    with pytest.raises(DatasetError, match="need 'references'"):
        await run_eval(store, [{"prediction": "x"}], {"metrics": ["f1"]}, None, [tmp_path], None, 8, Recorder())
    with pytest.raises(RunNotFoundError):
        compare_runs(store, "x", "y")


async def test_failed_judge_items_and_misspelt_record_fields_are_warnings(tmp_path: Path) -> None:
    with FakeProvider() as fake:
        fake.responder = lambda req: Reply(text="garbage")
        settings = make_settings(tmp_path, fake.url)
        store = Store(settings.db_path)
        reg = JudgeRegistry(settings, store)
        records = [{"id": "a", "prediction": "x", "refrence": "y"}, {"id": "b", "prediction": "z"}]
        with anyio.fail_after(10):
            run = await run_eval(
                store,
                records,
                {"criteria": ["accuracy"]},
                None,
                [tmp_path],
                reg.resolve("openai", None, None),
                8,
                Recorder(),
            )
        await reg.aclose()
    codes = [w["code"] for w in run["warnings"]]
    assert codes == ["unknown_record_fields", "judge_failed"]
    assert "did you mean 'reference'" in run["warnings"][0]["message"]
    assert "no verdict for 2 of 2 items" in run["warnings"][1]["message"]
    assert store.get_run(run["run_id"])["summary"]["warnings"] == run["warnings"]


async def test_squad_v2_run_reads_a_missing_reference_as_unanswerable(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.sqlite3")
    records = [
        {"id": "q1", "prediction": "", "references": []},
        {"id": "q2", "prediction": "Paris", "reference": "Paris"},
        {"id": "q3", "prediction": "", "question": "unanswerable?"},
    ]
    with anyio.fail_after(10):
        run = await run_eval(store, records, {"metrics": ["squad_v2"]}, None, [tmp_path], None, 8, Recorder())
    assert run["corpus"]["squad_v2"] == 100.0 and run["means"]["squad_v2"] == 100.0
    with pytest.raises(DatasetError, match=r"records \['q3'\] have none"):
        await run_eval(store, records, {"metrics": ["squad_v2", "f1"]}, None, [tmp_path], None, 8, Recorder())
