"""MCP face of the SQL service: tools, resources, the prompt, strict arguments and write confirmation.

Contract: every tool has typed parameters (the SDK derives the input schema and validates it) whose schema
says `additionalProperties: false`, and an unknown argument is a tool error naming it and the closest
valid name (`StrictArguments`, a server middleware, so it holds in both protocol eras). Each tool returns
the service's text and `structuredContent` (matching its `outputSchema`). `_tool` is the one place where
domain errors become tool errors carrying the domain message; anything else is logged to stderr and
reaches the client as a generic error, never a stack trace or a DSN.

execute_write is guarded here twice over: the plan (validation, and a rolled-back trial run that counts
the rows) and the user's confirmation are SDK resolvers, so the confirmation is an elicitation in the
2025 era and an input-required round trip in the 2026 era; a client without elicitation is refused
unless the server runs with --no-confirm. stdout is the MCP wire: nothing here prints.
"""

from __future__ import annotations

import difflib
import functools
import logging
import sys
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import anyio
import orjson
from mcp.server import MCPServer
from mcp.server.mcpserver import AcceptedElicitation, Context, Elicit, ElicitationResult, Resolve
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from . import __version__
from .backends import open_backend
from .backends.base import Backend
from .config import Settings, describe_dsn, load_settings, parse_args
from .errors import SqlServerError, StartupRefused
from .sample import build_sqlite
from .schemas import DescribeOut, ExplainOut, RowsOut, SchemasOut, TablesOut, WriteOut
from .service import Params, Result, SqlService, WritePlan

logger = logging.getLogger("sql_server")
P = ParamSpec("P")
T = TypeVar("T")

INSTRUCTIONS = (
    "SQL database tools. Inspect before you query: list_schemas, list_tables, describe_table and sample_rows "
    "show what exists; query runs one read-only SELECT (bind values with params, never paste them into the SQL); "
    "explain shows a plan. Results are capped: check truncated, total and warnings. execute_write (when enabled) "
    "runs one INSERT/UPDATE/DELETE after the user confirms it."
)
_READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)

SqlText = Annotated[str, Field(description="One SQL statement in the database's dialect")]
ParamsArg = Annotated[
    list[Any] | dict[str, Any] | None,
    Field(description="Values bound by the driver: a list for $1/$2 (PostgreSQL) or ? (SQLite), an object for :name"),
]
TableName = Annotated[str, Field(description="A table or view: 'name' or 'schema.name'")]


class Confirmation(BaseModel):
    """What the user answers to a write confirmation."""

    confirm: bool = Field(description="Run exactly this statement now?")


def _tool(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Domain failures become tool errors with the domain's message; everything else stays a logged crash."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except SqlServerError as exc:
            raise ToolError(str(exc)) from exc

    return wrapper


def _result(result: Result) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=result.text)], structured_content=result.data)


