"""Comparing two stored runs over the items they share (paired by item id).

Per-item scores (every metric's item value, judge overall and per-criterion scores) get the mean of each run, the
delta (b - a) and two paired tests from `agreement.py` (scipy bootstrap CI and p-value, scipy sign-flip permutation
p-value). Corpus BLEU, chrF and TER get sacrebleu's paired bootstrap resampling and approximate randomization
(`significance.py`), recomputed on the shared items from the stored predictions, when both runs stored their texts,
used the same references and the same metric options. Whatever cannot be compared is `null` with a warning that says
why. Other corpus scores (ROUGE means, WER/CER) are listed side by side without a test. Never imports `mcp`.
"""

from __future__ import annotations

from typing import Any

from mcp_eval_server import agreement, significance
from mcp_eval_server.errors import InvalidInputError
from mcp_eval_server.inputs import MetricOptions
from mcp_eval_server.metrics import parse_options
from mcp_eval_server.result_warnings import ResultWarning, warning
from mcp_eval_server.store import Store
from mcp_eval_server.translation import SACREBLEU_METRICS


def flat_scores(item: dict[str, Any]) -> dict[str, float]:
    """An item's numbers by name: each metric, `judge_overall` and `judge:<criterion>`."""
    flat = dict(item.get("metrics", {}))
    judged = item.get("judge") or {}
    if "overall" in judged:
        flat["judge_overall"] = judged["overall"]
        flat |= {f"judge:{k}": float(v) for k, v in judged["scores"].items()}
    return flat


def _per_item(items_a: dict, items_b: dict, shared: list[str], n_resamples: int, seed: int) -> dict[str, Any]:
    flat_a = {i: flat_scores(items_a[i]) for i in shared}
    flat_b = {i: flat_scores(items_b[i]) for i in shared}
    keys = sorted({k for i in shared for k in flat_a[i]} & {k for i in shared for k in flat_b[i]})
    out = {}
    for key in keys:
        pairs = [(flat_a[i][key], flat_b[i][key]) for i in shared if key in flat_a[i] and key in flat_b[i]]
        if len(pairs) < 2:
            continue
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
    return out


def _options(head: dict[str, Any]) -> MetricOptions:
    return parse_options({k: v for k, v in (head["task"].get("options") or {}).items() if v is not None})


def _corpus_tests(
    head_a: dict, head_b: dict, items_a: dict, items_b: dict, shared: list[str]
) -> tuple[dict[str, Any], list[ResultWarning]]:
    corpus_a, corpus_b = head_a["summary"]["corpus"], head_b["summary"]["corpus"]
    names = [n for n in SACREBLEU_METRICS if n in corpus_a and n in corpus_b]
    side_by_side = {
        k: {"a": corpus_a[k], "b": corpus_b[k]}
        for k in sorted(corpus_a.keys() & corpus_b.keys())
        if not k.endswith("_signature") and k not in names
    }
    if not names:
        return side_by_side, []
    blank = {
        n: {
            "a": corpus_a[n],
            "b": corpus_b[n],
            "p_value_paired_bootstrap": None,
            "p_value_approximate_randomization": None,
        }
        for n in names
    }
    texts = all("prediction" in items_a[i] and "prediction" in items_b[i] for i in shared)
    if not texts:
        why = "one of the runs was stored without its texts (by an older version); run it again to test corpus scores"
        return side_by_side | blank, [warning("not_comparable", f"corpus {', '.join(names)}: {why}.")]
    differ = [i for i in shared if items_a[i]["references"] != items_b[i]["references"]]
    if differ:
        why = f"the runs have different references for items {differ[:5]}, so their corpus scores measure other things"
        return side_by_side | blank, [warning("not_comparable", f"corpus {', '.join(names)}: {why}.")]
    if len(shared) > significance.MAX_ITEMS:
        why = f"{len(shared)} shared items is over the {significance.MAX_ITEMS} the corpus tests hold in memory"
        return side_by_side | blank, [warning("not_comparable", f"corpus {', '.join(names)}: {why}; compare a sample.")]
    opts_a, opts_b = _options(head_a), _options(head_b)
    same = significance.same_options(names, opts_a, opts_b)
    found = [
        warning(
            "not_comparable",
            f"corpus {n}: the runs used different {n} options, so their scores are not comparable; no test.",
        )
        for n in names
        if not same[n]
    ]
    testable = [n for n in names if same[n]]
    tested = {}
    if testable:
        tested = significance.paired_corpus_tests(
            testable,
            [items_a[i]["prediction"] for i in shared],
            [items_b[i]["prediction"] for i in shared],
            [items_a[i]["references"] for i in shared],
            opts_a,
        )
    n_a = head_a["n_items"]
    if len(shared) < max(n_a, head_b["n_items"]):
        found.append(
            warning(
                "partial_overlap",
                f"corpus tests use the {len(shared)} items both runs share (run a has {n_a}, run b "
                f"{head_b['n_items']}), so their a/b scores differ from the stored corpus scores.",
            )
        )
    return side_by_side | blank | tested, found


def compare_runs(store: Store, run_a: str, run_b: str, n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Per-metric means, delta (b - a) and paired tests over items with the same id; corpus tests for sacrebleu.

    Raises:
        RunNotFoundError: either id is unknown.
        InvalidInputError: the runs share fewer than 2 items.
    """
    head_a, head_b = store.get_run(run_a), store.get_run(run_b)
    items_a = {it["id"]: it for it in store.get_items(run_a)}
    items_b = {it["id"]: it for it in store.get_items(run_b)}
    shared = [i for i in items_a if i in items_b]
    if len(shared) < 2:
        raise InvalidInputError(f"runs share {len(shared)} item ids; a paired comparison needs at least 2")
    corpus, found = _corpus_tests(head_a, head_b, items_a, items_b, shared)
    return {
        "run_a": run_a,
        "run_b": run_b,
        "paired_items": len(shared),
        "metrics": _per_item(items_a, items_b, shared, n_resamples, seed),
        "corpus": corpus,
        "test": f"per item: scipy bootstrap and sign-flip permutation, {n_resamples} resamples, seed {seed}; "
        "corpus bleu/chrf/ter: sacrebleu paired bootstrap (1000) and approximate randomization (10000), seed 12345; "
        "delta = b - a",
        "warnings": found,
    }
