"""Word and character error rates (WER, CER) through jiwer, with its default text transformation.

Corpus WER is jiwer's: total substitutions + deletions + insertions over the total reference words of all items
(not the mean of per-item rates); CER the same over characters. Both are 0 for a perfect match and can exceed 1
(insertions). jiwer's default transformation only strips and collapses whitespace: it does not lowercase or drop
punctuation, so "Hello" against "hello" is one substitution. These metrics take one reference per item: an item
with more is scored against its first reference and the result says so. An empty reference leaves the per-item
rate undefined; jiwer then reports 1 (non-empty prediction) or 0, and the result warns.
This module never imports `mcp` and never does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

import jiwer

from mcp_eval_server.result_warnings import ResultWarning, warning

ERROR_RATE_METRICS = ("wer", "cer")


def _items(indices: list[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:10])
    return shown + (f" and {len(indices) - 10} more" if len(indices) > 10 else "")


def error_rate(
    name: str, preds: Sequence[str], refs: Sequence[Sequence[str]], limit: int
) -> tuple[dict[str, Any], list[ResultWarning]]:
    """Corpus rate with its edit counts, per-item rates for the first `limit` items, and warnings."""
    firsts = [r[0] for r in refs]
    hyps = list(preds)
    corpus: Any = jiwer.process_words(firsts, hyps) if name == "wer" else jiwer.process_characters(firsts, hyps)
    score = float(corpus.wer if name == "wer" else corpus.cer)
    one = jiwer.wer if name == "wer" else jiwer.cer
    per_item = [float(one(r, h)) for r, h in zip(firsts[:limit], hyps[:limit], strict=True)]
    unit = "words" if name == "wer" else "characters"
    result: dict[str, Any] = {
        "score": score,
        "scale": "0-1 and above (edit operations per reference " + unit[:-1] + ")",
        "method": f"jiwer {version('jiwer')} process_{unit}, default transformation (whitespace only)",
        "substitutions": corpus.substitutions,
        "deletions": corpus.deletions,
        "insertions": corpus.insertions,
        "hits": corpus.hits,
        "per_item": per_item,
    }
    warnings: list[ResultWarning] = []
    multi = [i for i, r in enumerate(refs) if len(r) > 1]
    if multi:
        warnings.append(
            warning(
                "multiple_references",
                f"{name.upper()} takes one reference per item and used the first one of items {_items(multi)}, "
                "which have more; pass a single reference per item to choose it yourself.",
            )
        )
    empty = [i for i, r in enumerate(firsts) if not r.split()]
    if empty:
        warnings.append(
            warning(
                "empty_reference",
                f"items {_items(empty)} have an empty reference, where {name.upper()} is undefined per item; jiwer "
                "reports 1 for a non-empty prediction and 0 for an empty one. Remove them or give a reference.",
            )
        )
    return result, warnings
