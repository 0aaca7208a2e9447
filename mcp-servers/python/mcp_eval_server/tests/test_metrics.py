"""Metrics equal the reference libraries called directly: published vectors, random text, non-Latin scripts."""

from __future__ import annotations

import random
import string

import pytest
from rapidfuzz.distance import Levenshtein
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF, TER

from mcp_eval_server.errors import InvalidInputError
from mcp_eval_server.metrics import UnicodeTokenizer, compute_metrics, exact_match, normalize_answer, token_f1

# sacrebleu README example
SYS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
REFS_STREAMS = [
    ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
    ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
]
REFS = [list(r) for r in zip(*REFS_STREAMS, strict=True)]


def test_bleu_equals_sacrebleu_readme_value_to_the_last_digit() -> None:
    out = compute_metrics(SYS, REFS, ["bleu"])["metrics"]["bleu"]
    assert round(out["score"], 6) == 48.530827
    assert out["score"] == BLEU().corpus_score(SYS, REFS_STREAMS).score
    assert out["signature"].startswith("nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp")


def test_chrf_equals_sacrebleu_readme_value() -> None:
    out = compute_metrics(SYS, REFS, ["chrf"])["metrics"]["chrf"]
    assert round(out["score"], 2) == 59.73
    assert out["score"] == CHRF().corpus_score(SYS, REFS_STREAMS).score


def test_ter_and_sentence_scores_equal_sacrebleu() -> None:
    out = compute_metrics(SYS, REFS, ["bleu", "chrf", "ter"])["metrics"]
    assert out["ter"]["score"] == TER().corpus_score(SYS, REFS_STREAMS).score
    sent_bleu = BLEU(effective_order=True)
    assert out["bleu"]["per_item"] == [sent_bleu.sentence_score(h, r).score for h, r in zip(SYS, REFS, strict=True)]
    assert out["chrf"]["per_item"] == [CHRF().sentence_score(h, r).score for h, r in zip(SYS, REFS, strict=True)]
    assert out["ter"]["per_item"] == [TER().sentence_score(h, r).score for h, r in zip(SYS, REFS, strict=True)]


def test_corpus_bleu_is_not_the_mean_of_sentence_bleu() -> None:
    out = compute_metrics(SYS, REFS, ["bleu"])["metrics"]["bleu"]
    assert out["score"] != pytest.approx(sum(out["per_item"]) / 3)


def test_variable_number_of_references_matches_sacrebleu_with_none_padding() -> None:
    refs = [["The dog bit the man.", "The dog had bit the man."], ["It was not unexpected."], REFS[2]]
    streams = [[r[0] for r in refs], ["The dog had bit the man.", None, REFS[2][1]]]
    assert compute_metrics(SYS, refs, ["bleu"])["metrics"]["bleu"]["score"] == BLEU().corpus_score(SYS, streams).score


def _random_text(rng: random.Random) -> str:
    words = ["".join(rng.choices(string.ascii_lowercase[:6], k=rng.randint(1, 4))) for _ in range(rng.randint(1, 15))]
    return " ".join(w.capitalize() if rng.random() < 0.2 else w for w in words) + rng.choice([".", "!", "", ","])


def test_random_text_equals_every_reference_library() -> None:
    rng = random.Random(7)
    preds = [_random_text(rng) for _ in range(60)]
    refs = [[_random_text(rng) for _ in range(rng.randint(1, 3))] for _ in range(60)]
    names = ["bleu", "chrf", "ter", "rouge1", "rouge2", "rougeL", "levenshtein", "normalized_similarity"]
    out = compute_metrics(preds, refs, names, {"per_item_limit": 60})["metrics"]
    width = max(len(r) for r in refs)
    streams = [[r[k] if k < len(r) else None for r in refs] for k in range(width)]
    assert out["bleu"]["score"] == BLEU().corpus_score(preds, streams).score
    assert out["chrf"]["score"] == CHRF().corpus_score(preds, streams).score
    assert out["ter"]["score"] == TER().corpus_score(preds, streams).score
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])  # rouge-score's own default tokenizer
    for kind in ("rouge1", "rouge2", "rougeL"):
        expected = [scorer.score_multi(r, p)[kind].fmeasure for p, r in zip(preds, refs, strict=True)]
        assert out[kind]["per_item"] == expected
        assert out[kind]["score"] == sum(expected) / len(expected)
    assert out["levenshtein"]["per_item"] == [
        min(Levenshtein.distance(p, x) for x in r) for p, r in zip(preds, refs, strict=True)
    ]
    sims = [max(Levenshtein.normalized_similarity(p, x) for x in r) for p, r in zip(preds, refs, strict=True)]
    assert out["normalized_similarity"]["per_item"] == sims


