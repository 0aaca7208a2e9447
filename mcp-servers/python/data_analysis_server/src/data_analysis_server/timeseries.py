"""Time-series operations: resample, rolling windows, STL decomposition, stationarity, forecasts.

Contract: the series is built from a time column and a value column (sorted by time, duplicate
timestamps averaged); statsmodels provides STL, ADF + KPSS and the forecasting models (ETS or ARIMA),
and every forecast carries prediction intervals — a straight line is not a forecast. Results are
tables for `tables.cap_table` plus scalar summaries. Nothing here mutates the input frame.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.tsa.arima.model import ARIMA
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.seasonal import STL
from statsmodels.tsa.stattools import adfuller, kpss

from .columns import numeric, require
from .errors import InvalidArgumentError
from .tables import jsonable

OPERATIONS = ("resample", "rolling", "decompose", "stationarity", "forecast")
AGGS = ("mean", "sum", "min", "max", "median", "count", "std", "first", "last")


def build_series(frame: pd.DataFrame, time_column: str, value_column: str) -> pd.Series:
    """Value series indexed by time (datetime, or the raw numbers for integer time such as years).

    Raises:
        ColumnError: unknown/non-numeric columns. InvalidArgumentError: unparseable times, < 4 points.
    """
    require(frame, [time_column])
    values = numeric(frame, value_column)
    times = frame[time_column]
    if not pd.api.types.is_numeric_dtype(times):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "could not infer format" for mixed inputs; NaT counts are checked below
            times = pd.to_datetime(times, errors="coerce")
        if times.isna().mean() > 0.5:
            raise InvalidArgumentError(
                f"Column {time_column!r} could not be parsed as dates; cast it with transform first."
            )
    series = pd.Series(values.to_numpy(), index=pd.Index(times, name=time_column), name=value_column)
    series = series[series.index.notna()].groupby(level=0).mean().sort_index()
    if series.notna().sum() < 4:
        raise InvalidArgumentError("Need at least 4 non-missing points for a time-series operation.")
    return series


def _infer_freq(index: pd.Index) -> str | None:
    """pandas' inferred frequency as a string across versions (pandas 4 returns an offset object)."""
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        freq = pd.infer_freq(index)
    return freq if freq is None or isinstance(freq, str) else freq.freqstr


def _table(series_by_name: dict[str, pd.Series]) -> pd.DataFrame:
    out = pd.DataFrame(series_by_name)
    out.index.name = out.index.name or "time"
    return out.reset_index()


def _need_datetime(series: pd.Series, what: str) -> None:
    if not isinstance(series.index, pd.DatetimeIndex):
        raise InvalidArgumentError(f"{what} needs a date/time column; {series.index.name!r} is numeric.")


def resample(series: pd.Series, rule: str, agg: str) -> pd.DataFrame:
    """Aggregate to a regular frequency such as 'D', 'W', 'MS', 'QS', 'YS'."""
    _need_datetime(series, "resample")
    if agg not in AGGS:
        raise InvalidArgumentError(f"agg must be one of {list(AGGS)}")
    try:
        return _table({series.name: series.resample(rule).agg(agg)})
    except (ValueError, TypeError):
        raise InvalidArgumentError(
            f"Invalid resample rule {rule!r}; use pandas offsets like 'D', 'W', 'MS', 'QS', 'YS'."
        ) from None


def rolling(series: pd.Series, window: int, agg: str) -> pd.DataFrame:
    """Trailing rolling statistic over `window` observations."""
    if agg not in AGGS or agg in ("first", "last"):
        raise InvalidArgumentError("rolling agg must be mean, sum, min, max, median, count or std.")
    if not 1 < window <= len(series):
        raise InvalidArgumentError(f"window must be between 2 and the series length ({len(series)}).")
    return _table({series.name: series, f"rolling_{agg}_{window}": series.rolling(window).agg(agg)})


def _period(series: pd.Series, period: int | None) -> int:
    if period:
        return period
    freq = _infer_freq(series.index)
    guess = {"M": 12, "MS": 12, "ME": 12, "Q": 4, "QS": 4, "QE": 4, "W": 52, "D": 7, "h": 24, "H": 24, "B": 5}
    for key, value in guess.items():
        if freq and freq.split("-")[0] == key:
            return value
    raise InvalidArgumentError("Cannot infer the seasonal period; pass `period` (e.g. 12 for monthly data).")


