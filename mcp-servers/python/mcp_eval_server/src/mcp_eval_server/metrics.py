"""Reference-based text metrics that equal the reference libraries to the last digit, behind one entry point.

BLEU, chrF and TER come from sacrebleu (`translation.py`), WER and CER from jiwer (`error_rates.py`), exact match,
token F1 and SQuAD v2 follow the official SQuAD scripts (`squad.py`), ROUGE comes from rouge-score with a
Unicode-aware tokenizer (the default one drops every non-ASCII character, so "Привет мир" against itself scores
0.0), and edit distance from rapidfuzz. This module validates the input once, dispatches, and gathers the
`warnings` each metric raises (see `result_warnings.py`).

Contract: on ASCII text our ROUGE tokenizer yields exactly the tokens of rouge-score's default tokenizer, so scores
are identical there. Scales are each library's own: sacrebleu and the SQuAD v2 script 0-100, everything else 0-1;
each metric says which. This module never imports `mcp` and never does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from rapidfuzz.distance import Levenshtein
from rouge_score import rouge_scorer, tokenizers

from mcp_eval_server.error_rates import ERROR_RATE_METRICS, error_rate
from mcp_eval_server.errors import InvalidInputError
from mcp_eval_server.inputs import MetricOptions
from mcp_eval_server.result_warnings import ResultWarning
from mcp_eval_server.squad import exact_match, normalize_answer, squad_v2, token_f1
from mcp_eval_server.strict_arguments import closest, suggest
from mcp_eval_server.translation import SACREBLEU_METRICS, sacrebleu_metric

__all__ = ["ALL_METRICS", "UnicodeTokenizer", "compute_metrics", "exact_match", "normalize_answer", "token_f1"]

ROUGE_METRICS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
SQUAD_METRICS = ("exact_match", "f1", "squad_v2")
EDIT_METRICS = ("levenshtein", "normalized_similarity")
MAX_ITEMS = 200_000
ALL_METRICS = SACREBLEU_METRICS + ROUGE_METRICS + SQUAD_METRICS + ERROR_RATE_METRICS + EDIT_METRICS
# metrics that accept an item with no reference at all (an unanswerable question)
_NO_REFERENCE_OK = {"squad_v2"}

# Han, Hiragana, Katakana and Thai have no spaces between words: each character becomes a token, the usual
# practice for ROUGE on these scripts, so a partial overlap does not collapse to one giant token.
_UNSPACED = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f])")
_NON_WORD = re.compile(r"[\W_]+")
_ASCII_TOKEN = re.compile(r"^[a-z0-9]+$")


class UnicodeTokenizer(tokenizers.Tokenizer):
    """rouge-score tokenizer that keeps letters of every script.

    On ASCII input it reproduces `rouge_score.tokenize.tokenize` token for token (lowercase, split on anything
    that is not a letter or digit, Porter-stem ASCII tokens longer than 3 characters when asked).
    """

    def __init__(self, use_stemmer: bool = False) -> None:
        self._stemmer = tokenizers.DefaultTokenizer(use_stemmer=True)._stemmer if use_stemmer else None

    def tokenize(self, text: str) -> list[str]:
        text = _UNSPACED.sub(r" \1 ", text.lower())
        tokens = [t for t in _NON_WORD.split(text) if t]
        if self._stemmer is None:
            return tokens
        return [self._stemmer.stem(t) if len(t) > 3 and _ASCII_TOKEN.match(t) else t for t in tokens]


def parse_options(options: dict[str, Any] | MetricOptions | None) -> MetricOptions:
    """Options as a `MetricOptions`; an unknown key is refused with the closest valid name.

    Raises:
        InvalidInputError: an unknown option or a value of the wrong type.
    """
    if isinstance(options, MetricOptions):
        return options
    raw = dict(options or {})
    unknown = [k for k in raw if k not in MetricOptions.model_fields]
    if unknown:
        raise InvalidInputError("options: " + suggest(unknown[0], MetricOptions.model_fields))
    try:
        return MetricOptions.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInputError(f"options.{where}: {first['msg']}") from exc


def validate_inputs(predictions: Sequence[str], references: Sequence[Sequence[str]], metrics: Sequence[str]) -> None:
    """Check shapes and names before any work, so errors say what to fix.

    Raises:
        InvalidInputError: empty input, length mismatch, an item with no references, or an unknown metric.
    """
    if not predictions:
        raise InvalidInputError("predictions is empty: pass at least one prediction string")
    if len(predictions) > MAX_ITEMS:
        raise InvalidInputError(f"{len(predictions)} predictions is over the limit of {MAX_ITEMS}; split the corpus")
    if len(predictions) != len(references):
        raise InvalidInputError(
            f"predictions has {len(predictions)} items but references has {len(references)}: "
            "pass one list of reference strings per prediction"
        )
    unknown = sorted(set(metrics) - set(ALL_METRICS))
    if unknown or not metrics:
        close = closest(unknown[0], ALL_METRICS) if unknown else None
        hint = f" (did you mean {close!r}?)" if close else ""
        raise InvalidInputError(f"unknown or missing metrics {unknown}{hint}; choose from {list(ALL_METRICS)}")
    needs_reference = sorted(set(metrics) - _NO_REFERENCE_OK)
    for i, refs in enumerate(references):
        if isinstance(refs, str):
            raise InvalidInputError(f'references[{i}] must be a list of strings, e.g. ["the answer"]')
        if not refs and needs_reference:
            raise InvalidInputError(
                f'references[{i}] must be a non-empty list of strings, e.g. ["the answer"]: {needs_reference} need '
                "a reference (only squad_v2 reads an empty list as an unanswerable question)"
            )


def _rouge(types: list[str], preds: Sequence[str], refs: Sequence[Sequence[str]], stem: bool, limit: int) -> dict:
    """Mean precision/recall/F over items; each item takes the reference with the best F (rouge-score `score_multi`)."""
    scorer = rouge_scorer.RougeScorer(
        types,
        use_stemmer=stem,
        tokenizer=UnicodeTokenizer(stem),
    )
    sums = {t: [0.0, 0.0, 0.0] for t in types}
    per_item: dict[str, list[float]] = {t: [] for t in types}
    for i, (pred, ref) in enumerate(zip(preds, refs, strict=True)):
        scores = scorer.score_multi(list(ref), pred) if len(ref) > 1 else scorer.score(ref[0], pred)
        for t in types:
            s = scores[t]
            acc = sums[t]
            acc[0] += s.precision
            acc[1] += s.recall
            acc[2] += s.fmeasure
            if i < limit:
                per_item[t].append(s.fmeasure)
    n = len(preds)
    return {
        t: {
            "score": sums[t][2] / n,
            "precision": sums[t][0] / n,
            "recall": sums[t][1] / n,
            "scale": "0-1",
            "tokenizer": "unicode (rouge-score default on ASCII; keeps all scripts; CJK/Thai per character)",
            "per_item": per_item[t],
        }
        for t in types
    }


def _per_item_metric(name: str, preds: Sequence[str], refs: Sequence[Sequence[str]], limit: int) -> dict[str, Any]:
    fn = {
        "exact_match": exact_match,
        "f1": token_f1,
        "levenshtein": lambda p, rs: float(min(Levenshtein.distance(p, r) for r in rs)),
        "normalized_similarity": lambda p, rs: max(Levenshtein.normalized_similarity(p, r) for r in rs),
    }[name]
    values = [fn(p, r) for p, r in zip(preds, refs, strict=True)]
    method = {
        "exact_match": "SQuAD v1.1 normalisation, max over references",
        "f1": "SQuAD v1.1 token F1, max over references",
        "levenshtein": "rapidfuzz Levenshtein distance (characters), min over references",
        "normalized_similarity": "rapidfuzz Levenshtein normalized similarity, max over references",
    }[name]
    scale = "characters" if name == "levenshtein" else "0-1"
    return {"score": sum(values) / len(values), "scale": scale, "method": method, "per_item": values[:limit]}


def compute_metrics(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    metrics: Sequence[str],
    options: dict[str, Any] | MetricOptions | None = None,
) -> dict[str, Any]:
    """Compute the requested metrics; per-item values are returned for the first `per_item_limit` items only.

    Options (`MetricOptions`): `tokenize` (sacrebleu BLEU tokenizer, default 13a), `lowercase`, `chrf_word_order`
    (2 gives chrF++), TER's `normalized`, `asian_support`, `case_sensitive`, `no_punct`, `use_stemmer` (ROUGE),
    `per_item_limit` (default 100, 0 disables per-item values).

    Raises:
        InvalidInputError: see `validate_inputs` and `parse_options`; also an option sacrebleu refuses.
    """
    opts = parse_options(options)
    validate_inputs(predictions, references, metrics)
    limit = opts.per_item_limit
    preds = list(predictions)
    refs = [list(r) for r in references]
    out: dict[str, Any] = {}
    warnings: list[ResultWarning] = []
    for name in SACREBLEU_METRICS:
        if name in metrics:
            out[name], found = sacrebleu_metric(name, preds, refs, opts, limit)
            warnings += found
    for name in ERROR_RATE_METRICS:
        if name in metrics:
            out[name], found = error_rate(name, preds, refs, limit)
            warnings += found
    rouge_types = [t for t in ROUGE_METRICS if t in metrics]
    if rouge_types:
        out |= _rouge(rouge_types, preds, refs, opts.use_stemmer, limit)
    if "squad_v2" in metrics:
        out["squad_v2"] = squad_v2(preds, refs, limit)
    for name in ("exact_match", "f1", *EDIT_METRICS):
        if name in metrics:
            out[name] = _per_item_metric(name, preds, refs, limit)
    n = len(preds)
    returned = min(n, limit)
    return {
        "metrics": out,
        "total_items": n,
        "returned_items": returned,
        "truncated": returned < n,
        "warnings": warnings,
    }
