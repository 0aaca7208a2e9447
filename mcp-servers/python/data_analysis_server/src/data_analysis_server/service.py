"""The analysis service: one object per server holding settings and the dataset registry.

Contract: each public method implements one tool on plain Python values and returns
`(summary, structured)` — a short human/LLM-readable text and a JSON-safe dict matching the tool's
output model. It resolves dataset ids, caps tables, and names new datasets; the statistics live in
the domain modules. It raises only `AnalysisError` subclasses for anticipated failures and knows
nothing about MCP, so it can be driven directly by tests and the benchmark.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from . import datasets, plots, profile, query, sql, stats, transform
from .config import Settings
from .errors import InvalidArgumentError
from .registry import Dataset, Registry
from .tables import cap_table, jsonable, markdown_preview

Result = tuple[str, dict[str, Any]]


class AnalysisService:
    """Tool implementations over a shared registry."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = Registry(settings.memory_budget_bytes)

    def _frame(self, dataset_id: str) -> pd.DataFrame:
        return self.registry.get(dataset_id).frame

    def _limit(self, limit: int | None) -> int:
        if limit is not None and limit < 0:
            raise InvalidArgumentError("limit must be ≥ 0.")
        return min(limit if limit is not None else self.settings.max_rows, 10 * self.settings.max_rows)

    def _table(self, frame: pd.DataFrame, limit: int | None = None) -> dict[str, Any]:
        return cap_table(frame, self._limit(limit), self.settings.max_chars)

    def _info(self, ds: Dataset) -> dict[str, Any]:
        rows, cols = ds.frame.shape
        return jsonable(
            {
                "dataset_id": ds.dataset_id,
                "table_name": ds.name,
                "rows": rows,
                "columns": cols,
                "memory_bytes": ds.nbytes,
                "source": ds.source,
                "schema": datasets.schema(ds.frame),
                "preview": datasets.preview(ds.frame),
            }
        )

    def _dataset_result(self, ds: Dataset, verb: str) -> Result:
        info = self._info(ds)
        cols = ", ".join(f"{c['name']}:{c['dtype']}" for c in info["schema"][:40])
        text = (
            f"{verb} {ds.dataset_id} (SQL table {ds.name}): {info['rows']:,} rows × {info['columns']} columns, "
            f"{ds.nbytes / 2**20:.1f} MiB.\nColumns: {cols}\n{markdown_preview(info['preview'])}"
        )
        return text, info

    def load(
        self,
        source: str | None,
        data: str | list[dict[str, Any]] | None,
        fmt: str | None,
        name: str | None,
        options: dict[str, Any] | None,
    ) -> Result:
        frame, provenance = datasets.read_source(source, data, fmt, options, self.settings)
        frame.columns = [str(c) for c in frame.columns]
        default = (source or "inline").replace("\\", "/").rsplit("/", 1)[-1].split("?")[0].rsplit(".", 1)[0]
        ds = self.registry.add(frame, name or default or "dataset", provenance)
        return self._dataset_result(ds, "Loaded")

    def list(self) -> Result:
        items = [
            {
                "dataset_id": d.dataset_id,
                "table_name": d.name,
                "rows": len(d.frame),
                "columns": d.frame.shape[1],
                "memory_bytes": d.nbytes,
                "source": d.source,
            }
            for d in self.registry.all()
        ]
        text = (
            "\n".join(f"- {i['dataset_id']}: {i['rows']:,}×{i['columns']} from {i['source']}" for i in items)
            or "No datasets loaded."
        )
        return text, {
            "datasets": items,
            "total_bytes": self.registry.total_bytes(),
            "budget_bytes": self.settings.memory_budget_bytes,
        }

    def describe(self, dataset_id: str) -> Result:
        return self._dataset_result(self.registry.get(dataset_id), "Dataset")

    def drop(self, dataset_id: str) -> Result:
        self.registry.drop(dataset_id)
        return f"Dropped {dataset_id}.", {"dataset_id": dataset_id, "dropped": True}

    def profile(self, dataset_id: str, columns: list[str] | None) -> Result:
        out = profile.profile(self._frame(dataset_id), columns)
        lines = []
        for c in out["columns"][:30]:
            if "mean" in c:
                lines.append(
                    f"- {c['name']} ({c['dtype']}): mean {c['mean']:.4g}, sd {c['sd'] or 0:.4g}, median "
                    f"{c['median']:.4g}, "
                    f"range [{c['min']:.4g}, {c['max']:.4g}], missing {c['missing']}, IQR outliers "
                    f"{c['outliers']['iqr_count']}"
                )
            else:
                top = ", ".join(f"{t['value']} ({t['count']})" for t in c["top_values"][:3])
                lines.append(
                    f"- {c['name']} ({c['dtype']}): {c['distinct']} distinct, missing {c['missing']}; top: {top}"
                )
        return f"Profile of {dataset_id} ({out['rows']:,} rows):\n" + "\n".join(lines), {
            "dataset_id": dataset_id,
            **out,
        }

    def correlate(self, dataset_id: str, columns: list[str] | None, method: str) -> Result:
        out = profile.correlate(self._frame(dataset_id), columns, method)
        top = "; ".join(
            f"{p['a']}~{p['b']} r={p['r']:.3f} (p={p['p_value']:.2g}, n={p['n']})"
            for p in out["strongest_pairs"][:5]
            if p["r"] is not None
        )
        return f"{method.title()} correlations over {len(out['columns'])} columns. Strongest: {top}", {
            "dataset_id": dataset_id,
            **out,
        }

    def test(self, dataset_id: str, spec: stats.HypothesisSpec) -> Result:
        out = stats.run_test(self._frame(dataset_id), spec)
        return out["interpretation"], out

    def regress(
        self,
        dataset_id: str,
        y: str | None,
        x: list[str] | None,
        kind: str,
        robust: bool,
        intercept: bool,
        confidence: float,
        formula: str | None = None,
    ) -> Result:
        from . import regression  # statsmodels.api loads on first use, keeping server start short

        frame = self._frame(dataset_id)
        if formula is not None:
            if y is not None or x:
                raise InvalidArgumentError("Give either `formula` or `y` and `x`, not both.")
            out = regression.regress_formula(frame, formula, kind, robust, confidence)
        elif y is None or not x:
            raise InvalidArgumentError("Give `y` and a non-empty `x` list, or a `formula` like 'y ~ x1 + C(group)'.")
        else:
            out = regression.regress(frame, y, x, kind, robust, intercept, confidence)
        y, x = out["y"], out["x"]
        coefs = "\n".join(
            f"  {c['term']}: {c['estimate']:.6g} (SE {c['std_error']:.3g}, p {c['p_value']:.3g})"
            for c in out["coefficients"][:30]
        )
        fit = (
            f"R² {out['r_squared']:.4f}, adj. R² {out['adj_r_squared']:.4f}, F p {out['f_p_value']:.3g}"
            if kind == "ols"
            else f"pseudo R² {out['pseudo_r_squared']:.4f}, LLR p {out['llr_p_value']:.3g}"
        )
        return f"{kind.upper()} {y} ~ {' + '.join(x)} (n={out['n']}): {fit}\n{coefs}", out

    def time_series(
        self, dataset_id: str, time_column: str, value_column: str, operation: str, params: dict[str, Any]
    ) -> Result:
        from . import timeseries  # statsmodels.tsa loads on first use

        if operation not in timeseries.OPERATIONS:
            raise InvalidArgumentError(f"Unknown operation {operation!r}; use one of {list(timeseries.OPERATIONS)}")
        series = timeseries.build_series(self._frame(dataset_id), time_column, value_column)
        table, summary = self._ts_dispatch(series, operation, params)
        capped = self._table(table, params.get("limit")) if table is not None else None
        text = f"{operation} of {value_column} over {time_column} ({len(series)} points)."
        if summary:
            text += " " + str(
                summary.get("interpretation") or {k: v for k, v in summary.items() if not isinstance(v, dict)}
            )
        if capped:
            text += "\n" + markdown_preview(capped["rows"], 5)
        return text, {"operation": operation, "table": capped, "summary": summary}

    def _ts_dispatch(
        self, series: pd.Series, operation: str, p: dict[str, Any]
    ) -> tuple[pd.DataFrame | None, dict[str, Any] | None]:
        from . import timeseries

        if operation == "resample":
            return timeseries.resample(series, p.get("rule") or "MS", p.get("agg") or "mean"), None
        if operation == "rolling":
            return timeseries.rolling(series, int(p.get("window") or 7), p.get("agg") or "mean"), None
        if operation == "decompose":
            return timeseries.decompose(series, p.get("period"))
        if operation == "stationarity":
            return None, timeseries.stationarity(series)
        return timeseries.forecast(
            series,
            int(p.get("horizon") or 12),
            p.get("model") or "ets",
            p.get("confidence") or 0.95,
            p.get("seasonal_periods"),
            p.get("order"),
        )

    def query(self, dataset_id: str, limit: int | None, **kwargs: Any) -> Result:
        out = query.run_query(self._frame(dataset_id), **kwargs)
        table = self._table(out, limit)
        return (
            f"{table['total_rows']:,} result rows ({table['returned_rows']} "
            f"returned).\n{markdown_preview(table['rows'], 10)}",
            table,
        )

    def sql(self, query_text: str, limit: int | None) -> Result:
        tables = {d.name: d.frame for d in self.registry.all()}
        frame, total = sql.run_sql(
            tables, query_text, self._limit(limit), self.settings.sql_timeout_s, self.settings.sql_memory_limit
        )
        table = self._table(frame, limit)
        table.update(total_rows=total, truncated=table["returned_rows"] < total)
        return (
            f"{total:,} result rows ({table['returned_rows']} returned).\n{markdown_preview(table['rows'], 10)}",
            table,
        )

    def transform(self, dataset_id: str, operations: list[dict[str, Any]], new_name: str | None) -> Result:
        source = self.registry.get(dataset_id)
        frame = transform.apply_operations(source.frame, operations)
        ds = self.registry.add(frame, new_name or f"{source.name}_t", f"transform of {dataset_id}")
        return self._dataset_result(ds, f"Created from {dataset_id} by {len(operations)} operation(s):")

    def plot(self, dataset_id: str, spec: plots.PlotSpec) -> tuple[bytes, str, dict[str, Any]]:
        png, facts = plots.render(self._frame(dataset_id), spec)
        return png, f"{facts['caption']} — PNG {facts['bytes'] / 1024:.0f} KB from {facts['rows']:,} rows.", facts
