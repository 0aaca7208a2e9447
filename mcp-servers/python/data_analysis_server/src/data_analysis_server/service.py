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
from .tables import cap_records, cap_table, jsonable, markdown_preview

Result = tuple[str, dict[str, Any]]
_TS_SETTINGS = {  # the settings each time-series operation reports back (defaults included)
    "resample": ("rule", "agg"),
    "rolling": ("window", "agg", "fill", "duplicates"),
    "decompose": ("period", "robust", "fill", "duplicates"),
    "stationarity": ("regression", "fill", "duplicates"),
    "forecast": ("model", "trend", "seasonal_periods", "order", "horizon", "confidence", "fill", "duplicates"),
}


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
                "encoding": ds.encoding,
                "schema": datasets.schema(ds.frame),
                "preview": datasets.preview(ds.frame),
            }
        )

    def _dataset_result(self, ds: Dataset, verb: str) -> Result:
        info = self._info(ds)
        cols = ", ".join(f"{c['name']}:{c['dtype']}" for c in info["schema"][:40])
        text = (
            f"{verb} {ds.dataset_id} (SQL table {ds.name}): {info['rows']:,} rows × {info['columns']} columns, "
            f"{ds.nbytes / 2**20:.1f} MiB{f', text encoding {ds.encoding}' if ds.encoding else ''}.\n"
            f"Columns: {cols}\n{markdown_preview(info['preview'])}"
        )
        return text, info

    def load(
        self,
        source: str | None,
        data: str | list[dict[str, Any]] | None,
        fmt: str | None,
        name: str | None,
        options: dict[str, Any] | None,
        encoding: str | None = None,
    ) -> Result:
        if encoding is not None:
            options = {**(options or {}), "encoding": encoding}
        frame, provenance, used, notes = datasets.load_source(source, data, fmt, options, self.settings)
        frame.columns = [str(c) for c in frame.columns]
        default = (source or "inline").replace("\\", "/").rsplit("/", 1)[-1].split("?")[0].rsplit(".", 1)[0]
        ds = self.registry.add(frame, name or default or "dataset", provenance, used)
        text, info = self._dataset_result(ds, "Loaded")
        return text, {**info, "warnings": notes}

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
        intercept: bool | None,
        confidence: float,
        formula: str | None = None,
        drop_collinear: bool = False,
    ) -> Result:
        from . import regression  # statsmodels.api loads on first use, keeping server start short

        frame = self._frame(dataset_id)
        if formula is not None:
            if y is not None or x:
                raise InvalidArgumentError("Give either `formula` or `y` and `x`, not both.")
            out = regression.regress_formula(frame, formula, kind, robust, confidence, intercept, drop_collinear)
        elif y is None or not x:
            raise InvalidArgumentError("Give `y` and a non-empty `x` list, or a `formula` like 'y ~ x1 + C(group)'.")
        else:
            out = regression.regress(
                frame, y, x, kind, robust, True if intercept is None else intercept, confidence, drop_collinear
            )
        return _regression_text(kind, out), out

    def time_series(
        self, dataset_id: str, time_column: str, value_column: str, operation: str, params: dict[str, Any]
    ) -> Result:
        from . import timeindex, timeseries  # statsmodels.tsa loads on first use

        if operation not in timeseries.OPERATIONS:
            raise InvalidArgumentError(f"Unknown operation {operation!r}; use one of {list(timeseries.OPERATIONS)}")
        p = {k: (timeseries.DEFAULTS.get(k) if v is None else v) for k, v in params.items()}
        notes: list[Any] = []
        series = timeindex.build_series(
            self._frame(dataset_id), time_column, value_column, p.get("duplicates"), notes, operation == "resample"
        )
        table, summary = self._ts_dispatch(series, operation, p, notes)
        capped = self._table(table, p.get("limit")) if table is not None else None
        used = {k: p[k] for k in _TS_SETTINGS[operation] if k in p}
        text = f"{operation} of {value_column} over {time_column} ({len(series)} points; {used})."
        if summary:
            text += " " + str(
                summary.get("interpretation") or {k: v for k, v in summary.items() if not isinstance(v, dict)}
            )
        if capped:
            text += "\n" + markdown_preview(capped["rows"], 5)
        return text, {"operation": operation, "settings": used, "table": capped, "summary": summary, "warnings": notes}

    def _ts_dispatch(
        self, series: pd.Series, operation: str, p: dict[str, Any], notes: list[Any]
    ) -> tuple[pd.DataFrame | None, dict[str, Any] | None]:
        from . import timeindex, timeseries

        if operation == "resample":
            return timeseries.resample(series, p["rule"], p["agg"], notes), None
        what = {"rolling": "rolling", "decompose": "STL", "stationarity": "ADF/KPSS"}.get(operation)
        what = what or ("ARIMA" if p["model"] == "arima" else "ETS")
        regular, freq = timeindex.regular(series, p.get("fill"), what, notes)
        if operation == "rolling":
            return timeseries.rolling(regular, int(p["window"]), p["agg"]), None
        if operation == "decompose":
            return timeseries.decompose(regular, freq, p.get("period"), bool(p["robust"]))
        if operation == "stationarity":
            return None, timeseries.stationarity(regular, p["regression"])
        return timeseries.forecast(
            regular, p["horizon"], p["model"], p["confidence"], p.get("seasonal_periods"), p["order"], p["trend"], freq
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
        rows, column_types, total = sql.run_sql(
            tables, query_text, self._limit(limit), self.settings.sql_timeout_s, self.settings.sql_memory_limit
        )
        table = cap_records([c["name"] for c in column_types], rows, total, self.settings.max_chars)
        table["column_types"] = column_types
        types = ", ".join(f"{c['name']}:{c['sql_type']}" for c in column_types[:40])
        return (
            f"{total:,} result rows ({table['returned_rows']} returned). Columns: {types}\n"
            f"{markdown_preview(table['rows'], 10)}",
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


def _num(value: Any, spec: str) -> str:
    return "undefined" if value is None else format(value, spec)


def _regression_text(kind: str, out: dict[str, Any]) -> str:
    stat = "t" if kind == "ols" else "z"
    coefs = "\n".join(
        f"  {c['term']}: {c['estimate']:.6g} (SE {_num(c['std_error'], '.3g')}, {stat} {_num(c.get(stat), '.3g')}, "
        f"p {_num(c['p_value'], '.3g')})"
        for c in out["coefficients"][:30]
    )
    if kind == "ols":
        fit = (
            f"R² {_num(out['r_squared'], '.4f')}, adj. R² {_num(out['adj_r_squared'], '.4f')}, "
            f"F p {_num(out['f_p_value'], '.3g')}, rank {out['rank']}, condition number {out['condition_number']:.3g}"
        )
    else:
        fit = f"pseudo R² {_num(out['pseudo_r_squared'], '.4f')}, LLR p {_num(out['llr_p_value'], '.3g')}"
    return f"{kind.upper()} {out['y']} ~ {' + '.join(out['x'])} (n={out['n']}): {fit}\n{coefs}"
