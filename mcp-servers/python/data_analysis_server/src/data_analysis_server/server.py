"""MCP face of the data-analysis service: tool, resource and prompt registration only.

Contract: each tool has typed parameters (the SDK derives the input schema and validates before the
body runs) and an output model (its `outputSchema`); it runs the service method on a worker thread,
reports progress when the caller sent a progressToken, and returns a short text summary plus
`structuredContent`. `_tool` is the one place where domain errors become `isError` results with the
domain message; unexpected exceptions are logged to stderr and reach the client without internals.
stdout is the MCP wire: nothing here prints.
"""

from __future__ import annotations

import argparse
import base64
import functools
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, ParamSpec, TypeVar, cast

import anyio
import numpy as np
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, InputRequiredResult, TextContent
from pydantic import Field

from . import __version__
from .arguments import close_objects, unknown_arguments
from .caveats import text_with_warnings
from .config import load_settings
from .errors import AnalysisError
from .plots import PlotSpec
from .schemas import (
    Aggregation,
    CorrelationOut,
    DatasetListOut,
    DatasetOut,
    DropOut,
    Filter,
    HypothesisOut,
    Operation,
    Pivot,
    PlotOut,
    ProfileOut,
    RegressionOut,
    SortKey,
    TableOut,
    TimeSeriesOut,
)
from .service import AnalysisService
from .stats import HypothesisSpec

logger = logging.getLogger("data_analysis_server")
P = ParamSpec("P")
T = TypeVar("T")

INSTRUCTIONS = (
    "Load data with load_dataset (path under the allowed roots, http(s) URL, or inline CSV/JSON), then refer to it by "
    "dataset_id. Use profile/correlate/test_hypothesis/regress/time_series for statistics, query or sql for tables, "
    "transform to derive new datasets, and plot to see a PNG chart. Tables are capped; check `truncated`."
)


class DataAnalysisServer(MCPServer):
    """MCPServer whose tools refuse unknown argument names (the SDK's validation would drop them silently)."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context | None = None
    ) -> CallToolResult | InputRequiredResult:
        tool = self._tool_manager.get_tool(name)
        if tool is not None and isinstance(arguments, dict):
            problems = unknown_arguments(tool.parameters, arguments)
            if problems:
                raise ToolError(f"Invalid arguments for {name}: " + " ".join(p[0].upper() + p[1:] for p in problems))
        return await super().call_tool(name, arguments, context)

    def close_tool_schemas(self) -> None:
        """Publish `additionalProperties: false` on every tool's argument objects (call after registering tools)."""
        for tool in self._tool_manager.list_tools():
            close_objects(tool.parameters)


mcp = DataAnalysisServer("data-analysis", version=__version__, instructions=INSTRUCTIONS)
service = AnalysisService(load_settings())

DatasetId = Annotated[str, Field(description="Id returned by load_dataset, e.g. 'ds1_sales'")]
Limit = Annotated[int | None, Field(description="Max rows to return (default 100)", ge=0)]


