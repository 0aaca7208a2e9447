"""Time-series operations: resample, rolling windows, STL decomposition, stationarity, forecasts.

Contract: the series comes from `timeindex.py`, which refuses irregular timestamps, gaps and
duplicates unless the caller chose how to handle them (and reports that choice). statsmodels
provides STL, ADF + KPSS and the forecasting models; every forecast carries prediction intervals
and dates on the series' own grid. Minimum lengths follow each model's parameter count. Defaults
(listed in `DEFAULTS`, the tool description and the README): resample rule MS with agg mean,
rolling window 7, STL robust, ETS additive error and trend without season, ARIMA (1,1,1),
horizon 12, stationarity regression 'c'. Results are tables for `tables.cap_table` plus summaries.
"""

from __future__ import annotations

import warnings as _pywarnings
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.tsa.arima.model import ARIMA
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.seasonal import STL
from statsmodels.tsa.stattools import adfuller, kpss

from . import timeindex
from .caveats import Warning_, warning
from .errors import InvalidArgumentError
from .tables import jsonable

OPERATIONS = ("resample", "rolling", "decompose", "stationarity", "forecast")
AGGS = ("mean", "sum", "min", "max", "median", "count", "std", "first", "last")
REGRESSIONS = {"n": "no constant", "c": "a constant", "ct": "a constant and trend", "ctt": "a quadratic trend"}
DEFAULTS = {
    "rule": "MS",
    "agg": "mean",
    "window": 7,
    "robust": True,
    "model": "ets",
    "trend": "add",
    "order": [1, 1, 1],
    "horizon": 12,
    "regression": "c",
}
_PERIODS = {"MS": 12, "ME": 12, "QS": 4, "QE": 4, "W": 52, "D": 7, "B": 5, "h": 24}


def _table(series_by_name: dict[str, pd.Series]) -> pd.DataFrame:
    out = pd.DataFrame(series_by_name)
    out.index.name = out.index.name or "time"
    return out.reset_index()


def build_series(frame: pd.DataFrame, time_column: str, value_column: str, duplicates: str | None = None) -> pd.Series:
    """`timeindex.build_series` without the warnings list (for direct callers)."""
    return timeindex.build_series(frame, time_column, value_column, duplicates, [])


def resample(series: pd.Series, rule: str, agg: str, notes: list[Warning_] | None = None) -> pd.DataFrame:
    """Aggregate to a regular frequency; a period with no observation is null (sum uses min_count=1)."""
    notes = [] if notes is None else notes
    if not isinstance(series.index, pd.DatetimeIndex):
        raise InvalidArgumentError(f"resample needs a date/time column; {series.index.name!r} is numeric.")
    if agg not in AGGS:
        raise InvalidArgumentError(f"agg must be one of {list(AGGS)}")
    try:
        grouped = series.resample(rule)
        out = grouped.sum(min_count=1) if agg == "sum" else grouped.agg(agg)
        counts = grouped.count()
    except (ValueError, TypeError):
        raise InvalidArgumentError(
            f"Invalid resample rule {rule!r}; use pandas offsets like 'D', 'W', 'MS', 'QS', 'YS', 'h'."
        ) from None
    empty = int((counts == 0).sum())
    if empty:
        shown = "0 (count)" if agg == "count" else "null"
        notes.append(
            warning("empty_periods", f"{empty} of {len(out)} periods have no observation; their value is {shown}.")
        )
    return _table({series.name: out})


def rolling(series: pd.Series, window: int, agg: str) -> pd.DataFrame:
    """Trailing rolling statistic over `window` consecutive periods of a regular series."""
    if agg not in AGGS or agg in ("first", "last"):
        raise InvalidArgumentError("rolling agg must be mean, sum, min, max, median, count or std.")
    if not 1 < window <= len(series):
        raise InvalidArgumentError(f"window must be between 2 and the series length ({len(series)}).")
    return _table({series.name: series, f"rolling_{agg}_{window}": series.rolling(window).agg(agg)})


def _period(freq: Any, period: int | None) -> int:
    if period:
        return period
    key = str(freq).split("-")[0] if isinstance(freq, str) else None
    if key in _PERIODS:
        return _PERIODS[key]
    raise InvalidArgumentError(
        f"Cannot infer the seasonal period for step {freq}; pass `period` (e.g. 12 for monthly)."
    )