@pytest.mark.parametrize(
    ("target", "prediction", "kind", "p", "r", "f"),
    [  # rouge-score's unit-test vectors
        ("testing one two", "testing", "rouge1", 1, 1 / 3, 1 / 2),
        ("testing one two", "testing one", "rouge2", 1, 1 / 2, 2 / 3),
        ("testing one two", "testing two", "rougeL", 1, 2 / 3, 4 / 5),
        ("w1 w2 w3 w4 w5", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5", "rougeLsum", 0.4, 0.8, 0.5333333333333333),
    ],
)
def test_rouge_score_published_unit_cases(
    target: str, prediction: str, kind: str, p: float, r: float, f: float
) -> None:
    out = compute_metrics([prediction], [[target]], [kind])["metrics"][kind]
    assert out["precision"] == pytest.approx(p, abs=1e-12)
    assert out["recall"] == pytest.approx(r, abs=1e-12)
    assert out["score"] == pytest.approx(f, abs=1e-12)


def test_rouge_multi_reference_takes_best_f_like_score_multi() -> None:
    out = compute_metrics(["text first"], [["first text", "first something"]], ["rouge1", "rouge2", "rougeL"])
    assert [out["metrics"][k]["score"] for k in ("rouge1", "rouge2", "rougeL")] == [1.0, 0.0, 0.5]


@pytest.mark.parametrize("text", ["Привет мир", "你好世界", "こんにちは 世界", "مرحبا بالعالم", "Γειά σου Κόσμε"])
def test_rouge_of_identical_non_latin_strings_is_one(text: str) -> None:
    default = rouge_scorer.RougeScorer(["rouge1"]).score(text, text)["rouge1"].fmeasure
    assert default == 0.0  # the pitfall this tokenizer exists for
    out = compute_metrics([text], [[text]], ["rouge1", "rougeL"])["metrics"]
    assert out["rouge1"]["score"] == 1.0
    assert out["rougeL"]["score"] == 1.0


def test_cjk_partial_overlap_is_scored_per_character() -> None:
    out = compute_metrics(["你好世界"], [["你好朋友"]], ["rouge1"])["metrics"]["rouge1"]
    assert out["score"] == pytest.approx(0.5)


def test_unicode_tokenizer_matches_default_on_ascii_with_stemming() -> None:
    text = "The runners were running quickly_and happily; 42 dogs' barks!"
    default = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)._tokenizer.tokenize(text)
    assert UnicodeTokenizer(use_stemmer=True).tokenize(text) == default


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("The  Cat!", "cat"),
        ("an apple, a pear and the plum.", "apple pear and plum"),
        ("Theory of  everything", "theory of everything"),
        ("  A.B.C. ", "abc"),
    ],
)
def test_squad_normalisation(raw: str, normal: str) -> None:
    assert normalize_answer(raw) == normal


def test_exact_match_and_f1_take_the_max_over_references() -> None:
    assert exact_match("the Eiffel Tower", ["Big Ben", "Eiffel tower."]) == 1.0
    assert exact_match("Eiffel", ["Eiffel Tower"]) == 0.0
    # SQuAD F1: pred "eiffel tower paris" vs "eiffel tower": p=2/3, r=1 -> 0.8
    assert token_f1("Eiffel Tower, Paris", ["London", "the Eiffel Tower"]) == pytest.approx(0.8)
    assert token_f1("a the an", ["the"]) == 0.0


def test_per_item_values_are_capped_and_say_so() -> None:
    out = compute_metrics(["a"] * 5, [["a"]] * 5, ["exact_match"], {"per_item_limit": 2})
    assert (out["total_items"], out["returned_items"], out["truncated"]) == (5, 2, True)
    assert out["metrics"]["exact_match"]["per_item"] == [1.0, 1.0]


@pytest.mark.parametrize(
    ("preds", "refs", "names", "message"),
    [
        ([], [], ["bleu"], "predictions is empty"),
        (["a"], [["a"], ["b"]], ["bleu"], "predictions has 1 items but references has 2"),
        (["a"], [[]], ["bleu"], "references[0] must be a non-empty list"),
        (["a"], [["a"]], ["meteor"], "unknown or missing metrics ['meteor']"),
    ],
)
def test_invalid_input_says_what_to_fix(preds: list, refs: list, names: list, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        compute_metrics(preds, refs, names)
