"""calibrate_judge: labels must be on the declared scale; undefined statistics are null with a reason."""

from __future__ import annotations

import pytest

from mcp_eval_server.calibration import calibrate_judge
from mcp_eval_server.errors import InvalidInputError

pytestmark = pytest.mark.anyio
SCALE_1_5 = {"name": "quality", "scale": [1, 5]}


def _items(human: list[float], judge: list[float]) -> list[dict[str, float]]:
    return [{"human_score": h, "judge_score": j} for h, j in zip(human, judge, strict=True)]


@pytest.mark.parametrize(
    ("human", "judge", "message"),
    [
        ([1, 7, 3], [1, 2, 3], r"items\[1\]\.human_score=7 not on the declared scale 1-5"),
        ([1, 2.5, 3], [1, 2, 3], r"items\[1\]\.human_score=2\.5 not on the declared scale 1-5"),
        ([1, 2, 3], [0, 2, 3], r"items\[0\]\.judge_score=0 not on the declared scale 1-5"),
    ],
)
async def test_scores_off_the_declared_scale_are_refused(human: list, judge: list, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        await calibrate_judge(None, _items(human, judge), SCALE_1_5, "quadratic", 4)


async def test_weighted_kappa_uses_the_declared_scale() -> None:
    human, judge = [1, 2, 5, 5, 2, 1], [1, 5, 5, 2, 2, 2]
    on_1_5 = await calibrate_judge(None, _items(human, judge), SCALE_1_5, "linear", 4)
    on_1_9 = await calibrate_judge(None, _items(human, judge), {"name": "q", "scale": [1, 9]}, "linear", 4)
    # linear weights |i-j| over labels 1..5; observed-only labels {1, 2, 5} would give a different value
    from sklearn.metrics import cohen_kappa_score

    assert on_1_5["weighted_kappa"] == cohen_kappa_score(human, judge, labels=[1, 2, 3, 4, 5], weights="linear")
    assert on_1_5["weighted_kappa"] != cohen_kappa_score(human, judge, weights="linear")
    assert on_1_9["weighted_kappa"] == pytest.approx(on_1_5["weighted_kappa"])  # unused top categories: no effect
    assert on_1_5["warnings"] == [] and on_1_5["kappa_labels"] == [1, 5]


async def test_a_constant_rater_gives_null_statistics_with_reasons() -> None:
    out = await calibrate_judge(None, _items([3, 3, 3, 3], [2, 3, 4, 3]), SCALE_1_5, "quadratic", 4)
    assert out["spearman"] is None and out["pearson"] is None and out["kappa"] == 0.0
    reasons = {w["code"] for w in out["warnings"]}
    assert reasons == {"undefined_statistic"}
    assert any("every human score is 3" in w["message"] for w in out["warnings"])
    same = await calibrate_judge(None, _items([2, 2], [2, 2]), SCALE_1_5, "quadratic", 4)
    assert same["kappa"] is None and same["weighted_kappa"] is None and len(same["warnings"]) == 4
