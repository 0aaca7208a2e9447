"""Batch evaluation runs, their comparison, and judge calibration against human labels.

A run = a dataset (JSONL under an allowed root, or inline records) x a task (reference metrics and/or judge
criteria). Metrics are computed once over the whole set (so corpus BLEU is a true corpus score); judge calls run with
bounded concurrency and report progress after every item through an injected callback. A judge failure on one item
is recorded on that item and the run goes on; an unavailable judge stops the run before any work. Runs are stored
in SQLite and compared with paired tests over the items both runs share.
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

from mcp_eval_server import agreement, metrics
from mcp_eval_server.errors import DatasetError, InvalidInputError, JudgeFailedError
from mcp_eval_server.judges.base import Criterion, Judge, gather, parse_criteria
from mcp_eval_server.judgments import judge_response, resolve_criteria
from mcp_eval_server.store import Store

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
    }


def _metric_values(records: list[dict[str, Any]], names: list[str], options: dict[str, Any]) -> tuple[list[dict], dict]:
    """Per-item values and corpus-level scores for all records in one library call per metric."""
    if not names:
        return [{} for _ in records], {}
    if any(not r["references"] for r in records):
        raise DatasetError("metrics need 'references' (or 'reference') on every record")
    out = metrics.compute_metrics(
        [r["prediction"] for r in records],
        [r["references"] for r in records],
        names,
        options | {"per_item_limit": len(records)},
    )["metrics"]
    per_item = [{name: out[name]["per_item"][i] for name in names} for i in range(len(records))]
    corpus = {name: out[name]["score"] for name in names}
    corpus |= {f"{name}_signature": out[name]["signature"] for name in names if "signature" in out[name]}
    return per_item, corpus


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


def _means(items: list[dict[str, Any]]) -> dict[str, float]:
    sums: dict[str, list[float]] = {}
    for item in items:
        for key, value in _flat_scores(item).items():
            sums.setdefault(key, []).append(value)
    return {k: sum(v) / len(v) for k, v in sums.items()}


def _flat_scores(item: dict[str, Any]) -> dict[str, float]:
    flat = dict(item.get("metrics", {}))
    judged = item.get("judge") or {}
    if "overall" in judged:
        flat["judge_overall"] = judged["overall"]
        flat |= {f"judge:{k}": float(v) for k, v in judged["scores"].items()}
    return flat


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
    per_item, corpus = await anyio.to_thread.run_sync(work)
    judged = await _judge_all(judge, records, criteria, concurrency, progress) if wants_judge and judge else None
    if judged is None:
        await progress(len(records), len(records), "metrics computed")
    items = [
        {"id": r["id"], "metrics": per_item[i], "judge": judged[i] if judged else None} for i, r in enumerate(records)
    ]
    run_id = uuid.uuid4().hex[:12]
    summary = {
        "means": _means(items),
        "corpus": corpus,
        "n_items": len(items),
        "judge_errors": sum(1 for it in items if it["judge"] and "error" in it["judge"]),
        "judge": judge.describe() if judge and wants_judge else None,
        "usage": judge.usage.summary(max_calls=0) if judge and wants_judge else None,
        "duration_s": round(time.perf_counter() - started, 3),
    }
    store.save_run(run_id, name or f"run-{run_id}", task, summary, items)
    return {"run_id": run_id, "name": name or f"run-{run_id}", **summary}


def compare_runs(store: Store, run_a: str, run_b: str, n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Per-metric means, delta (b - a), paired bootstrap and permutation p-values over items with the same id.

    Raises:
        RunNotFoundError: either id is unknown.
        InvalidInputError: the runs share fewer than 2 items.
    """
    head_a, head_b = store.get_run(run_a), store.get_run(run_b)
    items_a = {it["id"]: _flat_scores(it) for it in store.get_items(run_a)}
    items_b = {it["id"]: _flat_scores(it) for it in store.get_items(run_b)}
    shared = [i for i in items_a if i in items_b]
    if len(shared) < 2:
        raise InvalidInputError(f"runs share {len(shared)} item ids; a paired comparison needs at least 2")
    keys = sorted({k for i in shared for k in items_a[i]} & {k for i in shared for k in items_b[i]})
    out = {}
    for key in keys:
        pairs = [(items_a[i][key], items_b[i][key]) for i in shared if key in items_a[i] and key in items_b[i]]
        diffs = [b - a for a, b in pairs]
        boot = agreement.paired_bootstrap(diffs, n_resamples, seed)
        out[key] = {
            "mean_a": sum(a for a, _ in pairs) / len(pairs),
            "mean_b": sum(b for _, b in pairs) / len(pairs),
            "delta": sum(diffs) / len(diffs),
            "n_pairs": len(pairs),
            "p_value_bootstrap": boot["p_value"],
            "delta_ci95": boot["ci95"],
            "p_value_permutation": agreement.sign_flip_permutation(diffs, n_resamples, seed),
        }
    corpus = {
        k: {"a": head_a["summary"]["corpus"][k], "b": head_b["summary"]["corpus"][k]}
        for k in head_a["summary"]["corpus"].keys() & head_b["summary"]["corpus"].keys()
        if not k.endswith("_signature")
    }
    return {
        "run_a": run_a,
        "run_b": run_b,
        "paired_items": len(shared),
        "metrics": out,
        "corpus": corpus,
        "test": f"paired bootstrap and sign-flip permutation, {n_resamples} resamples, seed {seed}; delta = b - a",
    }


