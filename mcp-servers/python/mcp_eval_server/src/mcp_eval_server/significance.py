"""Is run B's corpus BLEU/chrF/TER really different from run A's? sacrebleu's own paired tests answer it.

A corpus metric is not a mean of per-item values, so a per-item test cannot say whether corpus BLEU moved. This
module runs `sacrebleu.significance.PairedTest` twice over the items both runs share: paired bootstrap resampling
(1000 resamples, as `sacrebleu --paired-bs`, with each system's bootstrap mean and 95% CI half-width) and paired
approximate randomization (10000 trials, as `sacrebleu --paired-ar`). The metric objects carry the runs' own
options, and sacrebleu's signatures (with `bs:`/`ar:` and its fixed `seed:12345`) are returned so the numbers can be
reproduced with the sacrebleu CLI. Runs are comparable only when they used the same texts' references and the same
metric options; otherwise the metric gets `null` values and a reason. Never imports `mcp`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sacrebleu.significance import PairedTest, Result

from mcp_eval_server.inputs import MetricOptions
from mcp_eval_server.translation import metric_objects, metric_settings, reference_streams

MAX_ITEMS = 5_000  # approximate randomization holds a trials x items matrix in memory (10000 x 5000 floats = 400 MB)
_P_VALUE_KEY = {"bs": "p_value_paired_bootstrap", "ar": "p_value_approximate_randomization"}
logging.getLogger("sacrebleu").setLevel(logging.WARNING)  # its per-step INFO lines would flood the server log


def same_options(names: Sequence[str], opts_a: MetricOptions, opts_b: MetricOptions) -> dict[str, bool]:
    """For each metric, whether both runs used the options that decide its value (hence the same signature)."""
    return {n: metric_settings(n, opts_a) == metric_settings(n, opts_b) for n in names}


def paired_corpus_tests(
    names: Sequence[str],
    hyps_a: Sequence[str],
    hyps_b: Sequence[str],
    refs: Sequence[Sequence[str]],
    opts: MetricOptions,
) -> dict[str, dict[str, Any]]:
    """Per metric: corpus scores of A and B on these items, delta (B - A), both p-values, bootstrap CIs, signatures.

    Raises:
        InvalidInputError: a metric option sacrebleu refuses.
    """
    streams = reference_streams(refs)
    out: dict[str, dict[str, Any]] = {n: {"n_pairs": len(hyps_a)} for n in names}
    for test_type in ("bs", "ar"):
        test = PairedTest(
            [("a", list(hyps_a)), ("b", list(hyps_b))],
            {n: metric_objects(n, opts) for n in names},
            streams,
            test_type=test_type,
        )
        signatures, scores = test()
        labels = [k for k in scores if k != "System"]
        for name, label in zip(names, labels, strict=True):
            base, system = (r for r in scores[label] if isinstance(r, Result))
            entry = out[name]
            entry |= {"a": base.score, "b": system.score, "delta": system.score - base.score}
            entry[_P_VALUE_KEY[test_type]] = system.p_value
            entry[f"signature_{test_type}"] = str(signatures[label])
            if test_type == "bs":
                entry |= {"a_bootstrap_mean": base.mean, "a_ci95_halfwidth": base.ci}
                entry |= {"b_bootstrap_mean": system.mean, "b_ci95_halfwidth": system.ci}
    for entry in out.values():
        entry["test"] = "sacrebleu paired bootstrap resampling (1000 resamples) and approximate randomization (10000 "
        entry["test"] += "trials), seed 12345; two-sided; delta = b - a"
        for key, value in list(entry.items()):
            if hasattr(value, "item"):  # numpy scalars from sacrebleu
                entry[key] = value.item()
    return out
