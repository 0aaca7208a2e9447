"""Charts rendered to PNG bytes with matplotlib's Agg backend, sized for a model to look at.

Contract: `render(frame, spec)` returns PNG bytes plus a caption and facts about sampling. Every kind
draws at most `MAX_POINTS` marks: scatter/pairs take a seeded random sample, line/time series keep
each bucket's min and max (so spikes survive), histograms and box statistics are computed from all
rows and only the flier points are thinned. Images target ≤ `MAX_BYTES` (re-rendered at a lower DPI
when larger). The object-oriented Figure API is used, never pyplot, because tools run on worker
threads and pyplot keeps global state. This module never writes files.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .columns import numeric, numeric_columns, require
from .errors import InvalidArgumentError

if TYPE_CHECKING:  # matplotlib costs ~1.5 s to import: it loads on the first plot, not at server start
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

KINDS = ("histogram", "scatter", "line", "bar", "box", "violin", "heatmap", "correlation", "pairs", "timeseries")
MAX_POINTS = 10_000
MAX_BYTES = 150_000
MAX_HUE = 10
MAX_CATEGORIES = 30
AGGS = ("mean", "sum", "median", "min", "max", "count", "std", "var", "nunique", "first", "last")
CORRELATION_METHODS = ("pearson", "spearman", "kendall")


@dataclass
class PlotSpec:
    """Arguments of the `plot` tool."""

    kind: str
    x: str | None = None
    y: str | None = None
    hue: str | None = None
    value: str | None = None
    columns: list[str] | None = None
    bins: int = 30
    agg: str = "mean"
    title: str | None = None
    max_points: int = MAX_POINTS
    notes: list[str] = field(default_factory=list)


def _need(value: str | None, what: str, kind: str) -> str:
    if not value:
        raise InvalidArgumentError(f"plot kind {kind!r} needs `{what}`.")
    return value


def _sample(frame: pd.DataFrame, n: int, spec: PlotSpec) -> pd.DataFrame:
    if len(frame) <= n:
        return frame
    spec.notes.append(f"random sample of {n:,} of {len(frame):,} rows (seed 0)")
    return frame.sample(n=n, random_state=0)


def _minmax_decimate(x: np.ndarray, y: np.ndarray, n: int, spec: PlotSpec) -> tuple[np.ndarray, np.ndarray]:
    """Keep each bucket's min and max so peaks stay visible at ≤ n points."""
    if len(x) <= n:
        return x, y
    buckets = n // 2
    ids = (np.arange(len(y)) * buckets) // len(y)
    filled = np.where(np.isnan(y), np.nanmean(y), y)
    grouped = pd.Series(filled).groupby(ids)
    keep = np.unique(np.concatenate([grouped.idxmin().to_numpy(), grouped.idxmax().to_numpy()]))
    spec.notes.append(f"min/max decimation of {len(x):,} points to {len(keep):,}")
    return x[keep], y[keep]


def _hue_groups(frame: pd.DataFrame, spec: PlotSpec) -> list[tuple[str, pd.DataFrame]]:
    if not spec.hue:
        return [("", frame)]
    require(frame, [spec.hue])
    levels = frame[spec.hue].dropna().unique()
    if len(levels) > MAX_HUE:
        raise InvalidArgumentError(
            f"hue {spec.hue!r} has {len(levels)} levels (max {MAX_HUE}); filter or bin it first."
        )
    return [(str(level), frame[frame[spec.hue] == level]) for level in sorted(levels, key=str)]


def _histogram(ax: Axes, frame: pd.DataFrame, spec: PlotSpec) -> None:
    col = _need(spec.x or spec.y, "x", spec.kind)
    values = numeric(frame, col)
    edges = np.histogram_bin_edges(values.dropna().to_numpy(), bins=max(2, min(spec.bins, 200)))
    for label, part in _hue_groups(frame, spec):
        counts, _ = np.histogram(numeric(part, col).dropna().to_numpy(), bins=edges)
        ax.stairs(counts, edges, fill=True, alpha=0.5 if spec.hue else 0.8, label=label or None)
    ax.set_xlabel(col)
    ax.set_ylabel("count")


def _scatter(ax: Axes, frame: pd.DataFrame, spec: PlotSpec) -> None:
    x, y = _need(spec.x, "x", spec.kind), _need(spec.y, "y", spec.kind)
    numeric(frame, x), numeric(frame, y)
    data = _sample(frame[[c for c in (x, y, spec.hue) if c]].dropna(), spec.max_points, spec)
    for label, part in _hue_groups(data, spec):
        ax.scatter(part[x], part[y], s=4, alpha=0.4, linewidths=0, label=label or None, rasterized=True)
    ax.set_xlabel(x)
    ax.set_ylabel(y)


