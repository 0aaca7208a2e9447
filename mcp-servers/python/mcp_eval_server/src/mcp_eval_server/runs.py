"""Batch evaluation runs: a dataset x a task, evaluated once and stored.

A run = a dataset (JSONL under an allowed root, or inline records) x a task (reference metrics and/or judge
criteria). Metrics are computed once over the whole set (so corpus BLEU is a true corpus score); judge calls run with
bounded concurrency and report progress after every item through an injected callback. A judge failure on one item
is recorded on that item, counted in the summary and raised as a warning, and the run goes on; an unavailable judge
stops the run before any work. Each stored item keeps its prediction and references, so `comparison.py` can run
sacrebleu's paired corpus tests later. Record fields the run does not read are reported (a misspelt `refrence` would
otherwise silently judge without a reference).
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from mcp_eval_server import metrics
from mcp_eval_server.comparison import compare_runs, flat_scores
from mcp_eval_server.errors import DatasetError, InvalidInputError, JudgeFailedError
from mcp_eval_server.judges.base import Criterion, Judge, gather
from mcp_eval_server.judgments import judge_response, resolve_criteria
from mcp_eval_server.result_warnings import ResultWarning, merge, warning
from mcp_eval_server.store import Store
from mcp_eval_server.strict_arguments import suggest

__all__ = ["compare_runs", "load_dataset", "run_eval"]

Progress = Callable[[float, float, str], Awaitable[None]]
MAX_ITEMS = 100_000
MAX_INLINE_ITEMS = 10_000


def load_dataset(dataset: str | list[dict[str, Any]], roots: list[Path]) -> list[dict[str, Any]]:
    """Records from inline data or a JSONL file that resolves (symlinks included) inside one of `roots`.

    Raises:
        DatasetError: path outside the roots, unreadable, bad JSON line, or too many records.
    """
    if isinstance(dataset, list):
        if len(dataset) > MAX_INLINE_ITEMS:
            raise DatasetError(f"inline dataset has {len(dataset)} records; over {MAX_INLINE_ITEMS} use a JSONL file")
        return _unique_ids([_record(r, i) for i, r in enumerate(dataset)])
    path = Path(dataset).expanduser().resolve()
    if not any(path.is_relative_to(root) for root in roots):
        raise DatasetError(
            f"{path} is outside the allowed data roots {[str(r) for r in roots]}; set MCP_EVAL_DATA_ROOTS"
        )
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from exc
    records: list[dict[str, Any]] = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                records.append(_record(json.loads(line), len(records)))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{n} is not valid JSON ({exc.msg})") from exc
    if not records or len(records) > MAX_ITEMS:
        raise DatasetError(f"{path} has {len(records)} records; need 1 to {MAX_ITEMS}")
    return _unique_ids(records)


def _unique_ids(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs are compared by item id, so a repeated id would silently pair the wrong items."""
    seen: set[str] = set()
    for rec in records:
        if rec["id"] in seen:
            raise DatasetError(f"record id {rec['id']!r} occurs twice; ids must be unique within a dataset")
        seen.add(rec["id"])
    return records


RECORD_FIELDS: tuple[str, ...] = ("id", "prediction", "response", "output", "references", "reference", "prompt")
RECORD_FIELDS += ("input", "question", "context")


def _record(raw: Any, index: int) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise DatasetError(f"record {index} must be an object")
    pred = raw.get("prediction", raw.get("response", raw.get("output")))
    if not isinstance(pred, str):
        raise DatasetError(f"record {index} needs a string 'prediction' (or 'response'/'output')")
    refs = raw.get("references", raw.get("reference"))
    refs = [refs] if isinstance(refs, str) else refs
    return {
        "id": str(raw.get("id", index)),
        "prediction": pred,
        "references": refs,
        "prompt": raw.get("prompt", raw.get("input", raw.get("question"))),
        "context": raw.get("context"),
        "extra_fields": [k for k in raw if k not in RECORD_FIELDS],
    }


def _field_warnings(records: list[dict[str, Any]]) -> list[ResultWarning]:
    extra = sorted({k for r in records for k in r["extra_fields"]})
    if not extra:
        return []
    hints = "; ".join(suggest(k, RECORD_FIELDS).split(" Valid")[0].replace("argument", "field") for k in extra[:5])
    return [
        warning(
            "unknown_record_fields",
            f"dataset records carry fields the run does not read ({hints}); rename them if they were meant as "
            f"one of {', '.join(RECORD_FIELDS)}.",
        )
    ]


