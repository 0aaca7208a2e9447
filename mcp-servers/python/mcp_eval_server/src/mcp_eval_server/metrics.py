"""Reference-based text metrics that equal the reference libraries to the last digit.

BLEU, chrF and TER come from sacrebleu (corpus score plus per-item sentence scores, with the signature, so a
number can be reproduced); ROUGE from rouge-score with a Unicode-aware tokenizer (the default one drops every
non-ASCII character, so "Привет мир" against itself scores 0.0); exact match and token F1 follow the SQuAD v1.1
evaluation script (max over references); edit distance comes from rapidfuzz.

Contract: on ASCII text our ROUGE tokenizer yields exactly the tokens of rouge-score's default tokenizer, so scores
are identical there. Scales are each library's own: sacrebleu 0-100, everything else 0-1; each metric says which.
This module never imports `mcp` and never does I/O.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Any

from rapidfuzz.distance import Levenshtein
from rouge_score import rouge_scorer, tokenizers
from sacrebleu.metrics import BLEU, CHRF, TER

from mcp_eval_server.errors import InvalidInputError

SACREBLEU_METRICS = ("bleu", "chrf", "ter")
ROUGE_METRICS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
SQUAD_METRICS = ("exact_match", "f1")
EDIT_METRICS = ("levenshtein", "normalized_similarity")
MAX_ITEMS = 200_000
ALL_METRICS = SACREBLEU_METRICS + ROUGE_METRICS + SQUAD_METRICS + EDIT_METRICS

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


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lowercase, drop punctuation and the articles a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_PUNCT = frozenset(string.punctuation)


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised reference (SQuAD `metric_max_over_ground_truths`)."""
    pred = normalize_answer(prediction)
    return max(float(pred == normalize_answer(ref)) for ref in references)


def _token_f1(prediction: str, reference: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    ref_tokens = normalize_answer(reference).split()
    common = Counter(pred_tokens) & Counter(ref_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(ref_tokens)
    return (2 * precision * recall) / (precision + recall)


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """SQuAD v1.1 token-overlap F1, max over references."""
    return max(_token_f1(prediction, ref) for ref in references)


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
    for i, refs in enumerate(references):
        if isinstance(refs, str) or not refs:
            raise InvalidInputError(f'references[{i}] must be a non-empty list of strings, e.g. ["the answer"]')
    unknown = sorted(set(metrics) - set(ALL_METRICS))
    if unknown or not metrics:
        raise InvalidInputError(f"unknown or missing metrics {unknown}; choose from {list(ALL_METRICS)}")


def _sacrebleu_metric(name: str, options: dict[str, Any], sentence: bool) -> BLEU | CHRF | TER:
    if name == "bleu":
        return BLEU(
            tokenize=options.get("tokenize"),
            lowercase=bool(options.get("lowercase", False)),
            effective_order=sentence,
        )
    if name == "chrf":
        return CHRF(word_order=int(options.get("chrf_word_order", 0)), lowercase=bool(options.get("lowercase", False)))
    # TER is case-insensitive by default in sacrebleu (BLEU and chrF are not); keep each library's default.
    return TER(case_sensitive=not options["lowercase"]) if "lowercase" in options else TER()


def _sacrebleu(
    name: str, preds: Sequence[str], refs: Sequence[Sequence[str]], opts: dict[str, Any], limit: int
) -> dict:
    """Corpus score (not the mean of sentence scores) plus sentence scores for the first `limit` items."""
    metric = _sacrebleu_metric(name, opts, sentence=False)
    width = max(len(r) for r in refs)
    # sacrebleu takes None for "no k-th reference for this item" (its type hints say otherwise)
    streams: list[Any] = [[r[k] if k < len(r) else None for r in refs] for k in range(width)]
    corpus = metric.corpus_score(list(preds), streams)
    sentence_metric = _sacrebleu_metric(name, opts, sentence=True)
    per_item = [
        sentence_metric.sentence_score(p, list(r)).score for p, r in zip(preds[:limit], refs[:limit], strict=True)
    ]
    result: dict[str, Any] = {
        "score": corpus.score,
        "scale": "0-100",
        "signature": str(metric.get_signature()),
        "per_item": per_item,
    }
    if name == "bleu":
        result |= {
            "precisions": corpus.precisions,
            "bp": corpus.bp,
            "sys_len": corpus.sys_len,
            "ref_len": corpus.ref_len,
        }
    return result


def _rouge(
    types: list[str], preds: Sequence[str], refs: Sequence[Sequence[str]], opts: dict[str, Any], limit: int
) -> dict:
    """Mean precision/recall/F over items; each item takes the reference with the best F (rouge-score `score_multi`)."""
    scorer = rouge_scorer.RougeScorer(
        types,
        use_stemmer=bool(opts.get("use_stemmer", False)),
        tokenizer=UnicodeTokenizer(bool(opts.get("use_stemmer"))),
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
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compute the requested metrics; per-item values are returned for the first `per_item_limit` items only.

    Options: `tokenize` (sacrebleu tokenizer, default 13a), `lowercase`, `chrf_word_order` (2 gives chrF++),
    `use_stemmer` (ROUGE), `per_item_limit` (default 100, 0 disables per-item values).

    Raises:
        InvalidInputError: see `validate_inputs`; also a bad option value.
    """
    opts = dict(options or {})
    validate_inputs(predictions, references, metrics)
    limit = opts.get("per_item_limit", 100)
    if not isinstance(limit, int) or limit < 0:
        raise InvalidInputError("options.per_item_limit must be a non-negative integer")
    preds = list(predictions)
    refs = [list(r) for r in references]
    out: dict[str, Any] = {}
    for name in SACREBLEU_METRICS:
        if name in metrics:
            out[name] = _sacrebleu(name, preds, refs, opts, limit)
    rouge_types = [t for t in ROUGE_METRICS if t in metrics]
    if rouge_types:
        out |= _rouge(rouge_types, preds, refs, opts, limit)
    for name in SQUAD_METRICS + EDIT_METRICS:
        if name in metrics:
            out[name] = _per_item_metric(name, preds, refs, limit)
    n = len(preds)
    returned = min(n, limit)
    return {"metrics": out, "total_items": n, "returned_items": returned, "truncated": returned < n}