def _line(ax: Axes, frame: pd.DataFrame, spec: PlotSpec) -> None:
    x, y = _need(spec.x, "x", spec.kind), _need(spec.y, "y", spec.kind)
    require(frame, [x])
    data = frame[[c for c in (x, y, spec.hue) if c]].copy()
    if spec.kind == "timeseries" and not pd.api.types.is_numeric_dtype(data[x]):
        data[x] = pd.to_datetime(data[x], errors="coerce")
    data[y] = numeric(frame, y)
    groups = _hue_groups(data.dropna(subset=[x]).sort_values(x, kind="stable"), spec)
    for label, part in groups:
        xs, ys = _minmax_decimate(
            part[x].to_numpy(), part[y].to_numpy(dtype="float64"), spec.max_points // len(groups), spec
        )
        ax.plot(xs, ys, linewidth=1, label=label or None)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if spec.kind == "timeseries":
        ax.figure.autofmt_xdate()


def _bar(ax: Axes, frame: pd.DataFrame, spec: PlotSpec) -> None:
    x = require(frame, [_need(spec.x, "x", spec.kind)])[0]
    if spec.y:
        values = frame.assign(_v=numeric(frame, spec.y)).groupby(x, observed=True)["_v"].agg(spec.agg)
        label = f"{spec.agg}({spec.y})"
    else:
        values, label = frame[x].value_counts(), "count"
    values = values.sort_values(ascending=False)
    if len(values) > MAX_CATEGORIES:
        spec.notes.append(f"top {MAX_CATEGORIES} of {len(values)} categories")
        values = values.head(MAX_CATEGORIES)
    ax.bar([str(i) for i in values.index], values.to_numpy())
    ax.set_xlabel(x)
    ax.set_ylabel(label)
    ax.tick_params(axis="x", labelrotation=45)


def _grouped_values(frame: pd.DataFrame, spec: PlotSpec) -> tuple[list[str], list[np.ndarray], str]:
    y = _need(spec.y or spec.x, "y", spec.kind)
    values = numeric(frame, y)
    group = spec.x if spec.y and spec.x else None
    if not group:
        return [y], [values.dropna().to_numpy()], y
    require(frame, [group])
    keys = frame[group].astype("string")
    levels = sorted(keys.dropna().unique(), key=str)
    if len(levels) > MAX_CATEGORIES:
        raise InvalidArgumentError(f"{group!r} has {len(levels)} groups (max {MAX_CATEGORIES}); filter it first.")
    return [str(v) for v in levels], [values[keys == v].dropna().to_numpy() for v in levels], y


