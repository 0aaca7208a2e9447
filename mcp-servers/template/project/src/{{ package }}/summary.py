"""Summary statistics of a list of numbers — the example domain module; replace it with your own domain.

Contract: pure (no `mcp` import, no I/O), so it is tested directly against reference values. It returns
plain data and raises `SummaryError` (a `ValueError`) with a message that says what to fix. A statistic
that the input leaves undefined is `None` with a warning that says why, never a normal-looking number:
that is the house `warnings: [{code, message}]` convention every tool result carries.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


class SummaryError(ValueError):
    """The input cannot be summarized; the message says what to change."""


@dataclass(frozen=True)
class Notice:
    """One entry of a result's `warnings`: a stable `code` for programs and a `message` for people."""

    code: str
    message: str


@dataclass(frozen=True)
class Summary:
    count: int
    mean: float
    stdev: float | None
    minimum: float
    maximum: float
    warnings: list[Notice] = field(default_factory=list)


def summarize(values: Sequence[float], precision: int = 6) -> Summary:
    """Count, mean, sample standard deviation, minimum and maximum, rounded to `precision` decimals.

    Raises:
        SummaryError: no values, a value that is not a finite number, or a precision outside 0..15.
    """
    if not values:
        raise SummaryError("values is empty: give at least one number")
    if not 0 <= precision <= 15:
        raise SummaryError(f"precision must be between 0 and 15 decimals, got {precision}")
    for i, value in enumerate(values):
        if not math.isfinite(value):
            raise SummaryError(f"values[{i}] is {value}: only finite numbers can be summarized")
    warnings: list[Notice] = []
    stdev: float | None = None
    if len(values) < 2:
        warnings.append(Notice("too_few_values", "the standard deviation needs at least 2 values, so it is null"))
    else:
        stdev = round(statistics.stdev(values), precision)
    return Summary(
        count=len(values),
        mean=round(statistics.fmean(values), precision),
        stdev=stdev,
        minimum=min(values),
        maximum=max(values),
        warnings=warnings,
    )
