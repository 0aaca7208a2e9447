"""The one `warnings` convention of every Harbor tool result, as plain data.

Every tool result carries `warnings: [{"code": str, "message": str}]`, `[]` when there is nothing to say. `code` is
a stable snake_case name a program can branch on; `message` is one sentence for a person: what happened and what to
do about it. The server puts one `Warning: <message>` line per warning in front of the text content, so a reader
who sees only the text still sees them. A number that cannot be computed is `null` next to a reason, never NaN or 0.

Codes used by this server:
    judge_failed            some judge calls of a batch gave no verdict (the items say why)
    deadline_exceeded       a judge call hit the total deadline (MCP_EVAL_TIMEOUT_S)
    undefined_statistic     a statistic is mathematically undefined for this data (its value is null)
    unsegmented_text        CJK/Thai text went through a tokenizer that does not split it into words
    empty_reference         an item's reference is empty, where the metric is undefined per item
    multiple_references     a single-reference metric used the first reference of items that have more
    not_comparable          two runs cannot be compared on a metric (different options or texts)
    partial_overlap         two runs share only some items; comparisons cover those
    unknown_record_fields   dataset records carry fields the run ignores (likely misspellings)
    tokens_unknown          a judge backend reports no token counts, so usage totals are null

Never imports `mcp`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

ResultWarning = dict[str, str]


def warning(code: str, message: str) -> ResultWarning:
    """One warning entry; `message` should say what happened and what to do."""
    return {"code": code, "message": message}


def merge(*groups: Iterable[ResultWarning] | None) -> list[ResultWarning]:
    """Concatenate warning lists, dropping exact duplicates and keeping the first-seen order."""
    seen: set[tuple[str, str]] = set()
    out: list[ResultWarning] = []
    for group in groups:
        for w in group or ():
            key = (w["code"], w["message"])
            if key not in seen:
                seen.add(key)
                out.append(w)
    return out


def text_prefix(warnings: Iterable[dict[str, Any]]) -> str:
    """The `Warning: <message>` lines that start a result's text content (empty string when none)."""
    return "".join(f"Warning: {w['message']}\n" for w in warnings)