def decompose(series: pd.Series, freq: Any, period: int | None, robust: bool) -> tuple[pd.DataFrame, dict[str, Any]]:
    """STL decomposition plus trend/seasonal strength (Wang, Smith & Hyndman 2006)."""
    p = _period(freq, period)
    if len(series) < 2 * p + 1:
        raise InvalidArgumentError(f"STL with period {p} needs at least {2 * p + 1} points; have {len(series)}.")
    res = STL(series.to_numpy(), period=p, robust=robust).fit()
    resid, seasonal, trend = res.resid, res.seasonal, res.trend
    strength = {
        "period": p,
        "robust": robust,
        "trend_strength": max(0.0, 1 - np.var(resid) / np.var(trend + resid)),
        "seasonal_strength": max(0.0, 1 - np.var(resid) / np.var(seasonal + resid)),
    }
    table = _table(
        {
            "observed": series,
            "trend": pd.Series(trend, series.index),
            "seasonal": pd.Series(seasonal, series.index),
            "resid": pd.Series(resid, series.index),
        }
    )
    return table, jsonable(strength)


def _verdict(adf_rejects: bool, kpss_rejects: bool | None, regression: str) -> str:
    around = REGRESSIONS[regression]
    if kpss_rejects is None:
        return (
            f"stationary around {around} (ADF rejects a unit root)"
            if adf_rejects
            else f"a unit root is not rejected (ADF with {around})"
        )
    if adf_rejects and not kpss_rejects:
        return f"stationary around {around}"
    if not adf_rejects and kpss_rejects:
        return f"non-stationary (unit root), tested around {around}"
    if not adf_rejects:
        return f"inconclusive: neither test rejects (around {around}); more data may be needed"
    return f"inconclusive: both tests reject (around {around}); consider differencing or another regression"


def stationarity(series: pd.Series, regression: str = "c") -> dict[str, Any]:
    """ADF (H0: unit root) and KPSS (H0: stationary) with the deterministic terms named by `regression`."""
    if regression not in REGRESSIONS:
        raise InvalidArgumentError(f"regression must be one of {list(REGRESSIONS)}, got {regression!r}.")
    x = series.to_numpy(dtype="float64")
    if np.ptp(x) == 0:
        raise InvalidArgumentError(
            f"The series is constant (every value is {x[0]:g}): a constant is trivially stationary and ADF/KPSS are "
            "undefined. Check the value column."
        )
    minimum = len(regression.replace("n", "")) + 8  # lag-0 ADF regression must keep residual degrees of freedom
    if len(x) < minimum:
        raise InvalidArgumentError(
            f"ADF with regression='{regression}' needs at least {minimum} points; have {len(x)}."
        )
    try:
        adf_stat, adf_p, adf_lags, _, crit, _ = adfuller(x, regression=regression, autolag="AIC")
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise InvalidArgumentError(f"ADF could not run on these {len(x)} points: {str(exc)[:200]}") from None
    out: dict[str, Any] = {
        "regression": regression,
        "adf": {"statistic": adf_stat, "p_value": adf_p, "lags": adf_lags, "critical_values": crit},
    }
    kpss_rejects = None
    if regression in ("c", "ct"):
        with _pywarnings.catch_warnings():
            _pywarnings.simplefilter("ignore")  # KPSS warns when p is outside its lookup table; we report the bound
            kpss_stat, kpss_p, kpss_lags, _ = kpss(x, regression=regression, nlags="auto")
        kpss_rejects = bool(kpss_p < 0.05)
        out["kpss"] = {
            "statistic": kpss_stat,
            "p_value": kpss_p,
            "lags": kpss_lags,
            "p_value_note": "KPSS p is interpolated in [0.01, 0.1]",
        }
    else:
        out["kpss"] = {"p_value": None, "p_value_reason": f"KPSS has no regression='{regression}' (only c and ct)"}
    verdict = _verdict(bool(adf_p < 0.05), kpss_rejects, regression)
    kpss_text = f", KPSS p = {out['kpss']['p_value']:.3g} (H0 stationary)" if kpss_rejects is not None else ""
    out["verdict"] = verdict
    out["interpretation"] = f"regression='{regression}': ADF p = {adf_p:.3g} (H0 unit root){kpss_text}: {verdict}."
    return jsonable(out)


