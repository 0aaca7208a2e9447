"""The tools' logic, without MCP: validate (layer 1), run on the backend (layers 2 and 3), shape the result.

Contract: each public coroutine returns a `Result` — the structured content (a dict matching the tool's
output model in `schemas`, `warnings` always present) and its text rendering, which starts with one
`Warning: <message>` line per warning, then a one-line summary, then the data as compact JSON (so a
client that shows only text still sees every row). Failures are `errors.SqlServerError` subclasses.

Writes are two steps, so that the MCP layer can ask the user in between: `plan_write` validates the
statement and, when confirmation is on, measures it with a rolled-back trial run; `execute_write` runs
it and rolls back if it would change a different number of rows than the user confirmed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlglot import exp

from .backends.base import Backend, ReadResult, TableDescription
from .config import Settings
from .errors import WriteRefused
from .validation import Statement, validate_read
from .writes import validate_write

Params = Sequence[Any] | Mapping[str, Any] | None


@dataclass(frozen=True)
class Result:
    data: dict[str, Any]
    text: str


@dataclass(frozen=True)
class WritePlan:
    """A validated write and what its trial run changed (None when confirmation is off, or for DDL)."""

    statement: Statement
    args: list[Any]
    estimated_rows: int | None
    confirm: bool

    def question(self, params: Params) -> str:
        """The elicitation message: the exact statement, its parameters, and the estimate."""
        shown = "" if not params else f"\nParameters: {orjson.dumps(params).decode()[:2000]}"
        if self.statement.kind == "ddl":
            effect = "This is DDL: it changes the schema."
        else:
            effect = f"A rolled-back trial run changed {self.estimated_rows} row(s) of {self.statement.table}."
        return f"Run this statement on the database?\n\n{self.statement.sql}{shown}\n\n{effect}"


def warning(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def render(data: dict[str, Any], summary: str, payload: Any) -> Result:
    lines = [f"Warning: {w['message']}" for w in data["warnings"]]
    lines.append(summary)
    if payload is not None:
        lines.append(orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS).decode())
    return Result(data, "\n".join(lines))


class SqlService:
    """One backend, its settings, and the operations the tools expose."""

    def __init__(self, settings: Settings, backend: Backend) -> None:
        self.settings = settings
        self.backend = backend

    @property
    def dialect_name(self) -> str:
        return self.backend.dialect.name

    async def list_schemas(self) -> Result:
        schemas = await self.backend.schemas()
        data = {
            "backend": self.dialect_name,
            "schemas": [{"name": s.name, "tables": s.tables} for s in schemas],
            **_capped(len(schemas), len(schemas)),
            "warnings": [],
        }
        return render(data, f"{len(schemas)} schema(s) on {self.dialect_name}", data["schemas"])

    async def list_tables(self, schema: str | None) -> Result:
        tables = await self.backend.tables(schema)
        shown = tables[: self.settings.max_rows]
        warnings = []
        if len(shown) < len(tables):
            warnings.append(
                warning("truncated_tables", f"showing {len(shown)} of {len(tables)} tables (SQL_SERVER_MAX_ROWS)")
            )
        if schema is not None and not tables and schema not in {s.name for s in await self.backend.schemas()}:
            warnings.append(
                warning("unknown_schema", f"no schema named {schema!r} is visible; list_schemas shows them")
            )
        listed = [{"schema": t.schema, "name": t.name, "type": t.type, "row_estimate": t.row_estimate} for t in shown]
        data = {"tables": listed, **_capped(len(tables), len(shown)), "warnings": warnings}
        where = f" in schema {schema!r}" if schema else ""
        return render(data, f"{len(tables)} table(s) and view(s){where}", listed)

    async def describe_table(self, table: str) -> Result:
        description = await self.backend.describe(await self.backend.resolve_table(table))
        data = self._description(description)
        summary = (
            f"{data['type']} {data['schema']}.{data['name']}: {data['total']} column(s), ~{data['row_estimate']} row(s)"
        )
        return render(data, summary, {k: data[k] for k in ("columns", "primary_key", "foreign_keys", "indexes")})

    def _description(self, d: TableDescription) -> dict[str, Any]:
        shown = d.columns[: self.settings.max_rows]
        warnings = []
        if len(shown) < len(d.columns):
            warnings.append(warning("truncated_columns", f"showing {len(shown)} of {len(d.columns)} columns"))
        return {
            "schema": d.table.schema,
            "name": d.table.name,
            "type": d.table.type,
            "columns": shown,
            "primary_key": d.primary_key,
            "foreign_keys": d.foreign_keys,
            "indexes": [{"name": i["name"], "columns": i["columns"], "unique": i["unique"]} for i in d.indexes],
            "row_estimate": d.row_estimate,
            "row_estimate_exact": d.row_estimate_exact,
            **_capped(len(d.columns), len(shown)),
            "warnings": warnings,
        }

    async def sample_rows(self, table: str, n: int) -> Result:
        ref = await self.backend.resolve_table(table)
        source = exp.table_(ref.name, db=ref.schema, quoted=True)
        sql = exp.select("*").from_(source).limit(n).sql(dialect=self.backend.dialect.sqlglot)
        statement = validate_read(sql, self.backend.dialect, "sample_rows")
        return await self._rows(statement, [], n, [], f"first {n} row(s) of {ref.qualified}")

    async def query(self, sql: str, params: Params, limit: int | None) -> Result:
        statement = validate_read(sql, self.backend.dialect, "query")
        args = statement.bind(params)
        warnings = []
        cap = self.settings.max_rows
        if limit is not None and limit > cap:
            warnings.append(warning("limit_clamped", f"limit {limit} exceeds SQL_SERVER_MAX_ROWS ({cap}); {cap} used"))
        return await self._rows(statement, args, min(limit or cap, cap), warnings, "query")

    async def _rows(self, statement: Statement, args: list[Any], limit: int, warnings: list[Any], label: str) -> Result:
        started = time.perf_counter()
        result = await self.backend.read(statement, args, limit)
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        warnings = warnings + _read_warnings(result, limit, self.settings)
        data = {
            "columns": [{"name": c.name, "type": c.type} for c in result.columns],
            "rows": result.rows,
            "total": result.total,
            "returned": len(result.rows),
            "truncated": result.truncated is not None,
            "truncated_by": result.truncated,
            "statement": statement.sql,
            "elapsed_ms": elapsed,
            "warnings": warnings,
        }
        of = f" of {result.total}" if result.total is not None else (" of more" if result.truncated else "")
        summary = f"{label}: {len(result.rows)}{of} row(s), {len(result.columns)} column(s), {elapsed:g} ms"
        return render(data, summary, {"columns": [c.name for c in result.columns], "rows": result.rows})

    async def explain(self, sql: str, params: Params) -> Result:
        statement = validate_read(sql, self.backend.dialect, "explain")
        args = statement.bind(params) if params else [None] * len(statement.bindings)
        analyze = self.settings.explain_analyze and self.dialect_name != "sqlite"
        warnings = []
        if self.settings.explain_analyze and not analyze:
            warnings.append(warning("analyze_unsupported", "SQLite has no EXPLAIN ANALYZE; the query plan is shown"))
        plan = await self.backend.explain(statement, args, analyze)
        data = {"statement": statement.sql, "analyze": analyze, "plan": plan, "warnings": warnings}
        return render(data, f"plan of: {statement.sql}", plan)

    async def plan_write(self, sql: str, params: Params, *, allow_full_table: bool, allow_ddl: bool) -> WritePlan:
        """Validate a write and, when the user must confirm it, measure it with a rolled-back trial run.

        Raises:
            WriteRefused: writes are disabled, DDL is off on this server, or a layer-1 write rule refused it.
        """
        if not self.settings.enable_writes:
            raise WriteRefused("execute_write is disabled on this server (an operator starts it with --enable-writes)")
        if allow_ddl and not self.settings.allow_ddl:
            raise WriteRefused("DDL is disabled on this server (an operator starts it with --allow-ddl)")
        statement = validate_write(sql, self.backend.dialect, allow_full_table=allow_full_table, allow_ddl=allow_ddl)
        args = statement.bind(params)
        estimate = None
        if self.settings.confirm_writes:
            trial = await self.backend.write(statement, args, dry_run=True, expected=None)
            estimate = trial.affected
        return WritePlan(statement, args, estimate, self.settings.confirm_writes)

    async def execute_write(self, plan: WritePlan) -> Result:
        """Run a planned write; with confirmation on, roll back unless it changes the confirmed row count.

        Raises:
            WriteRefused: the row count differs from the confirmed estimate (rolled back, nothing changed).
        """
        expected = plan.estimated_rows if plan.confirm and plan.statement.kind != "ddl" else None
        result = await self.backend.write(plan.statement, plan.args, dry_run=False, expected=expected)
        if not result.committed:
            raise WriteRefused(
                f"the statement changed {result.affected} row(s), not the {expected} the user confirmed; it was rolled "
                "back and nothing changed — call execute_write again to confirm the new count"
            )
        warnings = []
        if result.truncated:
            warnings.append(warning("truncated_rows", f"RETURNING rows truncated by {result.truncated} cap"))
        data = {
            "statement": plan.statement.sql,
            "kind": plan.statement.kind,
            "affected_rows": result.affected,
            "estimated_rows": plan.estimated_rows,
            "confirmation": "user" if plan.confirm else "not required",
            "committed": True,
            "columns": [{"name": c.name, "type": c.type} for c in result.columns],
            "rows": result.rows,
            "returned": len(result.rows),
            "truncated": result.truncated is not None,
            "warnings": warnings,
        }
        changed = "schema changed" if result.affected is None else f"{result.affected} row(s) changed"
        payload = {"columns": [c.name for c in result.columns], "rows": result.rows} if result.columns else None
        return render(data, f"{plan.statement.kind.upper()} committed: {changed}", payload)

    async def catalog(self) -> dict[str, Any]:
        """The whole catalog (schemas → tables → columns), for the sql://schema resource."""
        schemas = await self.backend.schemas()
        tables = await self.backend.tables()
        described = [self._description(await self.backend.describe(t)) for t in tables[: self.settings.max_rows]]
        for entry in described:
            entry.pop("warnings")
        return {
            "backend": self.dialect_name,
            "schemas": [{"name": s.name, "tables": s.tables} for s in schemas],
            "tables": described,
            **_capped(len(tables), len(described)),
        }

    async def table_resource(self, name: str) -> dict[str, Any]:
        return self._description(await self.backend.describe(await self.backend.resolve_table(name)))


def _capped(total: int, returned: int) -> dict[str, Any]:
    return {"total": total, "returned": returned, "truncated": returned < total}


def _read_warnings(result: ReadResult, limit: int, settings: Settings) -> list[dict[str, str]]:
    warnings = []
    total = f"{result.total}" if result.total is not None else "an unknown number of"
    if result.truncated == "rows":
        warnings.append(
            warning(
                "truncated_rows",
                f"result truncated: showing the first {len(result.rows)} of {total} rows (limit {limit})",
            )
        )
    elif result.truncated == "bytes":
        warnings.append(
            warning(
                "truncated_bytes",
                f"result truncated: showing the first {len(result.rows)} of {total} rows, the rows that fit in "
                f"SQL_SERVER_MAX_RESULT_BYTES ({settings.max_result_bytes:,} bytes)",
            )
        )
    if result.count_note:
        warnings.append(warning("total_unknown", f"total not known: {result.count_note}"))
    return warnings
