"""BLEU, chrF and TER through sacrebleu: corpus score, per-item sentence scores and the signature that reproduces them.

Every sacrebleu option a user can reach is passed through unchanged, so a number equals what `sacrebleu` prints
with the same options: BLEU `tokenize`/`lowercase`, chrF `word_order`/`lowercase`, TER `normalized`,
`asian_support`, `case_sensitive` and `no_punct`. A bad option is refused with sacrebleu's own message plus the
valid choices. Text in scripts written without spaces (Han, Kana, Hangul, Thai) is flagged when the chosen
tokenizer leaves it unsplit, because BLEU and TER then compare whole clauses as single words: BLEU 74.7 next to a
TER of 100 on the same Chinese sentences is that, not a bad system. `metric_objects` also builds the exact
metric objects the paired significance tests in `significance.py` need.
This module never imports `mcp` and never does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sacrebleu.metrics import BLEU, CHRF, TER

from mcp_eval_server.errors import InvalidInputError
from mcp_eval_server.inputs import MetricOptions
from mcp_eval_server.result_warnings import ResultWarning, warning

SACREBLEU_METRICS = ("bleu", "chrf", "ter")
_UNSPACED = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_SPLITTING_TOKENIZERS = {"zh", "char", "ja-mecab", "ko-mecab", "spm", "flores101", "flores200", "spBLEU-1K"}


def _bleu(opts: MetricOptions, sentence: bool) -> BLEU:
    try:
        return BLEU(tokenize=opts.tokenize, lowercase=bool(opts.lowercase), effective_order=sentence)
    except KeyError as exc:
        raise InvalidInputError(
            f"options.tokenize {opts.tokenize!r} is not a sacrebleu tokenizer (sacrebleu raised KeyError: {exc}); "
            f"choose one of {sorted(BLEU.TOKENIZERS)}"
        ) from exc
    except (ImportError, RuntimeError) as exc:
        raise InvalidInputError(
            f"options.tokenize {opts.tokenize!r} cannot run here; sacrebleu says: {' '.join(str(exc).split())}"
        ) from exc


def ter_case_sensitive(opts: MetricOptions) -> bool:
    """TER's case sensitivity: `case_sensitive` when given, else `not lowercase` when given, else sacrebleu's False.

    Raises:
        InvalidInputError: `lowercase` and `case_sensitive` are both given and say the same thing is both.
    """
    if opts.case_sensitive is not None:
        if opts.lowercase is not None and opts.lowercase == opts.case_sensitive:
            raise InvalidInputError(
                f"options.lowercase={opts.lowercase} and options.case_sensitive={opts.case_sensitive} contradict "
                "each other for TER; give only one of them"
            )
        return opts.case_sensitive
    return not opts.lowercase if opts.lowercase is not None else False


def metric_objects(name: str, opts: MetricOptions, sentence: bool = False) -> BLEU | CHRF | TER:
    """The sacrebleu metric for `name` with the user's options (sentence-level BLEU uses effective order).

    Raises:
        InvalidInputError: an option sacrebleu refuses (its message is included).
    """
    if name == "bleu":
        return _bleu(opts, sentence)
    if name == "chrf":
        return CHRF(word_order=opts.chrf_word_order, lowercase=bool(opts.lowercase))
    return TER(
        normalized=opts.normalized,
        no_punct=opts.no_punct,
        asian_support=opts.asian_support,
        case_sensitive=ter_case_sensitive(opts),
    )


def metric_settings(name: str, opts: MetricOptions) -> tuple[Any, ...]:
    """The options that decide `name`'s value: equal settings give equal sacrebleu signatures."""
    if name == "bleu":
        return (opts.tokenize or BLEU.TOKENIZER_DEFAULT, bool(opts.lowercase))
    if name == "chrf":
        return (opts.chrf_word_order, bool(opts.lowercase))
    return (opts.normalized, opts.no_punct, opts.asian_support, ter_case_sensitive(opts))


def reference_streams(refs: Sequence[Sequence[str]]) -> list[Any]:
    """sacrebleu's layout: one stream per reference slot, `None` where an item has fewer references."""
    width = max(len(r) for r in refs)
    return [[r[k] if k < len(r) else None for r in refs] for k in range(width)]


def _has_unspaced(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> bool:
    return any(_UNSPACED.search(t) for t in preds) or any(_UNSPACED.search(t) for r in refs for t in r)


def unsegmented_warnings(name: str, opts: MetricOptions, unspaced: bool) -> list[ResultWarning]:
    """Warn when CJK/Thai text meets a tokenizer that keeps each unspaced clause as one word."""
    if not unspaced:
        return []
    if name == "bleu" and (opts.tokenize or "13a") not in _SPLITTING_TOKENIZERS:
        return [
            warning(
                "unsegmented_text",
                f"BLEU used the {opts.tokenize or '13a'!r} tokenizer on text with Chinese, Japanese, Korean or Thai "
                "characters, which it does not split into words; pass options.tokenize='zh' (Chinese), "
                "'ja-mecab' (Japanese), 'ko-mecab' (Korean) or 'char'.",
            )
        ]
    if name == "ter" and not (opts.asian_support and opts.normalized):
        return [
            warning(
                "unsegmented_text",
                "TER compared Chinese, Japanese, Korean or Thai text without splitting it (each unspaced clause is one "
                "word, so scores near 100 are expected); pass options.asian_support=true and options.normalized=true.",
            )
        ]
    return []


def sacrebleu_metric(
    name: str, preds: Sequence[str], refs: Sequence[Sequence[str]], opts: MetricOptions, limit: int
) -> tuple[dict[str, Any], list[ResultWarning]]:
    """Corpus score (not the mean of sentence scores), sentence scores for the first `limit` items, signature.

    Raises:
        InvalidInputError: an option sacrebleu refuses.
    """
    metric = metric_objects(name, opts)
    corpus = metric.corpus_score(list(preds), reference_streams(refs))
    sentence_metric = metric_objects(name, opts, sentence=True)
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
    return result, unsegmented_warnings(name, opts, _has_unspaced(preds, refs))