def _box(ax: Axes, frame: pd.DataFrame, spec: PlotSpec) -> None:
    from matplotlib import cbook

    labels, arrays, y = _grouped_values(frame, spec)
    rng = np.random.default_rng(0)
    box_stats = []
    per_group = max(1, spec.max_points // max(len(arrays), 1))
    for label, arr in zip(labels, arrays, strict=True):
        st = cbook.boxplot_stats(arr, labels=[label])[0]
        if len(st["fliers"]) > per_group:
            st["fliers"] = rng.choice(st["fliers"], per_group, replace=False)
            spec.notes.append(f"outlier marks thinned to {per_group} per group")
        box_stats.append(st)
    ax.bxp(box_stats, flierprops={"markersize": 2, "alpha": 0.4})
    ax.set_ylabel(y)


def _violin(ax: Axes, frame: pd.DataFrame, spec: PlotSpec) -> None:
    labels, arrays, y = _grouped_values(frame, spec)
    per_group = max(50, spec.max_points // max(len(arrays), 1))
    rng = np.random.default_rng(0)
    if any(len(a) > per_group for a in arrays):
        spec.notes.append(f"densities estimated from ≤ {per_group:,} sampled values per group")
    arrays = [rng.choice(a, per_group, replace=False) if len(a) > per_group else a for a in arrays]
    if any(len(a) < 2 for a in arrays):
        raise InvalidArgumentError("Every violin group needs at least 2 values.")
    ax.violinplot(arrays, showmedians=True)
    ax.set_xticks(range(1, len(labels) + 1), labels=labels)
    ax.set_ylabel(y)


def _matrix(ax: Axes, table: pd.DataFrame, fmt: str, vmin: float | None = None, vmax: float | None = None) -> None:
    image = ax.imshow(
        table.to_numpy(dtype="float64"),
        cmap="RdBu_r" if vmin is not None else "viridis",
        vmin=vmin,
        vmax=vmax,
        aspect="auto",
    )
    ax.figure.colorbar(image, ax=ax)
    ax.set_xticks(range(table.shape[1]), labels=[str(c) for c in table.columns], rotation=45, ha="right")
    ax.set_yticks(range(table.shape[0]), labels=[str(i) for i in table.index])
    if table.size <= 150:
        for (i, j), v in np.ndenumerate(table.to_numpy(dtype="float64")):
            ax.text(j, i, format(v, fmt) if np.isfinite(v) else "", ha="center", va="center", fontsize=7)


def _heatmap(ax: Axes, frame: pd.DataFrame, spec: PlotSpec) -> None:
    x, y = _need(spec.x, "x", spec.kind), _need(spec.y, "y", spec.kind)
    value = spec.value
    if x == y:
        raise InvalidArgumentError("heatmap needs two different columns for x and y.")
    require(frame, [x, y])
    if value:
        table = frame.assign(_v=numeric(frame, value)).pivot_table(
            index=y, columns=x, values="_v", aggfunc=spec.agg, observed=True
        )
    else:
        table = pd.crosstab(frame[y], frame[x])
    if max(table.shape) > 50:
        raise InvalidArgumentError(f"heatmap grid is {table.shape}; at most 50 levels per axis — bin or filter first.")
    _matrix(ax, table, ".3g")
    ax.set_xlabel(x)
    ax.set_ylabel(y)


def _correlation(ax: Axes, frame: pd.DataFrame, spec: PlotSpec) -> None:
    cols = numeric_columns(frame, spec.columns)[:30]
    if len(cols) < 2:
        raise InvalidArgumentError("correlation plot needs at least two numeric columns.")
    method = spec.agg if spec.agg in CORRELATION_METHODS else "pearson"
    _matrix(ax, frame[cols].corr(method=method), ".2f", vmin=-1, vmax=1)


def _pairs(fig: Figure, frame: pd.DataFrame, spec: PlotSpec) -> None:
    cols = numeric_columns(frame, spec.columns)[:5]
    if len(cols) < 2:
        raise InvalidArgumentError("pairs plot needs at least two numeric columns (max 5 are drawn).")
    data = _sample(frame[cols].dropna(), min(spec.max_points, 2000), spec)
    axes = fig.subplots(len(cols), len(cols), squeeze=False)
    for i, a in enumerate(cols):
        for j, b in enumerate(cols):
            ax = axes[i][j]
            if i == j:
                ax.hist(data[a], bins=20)
            else:
                ax.scatter(data[b], data[a], s=2, alpha=0.4, linewidths=0, rasterized=True)
            ax.tick_params(labelsize=6)
            if i == len(cols) - 1:
                ax.set_xlabel(b, fontsize=7)
            if j == 0:
                ax.set_ylabel(a, fontsize=7)


_AXES_KINDS = {
    "histogram": _histogram,
    "scatter": _scatter,
    "line": _line,
    "timeseries": _line,
    "bar": _bar,
    "box": _box,
    "violin": _violin,
    "heatmap": _heatmap,
    "correlation": _correlation,
}


def _draw(frame: pd.DataFrame, spec: PlotSpec, dpi: int) -> bytes:
    # The object-oriented API with an explicit Agg canvas: no pyplot, no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 8) if spec.kind == "pairs" else (8, 5), dpi=dpi)
    FigureCanvasAgg(fig)
    if spec.kind == "pairs":
        _pairs(fig, frame, spec)
    else:
        ax = fig.add_subplot()
        _AXES_KINDS[spec.kind](ax, frame, spec)
        if spec.hue and ax.get_legend_handles_labels()[0]:
            ax.legend(title=spec.hue, fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(spec.title or _default_title(spec), fontsize=11)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _default_title(spec: PlotSpec) -> str:
    parts = [p for p in (spec.y, spec.x) if p]
    return f"{spec.kind}: {' vs '.join(parts)}" if parts else spec.kind


def render(frame: pd.DataFrame, spec: PlotSpec) -> tuple[bytes, dict[str, Any]]:
    """Draw the chart; returns (png_bytes, facts) where facts include the caption and sampling notes.

    Raises:
        InvalidArgumentError: unknown kind, missing x/y, too many categories. ColumnError: bad column.
    """
    if spec.kind not in KINDS:
        raise InvalidArgumentError(f"Unknown plot kind {spec.kind!r}; choose one of {list(KINDS)}")
    allowed = CORRELATION_METHODS if spec.kind == "correlation" else AGGS
    if spec.agg not in allowed and spec.agg != "mean":  # "mean" is the default (pearson for correlation)
        raise InvalidArgumentError(
            f"agg={spec.agg!r} is not allowed for a {spec.kind} plot; use one of {list(allowed)}."
        )
    spec.max_points = max(100, min(spec.max_points, MAX_POINTS))
    png = b""
    for dpi in (100, 72, 50):
        spec.notes.clear()
        png = _draw(frame, spec, dpi)
        if len(png) <= MAX_BYTES:
            break
    caption = _default_title(spec) + (f" ({'; '.join(dict.fromkeys(spec.notes))})" if spec.notes else "")
    return png, {
        "kind": spec.kind,
        "caption": caption,
        "rows": len(frame),
        "bytes": len(png),
        "dpi": dpi,
        "notes": list(dict.fromkeys(spec.notes)),
    }
