"""TER options, tokenizer errors, CJK warnings, strict options, WER/CER against jiwer, SQuAD v2 against the script."""

from __future__ import annotations

import collections
import random
import re
import string

import jiwer
import pytest
from sacrebleu.metrics import BLEU, TER

from mcp_eval_server.errors import InvalidInputError
from mcp_eval_server.metrics import compute_metrics

ZH_HYP = ["今天天气很好，我们去公园散步吧。", "我喜欢吃苹果和香蕉。"]
ZH_REF = [["今天天气很好，我们去公园散步。"], ["我喜欢吃苹果和橘子。"]]
JA_HYP = ["今日はとても良い天気ですね。"]
JA_REF = [["今日はとても良い天気です。"]]


@pytest.mark.parametrize(("hyps", "refs"), [(ZH_HYP, ZH_REF), (JA_HYP, JA_REF)])
def test_cjk_ter_with_asian_support_equals_sacrebleu(hyps: list[str], refs: list[list[str]]) -> None:
    opts = {"tokenize": "zh", "asian_support": True, "normalized": True}
    out = compute_metrics(hyps, refs, ["bleu", "ter"], opts)
    streams = [[r[0] for r in refs]]
    expected = TER(asian_support=True, normalized=True).corpus_score(hyps, streams).score
    assert out["metrics"]["ter"]["score"] == expected < 30  # the old code could only give 100.0 here
    assert out["metrics"]["bleu"]["score"] == BLEU(tokenize="zh").corpus_score(hyps, streams).score
    assert "asian:yes" in out["metrics"]["ter"]["signature"] and "norm:yes" in out["metrics"]["ter"]["signature"]
    per_item = [
        TER(asian_support=True, normalized=True).sentence_score(h, r).score for h, r in zip(hyps, refs, strict=True)
    ]
    assert out["metrics"]["ter"]["per_item"] == per_item
    assert out["warnings"] == []


def test_unsplit_cjk_text_gets_a_warning_that_names_the_options() -> None:
    out = compute_metrics(ZH_HYP, ZH_REF, ["bleu", "ter"])
    assert out["metrics"]["ter"]["score"] == 100.0  # sacrebleu's answer for one-word-per-clause text
    codes = [w["code"] for w in out["warnings"]]
    assert codes == ["unsegmented_text", "unsegmented_text"]
    assert "tokenize='zh'" in out["warnings"][0]["message"]
    assert "asian_support=true and options.normalized=true" in out["warnings"][1]["message"]
    assert compute_metrics(["the cat"], [["the cat"]], ["bleu", "ter"])["warnings"] == []


@pytest.mark.parametrize(
    "opts",
    [
        {"case_sensitive": True},
        {"no_punct": True},
        {"normalized": True},
        {"lowercase": False},
        {"normalized": True, "no_punct": True, "case_sensitive": True},
    ],
)
def test_each_ter_option_reaches_sacrebleu(opts: dict[str, bool]) -> None:
    hyps = ["The Cat, sat on the mat!", "A dog's 1,000 barks."]
    refs = [["the cat sat on a mat."], ["A dog's 1000 barks!"]]
    kwargs = {k: v for k, v in opts.items() if k != "lowercase"}
    if "lowercase" in opts:
        kwargs["case_sensitive"] = not opts["lowercase"]
    expected = TER(**kwargs).corpus_score(hyps, [[r[0] for r in refs]]).score
    assert compute_metrics(hyps, refs, ["ter"], opts)["metrics"]["ter"]["score"] == expected


def test_contradicting_case_options_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="contradict"):
        compute_metrics(["a"], [["a"]], ["ter"], {"lowercase": True, "case_sensitive": True})


def test_a_bad_tokenizer_gets_sacrebleus_message_and_the_valid_choices() -> None:
    with pytest.raises(InvalidInputError) as info:
        compute_metrics(["a"], [["a"]], ["bleu"], {"tokenize": "nonsense"})
    text = str(info.value)
    assert "options.tokenize 'nonsense' is not a sacrebleu tokenizer" in text and "KeyError" in text
    assert "'13a'" in text and "'zh'" in text
    with pytest.raises(InvalidInputError, match=r"pip install sacrebleu\[ja\]"):
        compute_metrics(["a"], [["a"]], ["bleu"], {"tokenize": "ja-mecab"})


@pytest.mark.parametrize(("key", "closest"), [("asian_suport", "asian_support"), ("tokenizer", "tokenize")])
def test_an_unknown_option_is_refused_with_the_closest_name(key: str, closest: str) -> None:
    with pytest.raises(InvalidInputError, match=f"unknown argument '{key}'; did you mean '{closest}'"):
        compute_metrics(["a"], [["a"]], ["ter"], {key: True})


def test_a_misspelt_metric_gets_the_closest_name() -> None:
    with pytest.raises(InvalidInputError, match="did you mean 'rougeL'"):
        compute_metrics(["a"], [["a"]], ["rougel"])


def _words(rng: random.Random, n: int) -> str:
    return " ".join("".join(rng.choices(string.ascii_lowercase[:5], k=rng.randint(1, 3))) for _ in range(n))


