"""Every plot kind renders a decodable, size-bounded PNG; large inputs are thinned and say so."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import pytest
from mcp import Client
from PIL import Image

from conftest import call_error
from data_analysis_server.errors import InvalidArgumentError
from data_analysis_server.plots import KINDS, MAX_BYTES, PlotSpec, render

pytestmark = pytest.mark.anyio

N = 60_000
RNG = np.random.default_rng(0)
FRAME = pd.DataFrame(
    {
        "a": RNG.normal(size=N),
        "b": RNG.normal(size=N),
        "g": RNG.choice(["x", "y", "z"], N),
        "h": RNG.choice(["p", "q"], N),
        "t": pd.date_range("2020-01-01", periods=N, freq="h"),
    }
)
SPECS = {
    "histogram": PlotSpec("histogram", x="a", hue="g"),
    "scatter": PlotSpec("scatter", x="a", y="b", hue="h"),
    "line": PlotSpec("line", x="a", y="b"),
    "bar": PlotSpec("bar", x="g", y="a"),
    "box": PlotSpec("box", x="g", y="a"),
    "violin": PlotSpec("violin", x="g", y="b"),
    "heatmap": PlotSpec("heatmap", x="g", y="h", value="a"),
    "correlation": PlotSpec("correlation", columns=["a", "b"]),
    "pairs": PlotSpec("pairs", columns=["a", "b"]),
    "timeseries": PlotSpec("timeseries", x="t", y="a"),
}


def _decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def test_every_kind_is_covered() -> None:
    assert set(SPECS) == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_renders_a_bounded_png(kind: str) -> None:
    png, facts = render(FRAME, SPECS[kind])
    image = _decode(png)
    assert image.format == "PNG" and image.size[0] >= 300
    assert len(png) <= MAX_BYTES and facts["bytes"] == len(png)
    assert facts["caption"].startswith(kind)


def test_large_scatter_is_sampled_to_the_point_cap_and_says_so() -> None:
    _, facts = render(FRAME, PlotSpec("scatter", x="a", y="b"))
    assert "random sample of 10,000 of 60,000 rows" in facts["caption"]


def test_line_decimation_keeps_the_extremes() -> None:
    y = np.zeros(100_000)
    y[54_321] = 50.0  # a single spike must survive min/max decimation
    frame = pd.DataFrame({"x": np.arange(100_000), "y": y})
    png, facts = render(frame, PlotSpec("line", x="x", y="y"))
    assert "decimation" in facts["caption"]
    from data_analysis_server.plots import _minmax_decimate

    xs, ys = _minmax_decimate(frame["x"].to_numpy(), y, 10_000, PlotSpec("line"))
    assert len(xs) <= 10_000 and ys.max() == 50.0


def test_bad_plot_arguments_say_what_is_needed() -> None:
    with pytest.raises(InvalidArgumentError, match="needs `y`"):
        render(FRAME, PlotSpec("scatter", x="a"))
    with pytest.raises(InvalidArgumentError, match="max 10"):
        render(FRAME.assign(k=np.arange(N) % 50), PlotSpec("scatter", x="a", y="b", hue="k"))


async def test_plot_tool_returns_image_content_not_a_path(client: Client) -> None:
    from conftest import call

    ds = (await call(client, "load_dataset", data=FRAME.head(2000).to_csv(index=False)))["dataset_id"]
    result = await client.call_tool("plot", {"dataset_id": ds, "kind": "histogram", "x": "a"})
    assert not result.is_error
    kinds = [c.type for c in result.content]
    assert kinds == ["image", "text"]
    _decode(base64.b64decode(result.content[0].data))
    assert result.structured_content["kind"] == "histogram"
    assert "needs `x`" in await call_error(client, "plot", dataset_id=ds, kind="histogram")