def _metric_values(
    records: list[dict[str, Any]], names: list[str], options: dict[str, Any]
) -> tuple[list[dict], dict, list[ResultWarning]]:
    """Per-item values, corpus-level scores and warnings for all records in one library call per metric."""
    if not names:
        return [{} for _ in records], {}, []
    missing = [r["id"] for r in records if r["references"] is None]
    if missing and set(names) - {"squad_v2"}:
        raise DatasetError(
            f"metrics need 'references' (or 'reference') on every record; records {missing[:5]} have none "
            "(only squad_v2 reads a missing reference as an unanswerable question)"
        )
    computed = metrics.compute_metrics(
        [r["prediction"] for r in records],
        [r["references"] or [] for r in records],
        names,
        options | {"per_item_limit": len(records)},
    )
    out = computed["metrics"]
    per_item = [{name: out[name]["per_item"][i] for name in names} for i in range(len(records))]
    corpus = {name: out[name]["score"] for name in names}
    corpus |= {f"{name}_signature": out[name]["signature"] for name in names if "signature" in out[name]}
    return per_item, corpus, computed["warnings"]


async def _judge_all(
    judge: Judge, records: list[dict], criteria: list[Criterion], concurrency: int, progress: Progress
) -> list[dict]:
    """Judge every record; a failed item records its error, a pending one (stateless sampling) waits for the retry."""
    done = 0

    async def one(rec: dict[str, Any]) -> dict[str, Any]:
        nonlocal done
        ref = rec["references"][0] if rec["references"] else None
        try:
            verdict = await judge_response(judge, rec["prediction"], criteria, rec["prompt"], rec["context"], ref)
            result = {"overall": verdict["overall"], "scores": {s["criterion"]: s["score"] for s in verdict["scores"]}}
        except JudgeFailedError as exc:
            result = {"error": str(exc)}
        done += 1
        await progress(done, len(records), f"judged item {rec['id']}")
        return result

    return await gather([functools.partial(one, rec) for rec in records], limit=concurrency)


def _judge_warnings(errors: list[str], n: int) -> list[ResultWarning]:
    if not errors:
        return []
    found = [
        warning(
            "judge_failed",
            f"the judge gave no verdict for {len(errors)} of {n} items, so judge means cover the other "
            f"{n - len(errors)} only; get_run shows each item's error (first: {errors[0]})",
        )
    ]
    timed_out = sum("deadline" in e for e in errors)
    if timed_out:
        found.append(
            warning(
                "deadline_exceeded",
                f"{timed_out} judge calls hit the total deadline (MCP_EVAL_TIMEOUT_S); check the provider or raise it.",
            )
        )
    return found


def _means(items: list[dict[str, Any]]) -> dict[str, float]:
    sums: dict[str, list[float]] = {}
    for item in items:
        for key, value in flat_scores(item).items():
            sums.setdefault(key, []).append(value)
    return {k: sum(v) / len(v) for k, v in sums.items()}


async def run_eval(
    store: Store,
    dataset: str | list[dict[str, Any]],
    task: dict[str, Any],
    name: str | None,
    roots: list[Path],
    judge: Judge | None,
    default_concurrency: int,
    progress: Progress,
) -> dict[str, Any]:
    """Evaluate, store, and return the run summary (items are fetched with `get_run`).

    Raises:
        InvalidInputError / DatasetError: invalid task or dataset, before any judge call.
    """
    names = list(task.get("metrics") or [])
    wants_judge = bool(task.get("criteria") or task.get("rubric"))
    if not names and not wants_judge:
        raise InvalidInputError("task needs 'metrics' and/or judge 'criteria'/'rubric'")
    criteria = resolve_criteria(task.get("criteria"), task.get("rubric")) if wants_judge else []
    concurrency = int(task.get("concurrency") or default_concurrency)
    if not 1 <= concurrency <= 64:
        raise InvalidInputError("task.concurrency must be between 1 and 64")
    records = load_dataset(dataset, roots)
    started = time.perf_counter()
    await progress(0, len(records), "started")
    # A worker thread keeps the caller's event loop (and so the MCP session) responsive during long metric runs.
    work = functools.partial(_metric_values, records, names, dict(task.get("options") or {}))
    per_item, corpus, metric_warnings = await anyio.to_thread.run_sync(work)
    judged = await _judge_all(judge, records, criteria, concurrency, progress) if wants_judge and judge else None
    if judged is None:
        await progress(len(records), len(records), "metrics computed")
    items = [
        {
            "id": r["id"],
            "metrics": per_item[i],
            "judge": judged[i] if judged else None,
            "prediction": r["prediction"],
            "references": r["references"],
        }
        for i, r in enumerate(records)
    ]
    run_id = uuid.uuid4().hex[:12]
    errors = [it["judge"]["error"] for it in items if it["judge"] and "error" in it["judge"]]
    summary = {
        "means": _means(items),
        "corpus": corpus,
        "n_items": len(items),
        "judge_errors": len(errors),
        "judge": judge.describe() if judge and wants_judge else None,
        "usage": judge.usage.summary(max_calls=0) if judge and wants_judge else None,
        "duration_s": round(time.perf_counter() - started, 3),
        "warnings": merge(_field_warnings(records), metric_warnings, _judge_warnings(errors, len(items))),
    }
    store.save_run(run_id, name or f"run-{run_id}", task, summary, items)
    return {"run_id": run_id, "name": name or f"run-{run_id}", **summary}