def test_wer_and_cer_equal_jiwer_corpus_and_per_item() -> None:
    rng = random.Random(3)
    refs = [_words(rng, rng.randint(1, 12)) for _ in range(50)]
    hyps = [_words(rng, rng.randint(0, 12)) for _ in range(50)]
    out = compute_metrics(hyps, [[r] for r in refs], ["wer", "cer"], {"per_item_limit": 50})
    assert out["metrics"]["wer"]["score"] == jiwer.wer(refs, hyps)
    assert out["metrics"]["cer"]["score"] == jiwer.cer(refs, hyps)
    assert out["metrics"]["wer"]["per_item"] == [jiwer.wer(r, h) for r, h in zip(refs, hyps, strict=True)]
    counts = jiwer.process_words(refs, hyps)
    assert (out["metrics"]["wer"]["substitutions"], out["metrics"]["wer"]["insertions"]) == (
        counts.substitutions,
        counts.insertions,
    )
    assert out["warnings"] == []


def test_wer_published_example_and_reference_warnings() -> None:
    out = compute_metrics(["the cat sat", "x"], [["the cat sat on the mat", "other"], [""]], ["wer"])
    assert out["metrics"]["wer"]["per_item"][0] == 0.5  # 3 deletions / 6 reference words
    assert [w["code"] for w in out["warnings"]] == ["multiple_references", "empty_reference"]
    assert "items 0" in out["warnings"][0]["message"] and "items 1" in out["warnings"][1]["message"]


# --- SQuAD v2 -----------------------------------------------------------------------------------------------
# Reference: the official SQuAD 2.0 evaluation script (evaluate-v2.0.py, rajpurkar.github.io/SQuAD-explorer),
# transcribed here function by function so our module is checked against the script's algorithm, not itself.


def _script_normalize(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.compile(r"\b(a|an|the)\b", re.UNICODE).sub(" ", s)
    return " ".join(s.split())


def _script_tokens(s: str) -> list[str]:
    return _script_normalize(s).split() if s else []


def _script_f1(gold: str, pred: str) -> float:
    g, p = _script_tokens(gold), _script_tokens(pred)
    same = sum((collections.Counter(g) & collections.Counter(p)).values())
    if len(g) == 0 or len(p) == 0:
        return int(g == p)
    if same == 0:
        return 0
    precision, recall = same / len(p), same / len(g)
    return (2 * precision * recall) / (precision + recall)


def _script_eval(preds: list[str], answers: list[list[str]]) -> dict[str, float]:
    exact, f1, has = {}, {}, {}
    for i, (pred, golds) in enumerate(zip(preds, answers, strict=True)):
        gold = [a for a in golds if _script_normalize(a)] or [""]
        has[i] = any(_script_normalize(a) for a in golds)
        exact[i] = max(int(_script_normalize(a) == _script_normalize(pred)) for a in gold)
        f1[i] = max(_script_f1(a, pred) for a in gold)
    out = {"exact": 100.0 * sum(exact.values()) / len(exact), "f1": 100.0 * sum(f1.values()) / len(f1)}
    for label, keep in (("HasAns", True), ("NoAns", False)):
        ids = [i for i in has if has[i] == keep]
        out[f"{label}_exact"] = 100.0 * sum(exact[i] for i in ids) / len(ids)
        out[f"{label}_f1"] = 100.0 * sum(f1[i] for i in ids) / len(ids)
        out[f"{label}_total"] = len(ids)
    return out


def test_squad_v2_equals_the_official_script_with_unanswerable_questions() -> None:
    preds = ["Denver Broncos", "", "the Eiffel tower", "", "in 1990", "Paris"]
    answers = [["Denver Broncos", "Broncos"], [], ["Eiffel Tower"], ["Tokyo"], ["1990", "in 1990"], [""]]
    out = compute_metrics(preds, answers, ["squad_v2"])
    got = out["metrics"]["squad_v2"]
    expected = _script_eval(preds, answers)
    assert {k: got[k] for k in expected} == expected  # bit-identical, every key
    assert (got["HasAns_total"], got["NoAns_total"]) == (4, 2)
    assert got["per_item"] == [100.0, 100.0, 100.0, 0.0, 100.0, 0.0]  # abstaining on an unanswerable one scores


def test_squad_v2_on_random_text_equals_the_script() -> None:
    rng = random.Random(11)
    preds = [rng.choice(["", _words(rng, rng.randint(1, 4))]) for _ in range(80)]
    answers = [[rng.choice(["", _words(rng, rng.randint(1, 4))]) for _ in range(rng.randint(0, 3))] for _ in range(80)]
    got = compute_metrics(preds, answers, ["squad_v2"])["metrics"]["squad_v2"]
    expected = _script_eval(preds, answers)
    assert {k: got[k] for k in expected} == expected


def test_squad_v2_without_unanswerable_items_says_why_noans_is_null() -> None:
    got = compute_metrics(["Paris"], [["Paris"]], ["squad_v2"])["metrics"]["squad_v2"]
    assert got["NoAns_f1"] is None and "no unanswerable question" in got["NoAns_note"]


def test_only_squad_v2_accepts_an_empty_reference_list() -> None:
    with pytest.raises(InvalidInputError, match=r"\['f1'\] need a reference"):
        compute_metrics(["a"], [[]], ["f1", "squad_v2"])