async def calibrate_judge(
    judge: Judge | None, items: list[dict[str, Any]], criterion: dict[str, Any] | None, weights: str, concurrency: int
) -> dict[str, Any]:
    """Agreement of judge scores with human labels on one integer scale.

    Items carry `human_score` and either `response` (judged now) or `judge_score` (scored earlier).

    Raises:
        InvalidInputError: fewer than 2 items, missing fields, or `judge` needed but None.
    """
    if len(items) < 2:
        raise InvalidInputError("calibrate_judge needs at least 2 labelled items")
    crit = parse_criteria([criterion or {"name": "quality", "description": "overall quality", "scale": [1, 5]}])[0]
    judge_scores: list[float | None] = [it.get("judge_score") for it in items]

    async def one(it: dict[str, Any]) -> float:
        assert judge is not None
        verdict = await judge.score(it["response"], [crit], it.get("prompt"), it.get("context"), it.get("reference"))
        return verdict[crit.name]["score"]

    pending = [i for i, s in enumerate(judge_scores) if s is None]
    for i in pending:
        if not isinstance(items[i].get("response"), str):
            raise InvalidInputError(f"items[{i}] needs 'response' (to judge) or 'judge_score'")
    if pending and judge is None:
        raise InvalidInputError("some items lack judge_score and no judge is available to score them")
    scored = await gather([functools.partial(one, items[i]) for i in pending], limit=concurrency)
    for i, score in zip(pending, scored, strict=True):
        judge_scores[i] = score
    try:
        human = [float(it["human_score"]) for it in items]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError("every item needs a numeric 'human_score'") from exc
    scores = [float(s) for s in judge_scores if s is not None]
    return {
        "n": len(items),
        "criterion": crit.as_prompt(),
        "exact_agreement": sum(h == j for h, j in zip(human, scores, strict=True)) / len(items),
        "within_one": sum(abs(h - j) <= 1 for h, j in zip(human, scores, strict=True)) / len(items),
        "kappa": agreement.cohen_kappa(human, scores, "none"),
        "weighted_kappa": agreement.cohen_kappa(human, scores, weights),  # type: ignore[arg-type]
        "kappa_weights": weights,
        "spearman": agreement.spearman(human, scores),
        "pearson": agreement.pearson(human, scores),
        "mean_bias": sum(j - h for h, j in zip(human, scores, strict=True)) / len(items),
        "judge_scores": scores[:200],
        "judge": judge.describe() if judge else None,
        "usage": judge.usage.summary() if judge else None,
    }
