"""Measure how far each metric and statistic of this server is from its reference library, on one random corpus.

`make accuracy` runs it: 2,000 random ASCII pairs (1-3 references each), 300 CJK pairs for TER/BLEU with their CJK
options, 500 SQuAD-v2-style items, 200 rating pairs. For every number the server reports it prints the largest
absolute difference from the reference computed in the same run (0 means bit-identical) and exits non-zero if any
is not 0. The SQuAD reference is the official v2.0 script's algorithm as transcribed in the tests.
"""

from __future__ import annotations

import random
import string
import sys
from pathlib import Path

import jiwer
from rapidfuzz.distance import Levenshtein
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF, TER
from scipy import stats
from sklearn.metrics import cohen_kappa_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mcp_eval_server.agreement import cohen_kappa, pearson, spearman
from mcp_eval_server.metrics import compute_metrics
from tests.test_metrics_options_and_new_metrics import _script_eval


def _text(rng: random.Random) -> str:
    words = ["".join(rng.choices(string.ascii_lowercase[:7], k=rng.randint(1, 5))) for _ in range(rng.randint(1, 20))]
    return " ".join(w.capitalize() if rng.random() < 0.2 else w for w in words) + rng.choice([".", "!", "", ","])


def _max_diff(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def main() -> int:
    rng = random.Random(2026)
    n = 2000
    preds = [_text(rng) for _ in range(n)]
    refs = [[_text(rng) for _ in range(rng.randint(1, 3))] for _ in range(n)]
    streams = [[r[k] if k < len(r) else None for r in refs] for k in range(3)]
    names = ["bleu", "chrf", "ter", "rouge1", "rouge2", "rougeL", "wer", "cer", "levenshtein"]
    out = compute_metrics(preds, refs, names, {"per_item_limit": n})["metrics"]
    rows: list[tuple[str, float]] = []
    for name, metric in (("bleu", BLEU()), ("chrf", CHRF()), ("ter", TER())):
        rows.append(
            (f"{name} corpus vs sacrebleu", abs(out[name]["score"] - metric.corpus_score(preds, streams).score))
        )
    sent = BLEU(effective_order=True)
    sentence_scores = [sent.sentence_score(p, r).score for p, r in zip(preds, refs, strict=True)]
    rows.append(("bleu per item vs sacrebleu", _max_diff(out["bleu"]["per_item"], sentence_scores)))
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    for kind in ("rouge1", "rouge2", "rougeL"):
        expected = [scorer.score_multi(r, p)[kind].fmeasure for p, r in zip(preds, refs, strict=True)]
        rows.append((f"{kind} per item vs rouge-score", _max_diff(out[kind]["per_item"], expected)))
    firsts = [r[0] for r in refs]
    rows.append(("wer corpus vs jiwer", abs(out["wer"]["score"] - jiwer.wer(firsts, preds))))
    rows.append(("cer corpus vs jiwer", abs(out["cer"]["score"] - jiwer.cer(firsts, preds))))
    lev = [float(min(Levenshtein.distance(p, x) for x in r)) for p, r in zip(preds, refs, strict=True)]
    rows.append(("levenshtein per item vs rapidfuzz", _max_diff(out["levenshtein"]["per_item"], lev)))
    cjk = "今天天气很好我们去公园散步吧喜欢吃苹果和香蕉橘子日本語はとても良いですね。、"
    zh_p = ["".join(rng.choices(cjk, k=rng.randint(3, 20))) for _ in range(300)]
    zh_r = ["".join(rng.choices(cjk, k=rng.randint(3, 20))) for _ in range(300)]
    cjk_options = {"tokenize": "zh", "asian_support": True, "normalized": True}
    zh = compute_metrics(zh_p, [[r] for r in zh_r], ["bleu", "ter"], cjk_options)
    ter = TER(asian_support=True, normalized=True).corpus_score(zh_p, [zh_r]).score
    rows.append(("ter CJK (asian_support, normalized) vs sacrebleu", abs(zh["metrics"]["ter"]["score"] - ter)))
    zh_bleu = BLEU(tokenize="zh").corpus_score(zh_p, [zh_r]).score
    rows.append(("bleu CJK (tokenize zh) vs sacrebleu", abs(zh["metrics"]["bleu"]["score"] - zh_bleu)))
    sq_p = [rng.choice(["", _text(rng)]) for _ in range(500)]
    sq_r = [[rng.choice(["", _text(rng)]) for _ in range(rng.randint(0, 3))] for _ in range(500)]
    got = compute_metrics(sq_p, sq_r, ["squad_v2"])["metrics"]["squad_v2"]
    want = _script_eval(sq_p, sq_r)
    rows.append(("squad_v2 (all keys) vs the v2.0 script", max(abs(got[k] - want[k]) for k in want)))
    a = [rng.randint(1, 5) for _ in range(200)]
    b = [min(5, max(1, x + rng.randint(-1, 1))) for x in a]
    labels = list(range(1, 6))
    kappa = cohen_kappa_score(a, b, labels=labels, weights="quadratic")
    rows.append(("quadratic kappa vs sklearn", abs(cohen_kappa(a, b, "quadratic", labels) - kappa)))  # type: ignore[operator]
    rows.append(("spearman vs scipy", abs(spearman(a, b) - stats.spearmanr(a, b).statistic)))  # type: ignore[operator]
    rows.append(("pearson vs scipy", abs(pearson(a, b) - stats.pearsonr(a, b).statistic)))  # type: ignore[operator]
    width = max(len(r[0]) for r in rows)
    for label, diff in rows:
        sys.stdout.write(f"{label:<{width}}  max |diff| = {diff:.3g}\n")
    failed = [label for label, diff in rows if diff != 0.0]
    if failed:
        sys.stdout.write(f"NOT identical: {failed}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
