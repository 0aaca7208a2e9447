"""Time-series operations on statsmodels' bundled data and on series with known properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from mcp import Client

from conftest import call, call_error
from data_analysis_server import timeseries as ts

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def co2_monthly() -> pd.DataFrame:
    weekly = sm.datasets.co2.load_pandas().data  # weekly, with NaNs
    monthly = weekly["co2"].resample("MS").mean().interpolate()
    return pd.DataFrame({"month": monthly.index.strftime("%Y-%m-%d"), "co2": monthly.to_numpy()})


async def test_co2_decomposition_finds_trend_and_yearly_season(client: Client, co2_monthly: pd.DataFrame) -> None:
    ds = (await call(client, "load_dataset", data=co2_monthly.to_csv(index=False), name="co2"))["dataset_id"]
    out = await call(
        client, "time_series", dataset_id=ds, time_column="month", value_column="co2", operation="decompose"
    )
    assert out["summary"]["period"] == 12  # inferred from the monthly frequency
    assert out["summary"]["trend_strength"] > 0.99 and out["summary"]["seasonal_strength"] > 0.9
    assert out["table"]["total_rows"] == len(co2_monthly) and out["table"]["truncated"]


async def test_forecast_intervals_contain_the_point_and_widen(client: Client, co2_monthly: pd.DataFrame) -> None:
    ds = (await call(client, "load_dataset", data=co2_monthly.to_csv(index=False), name="co2"))["dataset_id"]
    for model, extra in (("ets", {"seasonal_periods": 12}), ("arima", {"order": [1, 1, 1]})):
        out = await call(
            client,
            "time_series",
            dataset_id=ds,
            time_column="month",
            value_column="co2",
            operation="forecast",
            horizon=24,
            model=model,
            **extra,
        )
        rows = out["table"]["rows"]
        assert len(rows) == 24 and rows[0]["time"].startswith("2002-01-01")
        assert all(r["lower"] < r["forecast"] < r["upper"] for r in rows)
        assert rows[-1]["upper"] - rows[-1]["lower"] > rows[0]["upper"] - rows[0]["lower"]
        assert 360 < rows[0]["forecast"] < 385


def test_stationarity_tells_white_noise_from_a_random_walk() -> None:
    rng = np.random.default_rng(7)
    noise = pd.Series(rng.normal(size=400), index=pd.RangeIndex(400))
    walk = noise.cumsum()
    assert ts.stationarity(noise)["verdict"] == "stationary around a constant"
    assert ts.stationarity(walk)["verdict"].startswith("non-stationary")


def test_resample_and_rolling() -> None:
    frame = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=14, freq="D"), "v": np.arange(14.0)})
    series = ts.build_series(frame, "t", "v")
    weekly = ts.resample(series, "W", "sum")
    assert weekly["v"].tolist() == [0 + 1 + 2 + 3 + 4 + 5 + 6, sum(range(7, 14))]  # 2024-01-01 is a Monday
    rolled = ts.rolling(series, 3, "mean")
    assert rolled["rolling_mean_3"].iloc[2] == pytest.approx(1.0) and np.isnan(rolled["rolling_mean_3"].iloc[0])


def test_nile_yearly_integers_forecast_next_years() -> None:
    nile = sm.datasets.nile.load_pandas().data
    table, info = ts.forecast(ts.build_series(nile, "year", "volume"), 3, "ets", 0.9, None, None)
    assert table["time"].tolist() == [1971.0, 1972.0, 1973.0] and info["model"] == "ETS(A,A,N)"


async def test_time_series_errors(client: Client) -> None:
    frame = pd.DataFrame({"t": ["x", "y", "z", "w", "v"], "v": [1, 2, 3, 4, 5]})
    ds = (await call(client, "load_dataset", data=frame.to_csv(index=False)))["dataset_id"]
    assert "parsed as dates" in await call_error(
        client, "time_series", dataset_id=ds, time_column="t", value_column="v", operation="resample"
    )