def _tool(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Map anticipated failures to tool errors carrying our message; everything else stays a logged crash."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except AnalysisError as exc:
            raise ToolError(str(exc)) from exc
        except MemoryError:
            raise ToolError("Out of memory: drop datasets (drop_dataset) or work on a filtered subset.") from None
        except (ValueError, TypeError, ArithmeticError, np.linalg.LinAlgError) as exc:
            # A library rejected the data (constant column, singular matrix, wrong dtype): the caller can
            # act on the library's first line, so it is passed on; the traceback stays in the log.
            logger.exception("%s failed in a library call", fn.__name__)
            first = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
            raise ToolError(
                f"Computation failed ({type(exc).__name__}: {first}). Check column types, missing values "
                "and group sizes, or try a different method."
            ) from exc

    return wrapper


async def _run(ctx: Context | None, work: Callable[[], T], label: str) -> T:
    """Run blocking work on a worker thread, so the session keeps answering.

    A caller that asked for progress gets it at the start, every `progress_interval_s` while the work runs,
    and at the end (the SDK makes these no-ops for a caller that did not ask); the value is elapsed seconds,
    and the end carries total = progress. Clients and gateways that extend a request's timeout on progress
    therefore wait out a long load or fit.
    """
    if ctx is None:
        return await anyio.to_thread.run_sync(work)
    started = time.monotonic()
    finished = anyio.Event()
    outcome: dict[str, Any] = {}

    async def call() -> None:
        try:
            outcome["value"] = await anyio.to_thread.run_sync(work)
        except Exception as exc:  # re-raised below, outside the task group (which would wrap it)
            outcome["error"] = exc
        finally:
            finished.set()

    await ctx.report_progress(0, None, f"{label}…")
    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        while not finished.is_set():
            with anyio.move_on_after(service.settings.progress_interval_s):
                await finished.wait()
            if not finished.is_set():
                elapsed = time.monotonic() - started
                await ctx.report_progress(elapsed, None, f"{label}… {elapsed:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    elapsed = time.monotonic() - started
    await ctx.report_progress(elapsed, elapsed, f"{label} done")
    return cast(T, outcome["value"])


def _result(summary: str, data: dict[str, Any]) -> CallToolResult:
    """The one result shape: `warnings` always present, and one 'Warning: …' line per warning before the text."""
    data.setdefault("warnings", [])
    text = text_with_warnings(summary, data["warnings"])
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


@mcp.tool()
@_tool
async def load_dataset(
    source: Annotated[str | None, Field(description="File path under the allowed roots, or an http(s) URL")] = None,
    data: Annotated[
        str | list[dict[str, Any]] | None, Field(description="Inline CSV text or JSON records instead of source")
    ] = None,
    format: Annotated[
        Literal["csv", "tsv", "json", "jsonl", "parquet", "excel"] | None, Field(description="Inferred when absent")
    ] = None,
    name: Annotated[str | None, Field(description="Friendly name; also the SQL table name")] = None,
    options: Annotated[
        dict[str, Any] | None,
        Field(
            description=(
                "Reader options: csv sep/header/skiprows/nrows/usecols/na_values/decimal/parse_dates/thousands/"
                "comment; json orient; excel sheet_name/header/skiprows/nrows/usecols; parquet columns"
            )
        ),
    ] = None,
    encoding: Annotated[
        str | None,
        Field(
            description=(
                "Text encoding of a CSV/TSV/JSON file or URL (a Python codec: 'utf-8', 'cp1252', 'latin-1', "
                "'utf-16', 'shift_jis' …). Default: UTF-8 when the bytes are valid UTF-8, else detected "
                "(charset-normalizer) and reported as a warning; the result's `encoding` says which was used"
            )
        ),
    ] = None,
    ctx: Context | None = None,
) -> Annotated[CallToolResult, DatasetOut]:
    """Load a CSV/TSV/JSON/JSONL/Parquet/Excel dataset into memory; returns dataset_id, shape, schema and a
    5-row preview.
    """
    return _result(*await _run(ctx, lambda: service.load(source, data, format, name, options, encoding), "loading"))


@mcp.tool()
@_tool
async def list_datasets() -> Annotated[CallToolResult, DatasetListOut]:
    """List loaded datasets with shape, memory use and source."""
    return _result(*service.list())


@mcp.tool()
@_tool
async def describe_dataset(dataset_id: DatasetId) -> Annotated[CallToolResult, DatasetOut]:
    """Schema (dtypes, missing counts), memory and a preview of one dataset."""
    return _result(*await _run(None, lambda: service.describe(dataset_id), "describe"))


@mcp.tool()
@_tool
async def drop_dataset(dataset_id: DatasetId) -> Annotated[CallToolResult, DropOut]:
    """Remove a dataset from memory."""
    return _result(*service.drop(dataset_id))


@mcp.tool()
@_tool
async def profile(
    dataset_id: DatasetId,
    columns: Annotated[list[str] | None, Field(description="Columns to profile (default all)")] = None,
    ctx: Context | None = None,
) -> Annotated[CallToolResult, ProfileOut]:
    """Descriptive statistics per column: count, mean, sd, quantiles, skew, kurtosis, missing, distinct, top
    values, IQR and robust-z outliers.
    """
    return _result(*await _run(ctx, lambda: service.profile(dataset_id, columns), "profiling"))


@mcp.tool()
@_tool
async def correlate(
    dataset_id: DatasetId,
    columns: Annotated[list[str] | None, Field(description="Numeric columns (default all numeric, max 30)")] = None,
    method: Literal["pearson", "spearman", "kendall"] = "pearson",
    ctx: Context | None = None,
) -> Annotated[CallToolResult, CorrelationOut]:
    """Correlation matrix with two-sided p-values and pairwise-complete n."""
    return _result(*await _run(ctx, lambda: service.correlate(dataset_id, columns, method), "correlating"))


@mcp.tool()
@_tool
async def test_hypothesis(
    dataset_id: DatasetId,
    test: Literal[
        "t_one_sample",
        "t_two_sample",
        "t_paired",
        "mann_whitney",
        "wilcoxon",
        "kruskal",
        "anova_oneway",
        "chi_square_independence",
        "chi_square_goodness_of_fit",
        "shapiro",
        "ks_2samp",
        "levene",
        "proportions_z",
    ],
    column: Annotated[
        str | None, Field(description="Value column (numeric; categorical for chi-square; binary for proportions_z)")
    ] = None,
    group_column: Annotated[str | None, Field(description="Column defining groups for two/k-sample tests")] = None,
    groups: Annotated[
        list[str] | None, Field(description="Which groups to compare (default all; two-sample tests need exactly two)")
    ] = None,
    column_b: Annotated[
        str | None, Field(description="Second column: paired tests, chi-square independence, ks_2samp")
    ] = None,
    mu0: Annotated[float, Field(description="Hypothesised mean/location for one-sample tests")] = 0.0,
    p0: Annotated[float, Field(description="Hypothesised proportion for one-sample proportions_z", gt=0, lt=1)] = 0.5,
    equal_var: Annotated[bool, Field(description="t_two_sample: False = Welch (default), True = Student")] = False,
    alternative: Literal["two-sided", "less", "greater"] = "two-sided",
    expected: Annotated[
        dict[str, float] | None, Field(description="Goodness of fit: {category: expected proportion or count}")
    ] = None,
    success: Annotated[
        str | int | float | bool | None, Field(description="proportions_z: value counted as success")
    ] = None,
    correction: Annotated[bool, Field(description="chi-square 2x2 Yates continuity correction")] = True,
    confidence: Annotated[float, Field(ge=0.5, lt=1)] = 0.95,
    ctx: Context | None = None,
) -> Annotated[CallToolResult, HypothesisOut]:
    """Run a hypothesis test; returns statistic, p-value, df, effect size with CI and a one-line reading.
    anova_oneway adds Tukey HSD.
    """
    spec = HypothesisSpec(
        test,
        column,
        column_b,
        group_column,
        groups,
        mu0,
        p0,
        equal_var,
        alternative,
        expected,
        success,
        correction,
        confidence,
    )
    return _result(*await _run(ctx, lambda: service.test(dataset_id, spec), "testing"))


@mcp.tool()
@_tool
async def regress(
    dataset_id: DatasetId,
    y: Annotated[str | None, Field(description="Response column (numeric for ols; two-valued for logit)")] = None,
    x: Annotated[list[str] | None, Field(description="Predictor columns; categorical ones are one-hot encoded")] = None,
    formula: Annotated[
        str | None,
        Field(
            description=(
                "Instead of y/x, a Wilkinson formula: 'y ~ x1*x2 + C(g) + C(g):x1 + I(x3**2) + poly(x4, 3) + log(x5)'; "
                "'- 1' or '0 +' drops the intercept, `backticks` quote odd names, (a+b)**2 = all pairwise "
                "interactions. Parsed, never evaluated: only columns, C(), poly(), I() and log/log10/log2/log1p/"
                "sqrt/exp/abs of columns are allowed"
            )
        ),
    ] = None,
    kind: Literal["ols", "logit"] = "ols",
    robust: Annotated[
        bool, Field(description="Heteroskedasticity-robust SEs (HC3 for OLS with normal p-values, HC0 for logit)")
    ] = False,
    intercept: Annotated[
        bool | None,
        Field(
            description=(
                "Fit an intercept (default true). With a formula, say it in the formula; if given, it must agree"
            )
        ),
    ] = None,
    drop_collinear: Annotated[
        bool,
        Field(
            description=(
                "Rank-deficient design: false (default) = error naming the collinear terms; true = drop them and warn"
            )
        ),
    ] = False,
    confidence: Annotated[float, Field(ge=0.5, lt=1)] = 0.95,
    ctx: Context | None = None,
) -> Annotated[CallToolResult, RegressionOut]:
    """Multiple regression: coefficient table (estimate, SE, t/z, p, CI), R², adj. R², F, AIC/BIC, n, rank and the
    condition number of the column-scaled design; OLS diagnostics (Durbin-Watson, Breusch-Pagan, Jarque-Bera, VIF).
    OLS is solved by pivoted QR of the column-scaled design (covariance from R⁻¹R⁻ᵀ); collinear terms are an error
    naming them; logit separation (which predictor) is an error; non-convergence, a singular Hessian, an
    ill-conditioned design and dropped rows are `warnings`. Undefined numbers are null with a `<name>_reason`.
    """
    return _result(
        *await _run(
            ctx,
            lambda: service.regress(dataset_id, y, x, kind, robust, intercept, confidence, formula, drop_collinear),
            "fitting",
        )
    )


@mcp.tool()
@_tool
async def time_series(
    dataset_id: DatasetId,
    time_column: str,
    value_column: str,
    operation: Literal["resample", "rolling", "decompose", "stationarity", "forecast"],
    rule: Annotated[str | None, Field(description="resample frequency: D, W, MS, QS, YS, h … (default MS)")] = None,
    agg: Annotated[
        Literal["mean", "sum", "min", "max", "median", "count", "std", "first", "last"] | None,
        Field(description="resample/rolling aggregate (default mean); an empty period is null (count: 0)"),
    ] = None,
    window: Annotated[int | None, Field(description="rolling window in periods (default 7)", ge=2)] = None,
    period: Annotated[
        int | None, Field(description="decompose: seasonal period (default from the frequency: MS 12, D 7, …)", ge=2)
    ] = None,
    robust: Annotated[bool | None, Field(description="decompose: robust STL (default true)")] = None,
    horizon: Annotated[int | None, Field(description="forecast steps ahead (default 12)", ge=1, le=1000)] = None,
    model: Annotated[Literal["ets", "arima"] | None, Field(description="forecast model (default ets)")] = None,
    trend: Annotated[
        Literal["add", "damped", "none"] | None, Field(description="ETS trend (default add = additive)")
    ] = None,
    seasonal_periods: Annotated[
        int | None, Field(description="ETS additive season length (default: no season)", ge=2)
    ] = None,
    order: Annotated[
        list[int] | None, Field(description="ARIMA (p, d, q) (default [1, 1, 1])", min_length=3, max_length=3)
    ] = None,
    regression: Annotated[
        Literal["c", "ct", "ctt", "n"] | None,
        Field(description="stationarity: deterministic terms c=constant (default), ct=+trend, ctt=+quadratic, n=none"),
    ] = None,
    fill: Annotated[
        Literal["interpolate", "ffill", "bfill", "zero", "none"] | None,
        Field(
            description=(
                "How to fill missing periods/values of a gappy regular series (default: refuse). 'none' = ARIMA "
                "models them as missing. Irregular timestamps are always refused: resample first"
            )
        ),
    ] = None,
    duplicates: Annotated[
        Literal["mean", "sum", "first", "last", "min", "max", "median"] | None,
        Field(description="How to combine rows with the same timestamp (default: refuse; resample needs none)"),
    ] = None,
    confidence: Annotated[float, Field(ge=0.5, lt=1)] = 0.95,
    limit: Limit = None,
    ctx: Context | None = None,
) -> Annotated[CallToolResult, TimeSeriesOut]:
    """Resample, rolling statistics, STL decomposition, stationarity (ADF + KPSS), or forecast (ETS or ARIMA with
    prediction intervals). Every data change is explicit and reported in `warnings`: rows with unparseable times are
    dropped and counted (refused past 5%), duplicate timestamps need `duplicates`, irregular timestamps are refused
    (resample first), gaps need `fill`. Defaults: rule MS, agg mean, window 7, STL robust, model ets with additive
    error and trend and no season, ARIMA order (1,1,1), horizon 12, regression c; `settings` echoes what was used.
    Models need at least their parameter count + 2 points (ETS seasonal: two full seasons).
    """
    params = {
        "rule": rule,
        "agg": agg,
        "window": window,
        "period": period,
        "robust": robust,
        "horizon": horizon,
        "model": model,
        "trend": trend,
        "seasonal_periods": seasonal_periods,
        "order": order,
        "regression": regression,
        "fill": fill,
        "duplicates": duplicates,
        "confidence": confidence,
        "limit": limit,
    }
    return _result(
        *await _run(
            ctx, lambda: service.time_series(dataset_id, time_column, value_column, operation, params), operation
        )
    )


@mcp.tool()
@_tool
async def query(
    dataset_id: DatasetId,
    filters: Annotated[list[Filter] | None, Field(description="Predicates combined with AND")] = None,
    group_by: list[str] | None = None,
    aggregations: list[Aggregation] | None = None,
    pivot: Pivot | None = None,
    sort: list[SortKey] | None = None,
    columns: Annotated[list[str] | None, Field(description="Columns to keep in the output")] = None,
    limit: Limit = None,
    ctx: Context | None = None,
) -> Annotated[CallToolResult, TableOut]:
    """Filter, group/aggregate or pivot, and sort with structured arguments (no expression strings)."""
    kwargs = {
        "filters": [f.model_dump() for f in filters or []],
        "group_by": group_by,
        "aggregations": [a.model_dump(by_alias=True) for a in aggregations or []],
        "pivot": pivot.model_dump() if pivot else None,
        "sort": [s.model_dump() for s in sort or []],
        "columns": columns,
    }
    return _result(*await _run(ctx, lambda: service.query(dataset_id, limit, **kwargs), "querying"))


@mcp.tool()
@_tool
async def sql(
    query: Annotated[str, Field(description="One read-only SELECT; datasets are tables named by their table_name")],
    limit: Limit = None,
    ctx: Context | None = None,
) -> Annotated[CallToolResult, TableOut]:
    """Read-only SQL (DuckDB dialect) over loaded datasets: no file/network access, settings locked, time-limited."""
    return _result(*await _run(ctx, lambda: service.sql(query, limit), "sql"))


@mcp.tool()
@_tool
async def transform(
    dataset_id: DatasetId,
    operations: Annotated[
        list[Operation],
        Field(
            min_length=1,
            description=(
                "Steps in order: drop_na(columns?, how), fill_na(columns?, method, value), dedupe(columns?, "
                "keep), rename(mapping), "
                "cast(column, to, format?), bin(column, bins, method, labels?, new_column?), one_hot(columns, "
                "drop_first), "
                "standardize(columns?, method), derive(new_column, expression), filter(filters), "
                "drop_columns(columns), select_columns(columns)"
            ),
        ),
    ],
    new_name: Annotated[str | None, Field(description="Name of the new dataset")] = None,
    ctx: Context | None = None,
) -> Annotated[CallToolResult, DatasetOut]:
    """Apply preparation steps and register the result as a NEW dataset (the source is never modified)."""
    ops = [op.model_dump(exclude_none=True) for op in operations]
    for op, model in zip(ops, operations, strict=True):
        if model.filters is not None:
            op["filters"] = [f.model_dump() for f in model.filters]
    return _result(*await _run(ctx, lambda: service.transform(dataset_id, ops, new_name), "transforming"))


@mcp.tool()
@_tool
async def plot(
    dataset_id: DatasetId,
    kind: Literal[
        "histogram", "scatter", "line", "bar", "box", "violin", "heatmap", "correlation", "pairs", "timeseries"
    ],
    x: Annotated[str | None, Field(description="x column (group column for box/violin, category for bar)")] = None,
    y: Annotated[str | None, Field(description="y column")] = None,
    hue: Annotated[str | None, Field(description="Colour by this column (≤ 10 levels)")] = None,
    value: Annotated[
        str | None, Field(description="heatmap: numeric column aggregated per (x, y) cell; counts when absent")
    ] = None,
    columns: Annotated[list[str] | None, Field(description="correlation/pairs: numeric columns")] = None,
    bins: Annotated[int, Field(ge=2, le=200)] = 30,
    agg: Annotated[str, Field(description="bar/heatmap aggregate (mean, sum, median, …); correlation method")] = "mean",
    title: str | None = None,
    ctx: Context | None = None,
) -> Annotated[CallToolResult, PlotOut]:
    """Draw a chart and return it as a PNG image (≤ 10k points drawn, ≈ ≤ 150 KB) with a caption."""
    spec = PlotSpec(kind, x, y, hue, value, columns, bins, agg, title)
    png, caption, facts = await _run(ctx, lambda: service.plot(dataset_id, spec), "rendering")
    image = ImageContent(type="image", data=base64.b64encode(png).decode("ascii"), mime_type="image/png")
    facts.setdefault("warnings", [])
    text = TextContent(type="text", text=text_with_warnings(caption, facts["warnings"]))
    return CallToolResult(content=[image, text], structured_content=facts)


@mcp.resource("dataset://{dataset_id}/schema", mime_type="application/json")
def dataset_schema(dataset_id: str) -> dict[str, Any]:
    """Column names, dtypes and missing counts of a loaded dataset."""
    info = service.describe(dataset_id)[1]
    return {k: info[k] for k in ("dataset_id", "table_name", "rows", "columns", "schema")}


@mcp.resource("dataset://{dataset_id}/preview", mime_type="application/json")
def dataset_preview(dataset_id: str) -> dict[str, Any]:
    """The first rows of a loaded dataset."""
    info = service.describe(dataset_id)[1]
    return {"dataset_id": dataset_id, "rows": info["preview"]}


@mcp.prompt()
def explore_dataset(dataset_id: str) -> str:
    """A step-by-step exploratory analysis plan for one dataset."""
    return (
        f"Explore dataset {dataset_id}. 1) describe_dataset to see the schema. 2) profile to find missing values, "
        "skew and "
        "outliers. 3) correlate the numeric columns. 4) plot histograms of key variables and a correlation heatmap. "
        "5) Form one or two hypotheses and check them with test_hypothesis (state assumptions; prefer Welch for two "
        "means) or regress. 6) Summarise findings with effect sizes and confidence intervals, not only p-values."
    )


mcp.close_tool_schemas()


def main() -> None:
    """Console entry point: serve over stdio, logging to stderr."""
    parser = argparse.ArgumentParser(
        prog="data-analysis-server", description="Data analysis MCP server over stdio (settings: DATA_ANALYSIS_*)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.info("data-analysis-server %s, roots: %s", __version__, [str(r) for r in service.settings.roots])
    mcp.run("stdio")


if __name__ == "__main__":
    main()
