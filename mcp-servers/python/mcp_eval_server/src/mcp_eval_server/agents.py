"""Agent trajectory evaluation: tool-call precision/recall/F1, order agreement and argument match.

A call is `{"name": str, "arguments": {...}}`. Expected arguments are a specification: with `compare_args` a call
matches when every expected argument is present with an equal value (extra actual arguments are allowed, since
agents often pass optional ones). Matching modes:
    ordered   - calls are aligned by longest common subsequence; success = identical sequences
    unordered - multiset matching by name (and arguments); success = same multiset
    subset    - like unordered, success = every expected call occurs; extra calls are allowed
Deterministic; never imports `mcp`.
"""

from __future__ import annotations

from typing import Any, Literal

from mcp_eval_server.errors import InvalidInputError

MatchMode = Literal["ordered", "unordered", "subset"]


def _normalize(calls: list[Any], label: str) -> list[dict[str, Any]]:
    out = []
    for i, call in enumerate(calls):
        if isinstance(call, str):
            call = {"name": call}
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise InvalidInputError(f"{label}[{i}] must be {{'name': str, 'arguments': object}} or a tool name")
        args = call.get("arguments", call.get("args", {})) or {}
        if not isinstance(args, dict):
            raise InvalidInputError(f"{label}[{i}].arguments must be an object")
        out.append({"name": call["name"], "arguments": args})
    return out


def argument_match(expected: dict[str, Any], actual: dict[str, Any]) -> float:
    """Share of expected arguments present in `actual` with equal values (1.0 when nothing is expected)."""
    if not expected:
        return 1.0
    return sum(1 for k, v in expected.items() if k in actual and actual[k] == v) / len(expected)


def _matches(exp: dict[str, Any], act: dict[str, Any], compare_args: bool) -> bool:
    return exp["name"] == act["name"] and (
        not compare_args or argument_match(exp["arguments"], act["arguments"]) == 1.0
    )


def _lcs_pairs(expected: list[dict], actual: list[dict], compare_args: bool) -> list[tuple[int, int]]:
    n, m = len(expected), len(actual)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            if _matches(expected[i], actual[j], compare_args):
                table[i][j] = table[i + 1][j + 1] + 1
            else:
                table[i][j] = max(table[i + 1][j], table[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if _matches(expected[i], actual[j], compare_args):
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _greedy_pairs(expected: list[dict], actual: list[dict], compare_args: bool) -> list[tuple[int, int]]:
    used: set[int] = set()
    pairs = []
    for i, exp in enumerate(expected):
        j = next((j for j, act in enumerate(actual) if j not in used and _matches(exp, act, compare_args)), None)
        if j is not None:
            used.add(j)
            pairs.append((i, j))
    return pairs


def _order_agreement(pairs: list[tuple[int, int]]) -> float | None:
    """Share of matched call pairs whose relative order is the same in both trajectories (Kendall-style)."""
    if len(pairs) < 2:
        return None
    total = agree = 0
    for a in range(len(pairs)):
        for b in range(a + 1, len(pairs)):
            total += 1
            agree += (pairs[a][0] - pairs[b][0]) * (pairs[a][1] - pairs[b][1]) > 0
    return agree / total


def evaluate_trajectory(
    actual_calls: list[Any], expected_calls: list[Any], match: MatchMode = "ordered", compare_args: bool = True
) -> dict[str, Any]:
    """Compare what the agent called with what it should have called.

    Raises:
        InvalidInputError: malformed calls, no expected calls, or an unknown match mode.
    """
    if match not in ("ordered", "unordered", "subset"):
        raise InvalidInputError("match must be 'ordered', 'unordered' or 'subset'")
    expected, actual = _normalize(expected_calls, "expected_calls"), _normalize(actual_calls, "actual_calls")
    if not expected:
        raise InvalidInputError("expected_calls is empty: list the calls the agent should make")
    pairs = (_lcs_pairs if match == "ordered" else _greedy_pairs)(expected, actual, compare_args)
    matched = len(pairs)
    precision = matched / len(actual) if actual else 0.0
    recall = matched / len(expected)
    f1 = 2 * precision * recall / (precision + recall) if matched else 0.0
    success = {
        "ordered": matched == len(expected) == len(actual),
        "unordered": matched == len(expected) == len(actual),
        "subset": matched == len(expected),
    }[match]
    by_expected = dict(pairs)
    per_call = []
    for i, exp in enumerate(expected):
        j = by_expected.get(i)
        if j is None:  # report how close the best same-name call came, so a wrong argument is visible
            j = next((k for k, act in enumerate(actual) if act["name"] == exp["name"]), None)
        per_call.append(
            {
                "expected": exp,
                "matched_actual_index": by_expected.get(i),
                "argument_match": argument_match(exp["arguments"], actual[j]["arguments"]) if j is not None else 0.0,
            }
        )
    return {
        "success": success,
        "match": match,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "order_agreement": _order_agreement(sorted(pairs)),
        "order_agreement_note": None if len(pairs) >= 2 else "undefined: it needs at least 2 matched calls",
        "unexpected_calls": [a["name"] for k, a in enumerate(actual) if k not in {j for _, j in pairs}],
        "per_call": per_call,
    }
