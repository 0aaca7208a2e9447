"""Question-answering metrics exactly as the official SQuAD evaluation scripts compute them.

v1.1 (`exact_match`, `f1`): answers are normalised (lowercase, punctuation and the articles a/an/the removed,
whitespace collapsed) and each prediction takes the max over its references; scores are 0-1 per item.

v2.0 (`squad_v2`): the same normalisation, plus no-answer handling. A question whose references are all empty after
normalisation (or given as `[]`) is unanswerable, and its only gold answer is the empty string; an empty prediction
means "no answer". Per item, exact is 1 when the normalised strings are equal; F1 is 1 when both sides have no
tokens, 0 when only one side has none, else token-overlap F1. The aggregate is reported as the v2.0 script prints
it: 100 x mean over all items (`exact`, `f1`), over answerable items (`HasAns_*`) and over unanswerable ones
(`NoAns_*`), with the counts. A subset with no items has `null` scores and a reason, where the script omits them.
This module never imports `mcp` and never does I/O.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Any

_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and the articles a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised reference (v1.1 `metric_max_over_ground_truths`)."""
    pred = normalize_answer(prediction)
    return max(float(pred == normalize_answer(ref)) for ref in references)


def _v1_f1(prediction: str, reference: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    ref_tokens = normalize_answer(reference).split()
    num_same = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(ref_tokens)
    return (2 * precision * recall) / (precision + recall)


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """SQuAD v1.1 token-overlap F1, max over references."""
    return max(_v1_f1(prediction, ref) for ref in references)


def _v2_f1(gold: str, prediction: str) -> float:
    gold_tokens = normalize_answer(gold).split() if gold else []
    pred_tokens = normalize_answer(prediction).split() if prediction else []
    if not gold_tokens or not pred_tokens:
        return float(gold_tokens == pred_tokens)
    num_same = sum((Counter(gold_tokens) & Counter(pred_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def v2_item(prediction: str, references: Sequence[str]) -> tuple[bool, float, float]:
    """(answerable, exact 0/1, f1 0-1) for one question, as the v2.0 script's `get_raw_scores`."""
    gold = [r for r in references if normalize_answer(r)]
    answerable = bool(gold)
    gold = gold or [""]
    exact = max(float(normalize_answer(g) == normalize_answer(prediction)) for g in gold)
    return answerable, exact, max(_v2_f1(g, prediction) for g in gold)


def _mean100(values: list[float]) -> float | None:
    return 100.0 * sum(values) / len(values) if values else None


def squad_v2(predictions: Sequence[str], references: Sequence[Sequence[str]], limit: int) -> dict[str, Any]:
    """The v2.0 script's evaluation dict (0-100) plus per-item F1 (0-100) for the first `limit` items."""
    rows = [v2_item(p, r) for p, r in zip(predictions, references, strict=True)]
    has = [r for r in rows if r[0]]
    no = [r for r in rows if not r[0]]
    out: dict[str, Any] = {
        "score": _mean100([r[2] for r in rows]),
        "exact": _mean100([r[1] for r in rows]),
        "f1": _mean100([r[2] for r in rows]),
        "total": len(rows),
        "HasAns_exact": _mean100([r[1] for r in has]),
        "HasAns_f1": _mean100([r[2] for r in has]),
        "HasAns_total": len(has),
        "NoAns_exact": _mean100([r[1] for r in no]),
        "NoAns_f1": _mean100([r[2] for r in no]),
        "NoAns_total": len(no),
        "scale": "0-100 (as the SQuAD v2.0 script prints it); score = f1",
        "method": "SQuAD v2.0: empty references = unanswerable, empty prediction = no answer; max over references",
        "per_item": [100.0 * r[2] for r in rows[:limit]],
        "per_item_exact": [100.0 * r[1] for r in rows[:limit]],
    }
    if not has:
        out["HasAns_note"] = "no answerable question in the input, so HasAns_exact and HasAns_f1 are undefined"
    if not no:
        out["NoAns_note"] = "no unanswerable question in the input, so NoAns_exact and NoAns_f1 are undefined"
    return out