class StrictArguments:
    """Server middleware: a tools/call with an argument the tool does not declare is a tool error naming it."""

    def __init__(self, tools: Sequence[Tool]) -> None:
        self._fields = {tool.name: list(tool.parameters.get("properties", {})) for tool in tools}

    async def __call__(self, ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        params = ctx.params
        if ctx.method == "tools/call" and isinstance(params, Mapping):
            fields = self._fields.get(str(params.get("name")))
            arguments = params.get("arguments") or {}
            if fields is not None and isinstance(arguments, Mapping):
                unknown = [key for key in arguments if key not in fields]
                if unknown:
                    return CallToolResult(
                        content=[TextContent(type="text", text=unknown_argument(str(params["name"]), unknown, fields))],
                        is_error=True,
                    )
        return await call_next(ctx)


def unknown_argument(tool: str, unknown: Sequence[str], fields: Sequence[str]) -> str:
    """'unknown argument 'sqll' for query; did you mean 'sql'? query takes: sql, params, limit'."""
    close = difflib.get_close_matches(unknown[0], fields, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    names = ", ".join(repr(u) for u in unknown)
    takes = ", ".join(fields) if fields else "no arguments"
    plural = "s" if len(unknown) > 1 else ""
    return f"unknown argument{plural} {names} for {tool}{hint} ({tool} takes: {takes}); nothing was run"


def build_server(settings: Settings, backend: Backend) -> MCPServer[Any]:
    """The MCP server over a started backend (no socket, no connection is opened here)."""
    service = SqlService(settings, backend)
    tools = [_strict(tool) for tool in _tools(service, settings)]
    server: MCPServer[Any] = MCPServer(
        "sql", version=__version__, instructions=INSTRUCTIONS, tools=tools, middleware=[StrictArguments(tools)]
    )
    _SERVICES[server] = service
    _register_resources(server, service)
    return server


# The write resolvers live at module level (the SDK resolves their annotations from the module's globals)
# and find their server's service through the call's context.
_SERVICES: weakref.WeakKeyDictionary[MCPServer[Any], SqlService] = weakref.WeakKeyDictionary()


async def _write_plan(sql: str, params: Params, allow_full_table: bool, allow_ddl: bool, ctx: Context) -> WritePlan:
    """Validate the write and, when the user must confirm it, count its rows with a rolled-back trial run."""
    try:
        return await _SERVICES[ctx.mcp_server].plan_write(
            sql, params, allow_full_table=allow_full_table, allow_ddl=allow_ddl
        )
    except SqlServerError as exc:
        raise ToolError(str(exc)) from exc


async def _write_confirmation(
    plan: Annotated[WritePlan, Resolve(_write_plan)], params: Params, ctx: Context
) -> Confirmation | Elicit[Confirmation]:
    """Ask the user (elicitation) unless the server runs with --no-confirm; refuse a client that cannot be asked."""
    if not plan.confirm:
        return Confirmation(confirm=True)
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.elicitation is None:
        raise ToolError(
            "execute_write asks the user to confirm each statement, and this client does not support "
            "elicitation; nothing was run (an operator can start the server with --no-confirm for automation)"
        )
    return Elicit(plan.question(params), Confirmation)


def _strict(tool: Tool) -> Tool:
    tool.parameters["additionalProperties"] = False
    return tool


def _tools(service: SqlService, settings: Settings) -> list[Tool]:
    @_tool
    async def list_schemas() -> Annotated[CallToolResult, SchemasOut]:
        """The schemas this server can see (PostgreSQL; SQLite has 'main'), with their table counts."""
        return _result(await service.list_schemas())

    @_tool
    async def list_tables(
        schema: Annotated[str | None, Field(description="Only this schema (default: all)")] = None,
    ) -> Annotated[CallToolResult, TablesOut]:
        """Tables and views this server can read, with a row estimate when the database keeps one."""
        return _result(await service.list_tables(schema))

    @_tool
    async def describe_table(table: TableName) -> Annotated[CallToolResult, DescribeOut]:
        """Columns (type, nullability, default), primary key, foreign keys, indexes and row estimate of a table."""
        return _result(await service.describe_table(table))

    @_tool
    async def sample_rows(
        table: TableName, n: Annotated[int, Field(ge=1, le=50, description="How many rows (1-50)")] = 10
    ) -> Annotated[CallToolResult, RowsOut]:
        """The first n rows of a table, typed like query results."""
        return _result(await service.sample_rows(table, n))

    @_tool
    async def query(
        sql: SqlText,
        params: ParamsArg = None,
        limit: Annotated[
            int | None, Field(ge=1, description="Row cap (default and maximum: SQL_SERVER_MAX_ROWS)")
        ] = None,
    ) -> Annotated[CallToolResult, RowsOut]:
        """Run one read-only statement (SELECT, WITH, VALUES, set operations) in a read-only transaction; returns
        capped rows with total, returned and truncated. Functions are limited to an allow-list."""
        return _result(await service.query(sql, params, limit))

    @_tool
    async def explain(sql: SqlText, params: ParamsArg = None) -> Annotated[CallToolResult, ExplainOut]:
        """The plan of a read-only statement (EXPLAIN, without ANALYZE unless the server enables it)."""
        return _result(await service.explain(sql, params))

    @_tool
    async def execute_write(
        sql: SqlText,
        plan: Annotated[WritePlan, Resolve(_write_plan)],
        confirmation: Annotated[ElicitationResult[Confirmation], Resolve(_write_confirmation)],
        params: ParamsArg = None,
        allow_full_table: Annotated[bool, Field(description="Allow UPDATE/DELETE without a WHERE clause")] = False,
        allow_ddl: Annotated[bool, Field(description="Allow CREATE/ALTER/DROP (the server must allow DDL)")] = False,
    ) -> Annotated[CallToolResult, WriteOut]:
        """Run one INSERT, UPDATE or DELETE in a transaction after the user confirms the exact statement and the
        rows a trial run changed; returns the affected rows."""
        if not isinstance(confirmation, AcceptedElicitation) or not confirmation.data.confirm:
            raise ToolError(f"the user did not confirm the statement ({confirmation.action}); nothing was run")
        return _result(await service.execute_write(plan))

    disabled = (
        "" if settings.enable_writes else " DISABLED on this server (an operator enables it with --enable-writes)."
    )
    return [
        Tool.from_function(list_schemas, annotations=_READ),
        Tool.from_function(list_tables, annotations=_READ),
        Tool.from_function(describe_table, annotations=_READ),
        Tool.from_function(sample_rows, annotations=_READ),
        Tool.from_function(query, annotations=_READ),
        Tool.from_function(explain, annotations=_READ),
        Tool.from_function(execute_write, annotations=_WRITE, description=(execute_write.__doc__ or "") + disabled),
    ]


def _register_resources(server: MCPServer[Any], service: SqlService) -> None:
    @server.resource("sql://schema", mime_type="application/json", description="The whole catalog as JSON")
    async def schema_resource() -> str:
        try:
            return orjson.dumps(await service.catalog()).decode()
        except SqlServerError as exc:
            raise ResourceError(str(exc)) from exc

    @server.resource("sql://table/{name}", mime_type="application/json", description="One table's description")
    async def table_resource(name: str) -> str:
        try:
            return orjson.dumps(await service.table_resource(name)).decode()
        except SqlServerError as exc:
            raise ResourceError(str(exc)) from exc

    @server.prompt()
    def explore_database(goal: str | None = None) -> str:
        """Teaches a careful exploration: inspect the schema first, then small, parameterized queries."""
        target = f" The goal: {goal}." if goal else ""
        return (
            f"Explore this {service.dialect_name} database before answering.{target} 1) list_schemas and list_tables "
            "to see what exists (or read the sql://schema resource). 2) describe_table for each table you need: "
            "columns, types, keys, foreign keys (they tell you how to join), indexes and row estimates. "
            "3) sample_rows to see real values and formats before you filter on them. 4) Write one SELECT at a time "
            "with query; bind user-supplied values through params ($1 or :name), never inside the SQL text; "
            "aggregate in SQL instead of fetching many rows; add ORDER BY and a limit. 5) Check every result's "
            "truncated, total and warnings before you draw conclusions; if a result was truncated, aggregate or "
            "filter instead of raising the limit. 6) Use explain for a slow query. 7) Never write unless asked: "
            "execute_write needs the user's confirmation."
        )


async def serve(settings: Settings) -> None:
    """Start the backend (refusing unsafe configurations), then serve MCP over stdio until stdin closes."""
    backend = open_backend(settings)
    try:
        await backend.start()
    except StartupRefused as exc:
        logger.error("refusing to start: %s", exc)
        raise SystemExit(2) from None
    logger.info("sql-server %s on %s; writes %s", __version__, describe_dsn(settings.dsn),
                "enabled" if settings.enable_writes else "disabled")  # fmt: skip
    try:
        await build_server(settings, backend).run_stdio_async()
    finally:
        with anyio.CancelScope(shield=True):
            await backend.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: serve over stdio, logging to stderr."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its parser warnings echo the caller's SQL
    arguments = list(sys.argv[1:] if argv is None else argv)
    if parse_args(arguments).build_sample:
        build_sqlite(Path(parse_args(arguments).build_sample))
        return
    try:
        settings = load_settings(arguments)
    except StartupRefused as exc:
        logger.error("refusing to start: %s", exc)
        raise SystemExit(2) from None
    anyio.run(serve, settings)


if __name__ == "__main__":
    main()