def decompose(series: pd.Series, period: int | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """STL decomposition plus trend/seasonal strength (Wang, Smith & Hyndman 2006)."""
    s = series.interpolate(limit_direction="both")
    p = _period(s, period)
    if len(s) < 2 * p + 1:
        raise InvalidArgumentError(f"STL with period {p} needs at least {2 * p + 1} points; have {len(s)}.")
    res = STL(s.to_numpy(), period=p, robust=True).fit()
    resid, seasonal, trend = res.resid, res.seasonal, res.trend
    strength = {
        "period": p,
        "trend_strength": max(0.0, 1 - np.var(resid) / np.var(trend + resid)),
        "seasonal_strength": max(0.0, 1 - np.var(resid) / np.var(seasonal + resid)),
    }
    table = _table(
        {
            "observed": s,
            "trend": pd.Series(trend, s.index),
            "seasonal": pd.Series(seasonal, s.index),
            "resid": pd.Series(resid, s.index),
        }
    )
    return table, jsonable(strength)


def stationarity(series: pd.Series) -> dict[str, Any]:
    """ADF (H0: unit root) and KPSS (H0: stationary) read together."""
    x = series.dropna().to_numpy()
    adf_stat, adf_p, adf_lags, _, crit, _ = adfuller(x, autolag="AIC", result_object=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # KPSS warns when p is outside its lookup table; we report the bound
        kpss_stat, kpss_p, kpss_lags, _ = kpss(x, regression="c", nlags="auto")
    adf_says = adf_p < 0.05
    kpss_says = kpss_p >= 0.05
    verdict = (
        "stationary"
        if adf_says and kpss_says
        else "non-stationary (unit root)"
        if not adf_says and not kpss_says
        else "trend-stationary (difference-free detrending may suffice)"
        if not adf_says and kpss_says
        else "difference-stationary (differencing advised)"
    )
    return jsonable(
        {
            "adf": {"statistic": adf_stat, "p_value": adf_p, "lags": adf_lags, "critical_values": crit},
            "kpss": {
                "statistic": kpss_stat,
                "p_value": kpss_p,
                "lags": kpss_lags,
                "p_value_note": "KPSS p is interpolated in [0.01, 0.1]",
            },
            "verdict": verdict,
            "interpretation": f"ADF p = {adf_p:.3g} (H0 unit root), KPSS p = {kpss_p:.3g} (H0 stationary): {verdict}.",
        }
    )


def _future_index(series: pd.Series, horizon: int) -> pd.Index:
    idx = series.index
    if isinstance(idx, pd.DatetimeIndex):
        freq = _infer_freq(idx)
        if freq:
            return pd.date_range(idx[-1], periods=horizon + 1, freq=freq)[1:]
        return pd.RangeIndex(1, horizon + 1, name="step")
    step = idx[-1] - idx[-2]
    return pd.Index(idx[-1] + step * np.arange(1, horizon + 1), name=idx.name)


def forecast(
    series: pd.Series,
    horizon: int,
    model: str,
    confidence: float,
    seasonal_periods: int | None,
    order: list[int] | None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """ETS (additive error/trend, optional additive season) or ARIMA(p,d,q) forecast with prediction intervals."""
    if not 1 <= horizon <= 1000:
        raise InvalidArgumentError("horizon must be between 1 and 1000.")
    y = series.interpolate(limit_direction="both").to_numpy(dtype="float64")
    alpha = 1 - confidence
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter goes to stderr otherwise; fit stats are returned
        if model == "ets":
            seasonal = "add" if seasonal_periods else None
            fit = ETSModel(
                pd.Series(y), error="add", trend="add", seasonal=seasonal, seasonal_periods=seasonal_periods
            ).fit(disp=False)
            frame = fit.get_prediction(start=len(y), end=len(y) + horizon - 1).summary_frame(alpha=alpha)
            mean, lo, hi = frame["mean"], frame["pi_lower"], frame["pi_upper"]
            spec = f"ETS(A,A,{'A' if seasonal else 'N'})"
        elif model == "arima":
            p, d, q = (order or [1, 1, 1])[:3]
            fit = ARIMA(y, order=(p, d, q)).fit()
            fc = fit.get_forecast(horizon)
            ci = np.asarray(fc.conf_int(alpha=alpha))
            mean, lo, hi = pd.Series(fc.predicted_mean), pd.Series(ci[:, 0]), pd.Series(ci[:, 1])
            spec = f"ARIMA({p},{d},{q})"
        else:
            raise InvalidArgumentError("model must be 'ets' or 'arima'.")
    table = pd.DataFrame(
        {
            "time": _future_index(series, horizon),
            "forecast": np.asarray(mean),
            "lower": np.asarray(lo),
            "upper": np.asarray(hi),
        }
    )
    return table, jsonable({"model": spec, "aic": float(fit.aic), "confidence": confidence, "n_train": len(y)})
