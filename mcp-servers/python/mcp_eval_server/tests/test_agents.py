"""Trajectory metrics on small hand-checked cases for every match mode."""

from __future__ import annotations

import pytest

from mcp_eval_server.agents import evaluate_trajectory
from mcp_eval_server.errors import InvalidInputError

SEARCH = {"name": "search", "arguments": {"q": "weather", "k": 3}}
OPEN = {"name": "open", "arguments": {"url": "a"}}
SUM = {"name": "summarize", "arguments": {}}


def test_identical_trajectory_is_a_perfect_ordered_match() -> None:
    out = evaluate_trajectory([SEARCH, OPEN, SUM], [SEARCH, OPEN, SUM])
    assert (out["success"], out["precision"], out["recall"], out["f1"], out["order_agreement"]) == (True, 1, 1, 1, 1)


def test_swapped_order_fails_ordered_but_passes_unordered() -> None:
    ordered = evaluate_trajectory([OPEN, SEARCH], [SEARCH, OPEN], "ordered")
    unordered = evaluate_trajectory([OPEN, SEARCH], [SEARCH, OPEN], "unordered")
    assert (ordered["success"], ordered["recall"]) == (False, 0.5)  # LCS keeps one of the two
    assert (unordered["success"], unordered["recall"], unordered["order_agreement"]) == (True, 1.0, 0.0)


def test_subset_allows_extra_calls_and_reports_them() -> None:
    out = evaluate_trajectory([SEARCH, {"name": "log"}, SUM], [SEARCH, SUM], "subset")
    assert out["success"] and out["recall"] == 1.0 and out["precision"] == pytest.approx(2 / 3)
    assert out["unexpected_calls"] == ["log"]


def test_expected_arguments_must_match_but_extra_arguments_are_allowed() -> None:
    spec = {"name": "search", "arguments": {"q": "weather"}}
    assert evaluate_trajectory([SEARCH], [spec])["success"]
    wrong = evaluate_trajectory(
        [{"name": "search", "arguments": {"q": "news", "k": 3}}],
        [{"name": "search", "arguments": {"q": "weather", "k": 3}}],
    )
    assert not wrong["success"] and wrong["per_call"][0]["argument_match"] == 0.5
    assert evaluate_trajectory([{"name": "search", "arguments": {"q": "news"}}], [spec], compare_args=False)["success"]


def test_bad_calls_say_what_to_fix() -> None:
    with pytest.raises(InvalidInputError, match=r"actual_calls\[0\]"):
        evaluate_trajectory([{"arguments": {}}], [SEARCH])
    with pytest.raises(InvalidInputError, match="expected_calls is empty"):
        evaluate_trajectory([SEARCH], [])
