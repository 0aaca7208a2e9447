"""Turning a time column and a value column into a series, where every change to the data is the caller's choice.

Contract:
- `build_series` parses the times (numbers stay numbers; text with UTC offsets is converted to UTC
  and says so), drops rows whose time is missing or unparseable — counted, reported, and refused
  past `MAX_DROPPED_FRACTION` — and refuses duplicate timestamps unless `duplicates=` names how to
  combine them.
- `regular` checks that the timestamps lie on one regular grid (a pandas frequency such as D, W-MON,
  MS, QS, h, or an equal numeric step). Irregular timestamps are refused (resample first); missing
  grid points or missing values are refused unless `fill=` names a method, which is then applied,
  counted and reported. ARIMA may leave them missing (`fill="none"`): its Kalman filter treats a gap
  as unobserved rather than inventing a value.
Warnings are appended to the list the caller passes. Nothing here mutates the input frame.
"""

from __future__ import annotations

import re
import warnings as _pywarnings
from typing import Any

import numpy as np
import pandas as pd

from .caveats import Warning_, warning
from .columns import numeric, require
from .errors import InvalidArgumentError

MAX_DROPPED_FRACTION = 0.05
DUPLICATE_AGGS = ("mean", "sum", "first", "last", "min", "max", "median")
FILLS = ("interpolate", "ffill", "bfill", "zero", "none")
_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})\s*$")
# Coarsest first: the first grid that holds every timestamp is the series' frequency.
_CANDIDATE_FREQS = ("YS", "YE", "QS", "QE", "MS", "ME", "W", "D", "B", "h", "min", "s")
_APPROX_DAYS = {"YS": 365, "YE": 365, "QS": 91, "QE": 91, "MS": 28, "ME": 28, "W": 7, "D": 1, "B": 1}
_APPROX_DAYS.update({"h": 1 / 24, "min": 1 / 1440, "s": 1 / 86400})
MAX_GAP_FACTOR = 20  # a grid needing 20× more points than observations is irregular, not gappy


def _parse_times(times: pd.Series, column: str, notes: list[Warning_]) -> pd.Series:
    if pd.api.types.is_numeric_dtype(times) or pd.api.types.is_datetime64_any_dtype(times):
        return times
    text = times.astype("string")
    with_offset = text.str.contains(_OFFSET, na=False)
    with _pywarnings.catch_warnings():
        _pywarnings.simplefilter("ignore")  # "could not infer format": the NaT count below is what matters
        if with_offset.any():
            parsed = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
            notes.append(
                warning(
                    "timezone_converted",
                    f"{int(with_offset.sum())} timestamps in {column!r} carry a UTC offset: all times were converted "
                    "to UTC (times without an offset were taken as UTC).",
                )
            )
            return parsed.dt.tz_localize(None)
        return pd.to_datetime(text, errors="coerce", format="mixed")


def build_series(
    frame: pd.DataFrame,
    time_column: str,
    value_column: str,
    duplicates: str | None,
    notes: list[Warning_],
    keep_duplicates: bool = False,
) -> pd.Series:
    """The value series indexed by sorted time, duplicates combined only as the caller says (resampling keeps
    them: its own `agg` combines each period).

    Raises:
        ColumnError: unknown/non-numeric column. InvalidArgumentError: more than MAX_DROPPED_FRACTION of the
            times unparseable, duplicate timestamps without `duplicates`, fewer than 4 values.
    """
    require(frame, [time_column])
    values = numeric(frame, value_column)
    times = _parse_times(frame[time_column], time_column, notes)
    bad = times.isna().to_numpy()
    if bad.any():
        examples = frame[time_column][bad].astype("string").fillna("<missing>").head(3).tolist()
        share = bad.mean()
        if share > MAX_DROPPED_FRACTION:
            raise InvalidArgumentError(
                f"{int(bad.sum())} of {len(bad)} rows ({share:.0%}) have a time in {time_column!r} that is missing or "
                f"could not be parsed as dates (e.g. {examples}); at most {MAX_DROPPED_FRACTION:.0%} may be dropped. "
                "Fix the column (transform cast to datetime with a `format`) or filter those rows first."
            )
        notes.append(
            warning(
                "rows_dropped",
                f"Dropped {int(bad.sum())} of {len(bad)} rows whose time in {time_column!r} is missing or unparseable "
                f"(e.g. {examples}).",
            )
        )
    series = pd.Series(values.to_numpy()[~bad], index=pd.Index(times.to_numpy()[~bad], name=time_column))
    series = series.sort_index(kind="stable").rename(value_column)
    dup = series.index.duplicated(keep=False)
    if dup.any() and not (keep_duplicates and duplicates is None):
        if duplicates is None:
            raise InvalidArgumentError(
                f"{int(series.index.duplicated().sum())} duplicate timestamps in {time_column!r} (e.g. "
                f"{series.index[dup][0]}); say how to combine them with duplicates= one of {list(DUPLICATE_AGGS)}, "
                "or use operation='resample', which aggregates by period."
            )
        if duplicates not in DUPLICATE_AGGS:
            raise InvalidArgumentError(f"duplicates must be one of {list(DUPLICATE_AGGS)}, got {duplicates!r}.")
        before = len(series)
        series = series.groupby(level=0).agg(duplicates)
        notes.append(
            warning(
                "duplicates_aggregated",
                f"Combined {before - len(series)} duplicate-timestamp rows with duplicates='{duplicates}'.",
            )
        )
    if series.notna().sum() < 4:
        raise InvalidArgumentError(
            f"{int(series.notna().sum())} non-missing values of {value_column!r}; a time-series operation needs at "
            "least 4."
        )
    return series