def _future_index(index: pd.Index, freq: Any, horizon: int) -> pd.Index:
    if isinstance(index, pd.DatetimeIndex):
        return pd.date_range(index[-1], periods=horizon + 1, freq=freq)[1:]
    return pd.Index(index[-1] + freq * np.arange(1, horizon + 1), name=index.name)


def _ets_parameters(trend: str, seasonal_periods: int | None) -> int:
    # alpha + initial level + sigma², beta + initial slope (+ phi if damped), gamma + m initial seasonal states
    return 3 + (2 if trend != "none" else 0) + (trend == "damped") + ((1 + seasonal_periods) if seasonal_periods else 0)


def _check_length(n: int, k: int, spec: str, extra: str = "") -> None:
    if n < k + 2:
        raise InvalidArgumentError(
            f"{spec} estimates {k} parameters and needs at least {k + 2} points{extra}; the series has {n}. Use a "
            "simpler model (trend='none', no season, a smaller ARIMA order) or more data."
        )


def forecast(
    series: pd.Series,
    horizon: int,
    model: str,
    confidence: float,
    seasonal_periods: int | None,
    order: list[int] | None,
    trend: str = "add",
    freq: Any = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """ETS (additive error; trend add/damped/none; optional additive season) or ARIMA(p,d,q) with intervals.

    `series` must be regular (`timeindex.regular`, which also gives `freq`); without `freq` it is checked here.

    Raises:
        InvalidArgumentError: unknown model, too few points for the parameter count, irregular series.
    """
    if freq is None:
        series, freq = timeindex.regular(series, None, "ARIMA" if model == "arima" else "ETS", [])
    y = series.to_numpy(dtype="float64")
    alpha = 1 - confidence
    with _pywarnings.catch_warnings():
        _pywarnings.simplefilter("ignore")  # convergence chatter goes to stderr otherwise; fit stats are returned
        if model == "ets":
            k = _ets_parameters(trend, seasonal_periods)
            trend_code = {"add": "A", "damped": "Ad", "none": "N"}[trend]
            spec = f"ETS(A,{trend_code},{'A' if seasonal_periods else 'N'})"
            _check_length(len(y), k, spec)
            if seasonal_periods and len(y) < 2 * seasonal_periods:
                raise InvalidArgumentError(
                    f"{spec} with seasonal_periods={seasonal_periods} needs two full seasons "
                    f"({2 * seasonal_periods} points); have {len(y)}."
                )
            fit = ETSModel(
                pd.Series(y),
                error="add",
                trend=None if trend == "none" else "add",
                damped_trend=trend == "damped",
                seasonal="add" if seasonal_periods else None,
                seasonal_periods=seasonal_periods,
            ).fit(disp=False)
            frame = fit.get_prediction(start=len(y), end=len(y) + horizon - 1).summary_frame(alpha=alpha)
            mean, lo, hi = frame["mean"], frame["pi_lower"], frame["pi_upper"]
        elif model == "arima":
            p, d, q = order or DEFAULTS["order"]
            k = p + q + (1 if d == 0 else 0) + 1
            spec = f"ARIMA({p},{d},{q})"
            _check_length(len(y) - d, k, spec, f" after {d} difference(s)")
            fit = ARIMA(y, order=(p, d, q)).fit()
            fc = fit.get_forecast(horizon)
            ci = np.asarray(fc.conf_int(alpha=alpha))
            mean, lo, hi = pd.Series(fc.predicted_mean), pd.Series(ci[:, 0]), pd.Series(ci[:, 1])
        else:
            raise InvalidArgumentError("model must be 'ets' or 'arima'.")
    table = pd.DataFrame(
        {
            "time": _future_index(series.index, freq, horizon),
            "forecast": np.asarray(mean),
            "lower": np.asarray(lo),
            "upper": np.asarray(hi),
        }
    )
    summary = {"model": spec, "parameters": k, "aic": float(fit.aic), "confidence": confidence, "n_train": len(y)}
    return table, jsonable({**summary, "step": str(freq)})