def _datetime_grid(index: pd.DatetimeIndex) -> tuple[pd.DatetimeIndex, str] | None:
    """The coarsest regular date grid from the first to the last timestamp that contains every timestamp."""
    span_days = (index[-1] - index[0]) / pd.Timedelta(days=1)
    for freq in _CANDIDATE_FREQS:
        if span_days / _APPROX_DAYS[freq] > MAX_GAP_FACTOR * len(index) + 10:
            continue  # never build a grid far larger than the data
        if freq == "W":
            freq = f"W-{index[0].day_name()[:3].upper()}"
        try:
            grid = pd.date_range(index[0], index[-1], freq=freq)
        except ValueError:
            continue
        if len(grid) and index.isin(grid).all():
            return grid, freq
    return None


def _numeric_grid(index: pd.Index) -> tuple[pd.Index, float] | None:
    values = index.to_numpy(dtype="float64")
    steps = np.diff(values)
    step = float(steps.min())
    if step <= 0 or not np.allclose(steps / step, np.round(steps / step), rtol=0, atol=1e-9):
        return None
    count = int(round((values[-1] - values[0]) / step)) + 1
    if count > MAX_GAP_FACTOR * len(values) + 10:
        return None
    grid = values[0] + step * np.arange(count)
    ints = pd.api.types.is_integer_dtype(index) and float(step).is_integer()
    return pd.Index(grid.astype("int64") if ints else grid, name=index.name), step


def _irregular(index: pd.Index) -> InvalidArgumentError:
    steps = pd.Series(index).diff().dropna()
    return InvalidArgumentError(
        f"The timestamps are irregular (steps from {steps.min()} to {steps.max()}), so observations are not evenly "
        "spaced and a model would misplace them. Resample first (operation='resample' with rule='D', 'W', 'MS', …, "
        "then load or query the result), or filter to a regular subset."
    )


def regular(series: pd.Series, fill: str | None, what: str, notes: list[Warning_]) -> tuple[pd.Series, Any]:
    """The series on its full regular grid, gaps filled only as `fill` says; returns (series, freq or step).

    Raises:
        InvalidArgumentError: irregular timestamps; gaps or missing values without a `fill`; unknown fill.
    """
    if fill is not None and fill not in FILLS:
        raise InvalidArgumentError(f"fill must be one of {list(FILLS)}, got {fill!r}.")
    if isinstance(series.index, pd.DatetimeIndex):
        found = _datetime_grid(series.index)
    else:
        found = _numeric_grid(series.index)
    if found is None:
        raise _irregular(series.index)
    grid, freq = found
    full = series.reindex(grid)
    full.index.name = series.index.name
    missing = int(full.isna().sum())
    if not missing:
        return full, freq
    gaps = int(len(grid) - len(series))
    example = full.index[full.isna().to_numpy()][:3].tolist()
    detail = (
        f"{missing} of {len(grid)} periods at step {freq} have no value ({gaps} missing timestamps; e.g. {example})"
    )
    if fill is None:
        raise InvalidArgumentError(
            f"{detail}. {what} needs a complete regular series: pass fill= one of 'interpolate', 'ffill', 'bfill', "
            "'zero' (or 'none' for ARIMA, which models gaps as missing), or resample first."
        )
    if fill == "none":
        if what != "ARIMA":
            raise InvalidArgumentError(f"fill='none' leaves gaps, which only ARIMA can model; {what} needs a fill.")
        notes.append(warning("missing_values_modelled", f"{detail}: ARIMA treated them as missing (not filled)."))
        return full, freq
    filled = {
        "interpolate": lambda s: s.interpolate(method="index" if not isinstance(s.index, pd.DatetimeIndex) else "time"),
        "ffill": lambda s: s.ffill(),
        "bfill": lambda s: s.bfill(),
        "zero": lambda s: s.fillna(0.0),
    }[fill](full)
    filled = filled.ffill().bfill() if fill == "interpolate" else filled
    if filled.isna().any():
        raise InvalidArgumentError(f"fill='{fill}' leaves values at the ends missing; use 'interpolate' or 'ffill'.")
    notes.append(
        warning(
            "values_filled",
            f"{detail}: filled with fill='{fill}'. Filled values are treated as observed, so intervals are "
            "narrower than the data support.",
        )
    )
    return filled, freq
