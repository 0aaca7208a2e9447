"""PostgreSQL through an asyncpg pool, with its own layer 2: read-only transactions and a least-privilege role.

Contract (see `base`): a read is `BEGIN READ ONLY`, one prepared statement (Parse/Bind/Execute: a second
statement in the text is refused by the server), a cursor fetched to `limit` + 1 rows and the byte cap,
the rest counted with `MOVE` under the count timeout, then `ROLLBACK` whatever happened. Every connection
is opened with `default_transaction_read_only=on`, `statement_timeout` and
`idle_in_transaction_session_timeout`; the pool resets it on release (asyncpg's reset also unlocks
session advisory locks). A READ ONLY transaction alone still lets `pg_read_binary_file`, `COPY … TO`,
`pg_terminate_backend`, replication slots and `pg_reload_conf` through, so the role is the other half:
the README gives its exact grants, and `start` refuses a superuser (or a member of pg_read_server_files,
pg_write_server_files, pg_execute_server_program, or a REPLICATION role) unless --allow-superuser.

Connections: a dropped one is replaced (the pool is expired and a read retried once, which is safe
because reads are read-only and rolled back); while the server is down a call fails at once with
"database unavailable", never with the host, port, user or password (those are logged to stderr).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from ..config import Settings, describe_dsn
from ..dialect import COMMON_FUNCTIONS, Dialect
from ..errors import (
    DatabaseError,
    DatabaseUnavailable,
    InvalidArguments,
    LimitExceeded,
    SqlServerError,
    StartupRefused,
    WriteRefused,
)
from ..results import RowCap
from ..validation import Statement
from .base import Backend, Column, ReadResult, SchemaInfo, TableDescription, TableRef, WriteResult
from .postgres_values import JSON_TYPES, TEXT_TYPES, coerce, encoder, json_param

logger = logging.getLogger("sql_server.postgres")

POSTGRES_FUNCTIONS = frozenset(
    """
    char_length character_length bit_length initcap btrim position strpos translate left right lpad rpad repeat
    reverse split_part string_to_array array_to_string regexp_replace regexp_match regexp_matches
    regexp_split_to_array regexp_split_to_table regexp_like regexp_count regexp_substr regexp_instr starts_with
    format md5 sha224 sha256 sha384 sha512 encode decode to_hex ascii chr overlay quote_ident quote_literal
    quote_nullable greatest least cbrt div gcd lcm factorial width_bucket scale min_scale trim_scale
    now date_trunc date_part date_bin extract age make_date make_time make_timestamp make_timestamptz
    make_interval to_char to_date to_timestamp to_number justify_days justify_hours justify_interval isfinite
    clock_timestamp statement_timestamp transaction_timestamp timezone
    stddev stddev_pop stddev_samp variance var_pop var_samp string_agg array_agg json_agg jsonb_agg
    json_object_agg jsonb_object_agg bool_and bool_or every bit_and bit_or bit_xor corr covar_pop covar_samp
    regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy
    percentile_cont percentile_disc mode any_value
    to_json to_jsonb json_build_object jsonb_build_object json_build_array jsonb_build_array json_object
    jsonb_object json_array_length jsonb_array_length json_extract_path jsonb_extract_path json_extract_path_text
    jsonb_extract_path_text json_typeof jsonb_typeof json_array_elements jsonb_array_elements
    json_array_elements_text jsonb_array_elements_text json_each jsonb_each json_each_text jsonb_each_text
    json_object_keys jsonb_object_keys json_strip_nulls jsonb_strip_nulls jsonb_set jsonb_insert jsonb_pretty
    jsonb_path_query jsonb_path_query_array jsonb_path_query_first jsonb_path_exists jsonb_path_match
    row_to_json array_to_json
    array_length array_lower array_upper array_ndims array_dims cardinality array_position array_positions
    array_remove array_replace array_append array_prepend array_cat unnest generate_series generate_subscripts
    num_nonnulls num_nulls pg_typeof gen_random_uuid int4range int8range numrange daterange tsrange tstzrange
    to_tsvector to_tsquery plainto_tsquery phraseto_tsquery websearch_to_tsquery ts_rank ts_rank_cd ts_headline
    """.split()
)
DIALECT = Dialect("postgresql", "postgres", COMMON_FUNCTIONS | POSTGRES_FUNCTIONS, "dollar")

_ROLE_CHECK = """
SELECT r.rolsuper, r.rolreplication, r.rolbypassrls,
       pg_has_role(current_user, 'pg_read_server_files', 'MEMBER'),
       pg_has_role(current_user, 'pg_write_server_files', 'MEMBER'),
       pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER')
FROM pg_roles r WHERE r.rolname = current_user
"""
_WRITABLE_TABLES = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
"""
_DROPPED = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionFailureError,
    ConnectionError,
    OSError,
)
_DRIVER_ERRORS = (*_DROPPED, asyncpg.InterfaceError, asyncpg.PostgresError, TimeoutError)
_CHUNK_BYTES = 1024 * 1024


class _Connection(asyncpg.Connection):  # type: ignore[misc]  # untyped base
    """An asyncpg connection whose prepared statements are reused across calls.

    asyncpg keeps a per-connection statement cache (what `fetch` uses), but the public `prepare()` bypasses
    it and its `PreparedStatement` dies when the connection goes back to the pool. `_prepare(use_cache=True)`
    is the method asyncpg's own `fetch` path calls: the statement is parsed once per connection and text.
    """

    async def statement(self, sql: str) -> Any:
        return await self._prepare(sql, use_cache=True)

    def forget(self, sql: str) -> None:
        self._stmt_cache.clear()  # after DDL: plans and result types may have changed


class PostgresBackend(Backend):
    """A PostgreSQL database behind an asyncpg pool of `SQL_SERVER_POOL_SIZE` connections."""

    dialect = DIALECT

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._pool: asyncpg.Pool | None = None
        self._descriptions: OrderedDict[int, tuple[Any, list[Column], list[Any], list[str]]] = OrderedDict()
        timeout_ms = int(settings.statement_timeout_s * 1000)
        self._server_settings = {
            "application_name": "harbor-sql-server",
            "default_transaction_read_only": "on",
            "statement_timeout": str(timeout_ms),
            "idle_in_transaction_session_timeout": str(max(timeout_ms * 2, 60_000)),
        }

    async def start(self) -> None:
        logger.info("PostgreSQL backend: %s, pool of %d", describe_dsn(self.settings.dsn), self.settings.pool_size)
        self._pool = await asyncpg.create_pool(
            self.settings.dsn,
            min_size=0,
            max_size=self.settings.pool_size,
            connection_class=_Connection,
            init=self._init_connection,
            server_settings=self._server_settings,
            timeout=self.settings.connect_timeout_s,
            command_timeout=None,
            max_inactive_connection_lifetime=300,
        )
        try:
            async with self._connection():
                pass  # the first connection runs the role check (init) now, not at the first call
        except DatabaseUnavailable as exc:
            logger.warning("database unavailable at start (%s); calls will retry the connection", exc)

    async def close(self) -> None:
        if self._pool is not None:
            await asyncio.wait_for(self._pool.close(), timeout=10)

    async def _init_connection(self, conn: _Connection) -> None:
        for name in TEXT_TYPES:
            await conn.set_type_codec(name, schema="pg_catalog", encoder=str, decoder=str, format="text")
        for name in JSON_TYPES:
            await conn.set_type_codec(name, schema="pg_catalog", encoder=json_param, decoder=json.loads, format="text")
        await self._check_role(conn)

    async def _check_role(self, conn: _Connection) -> None:
        row = await conn.fetchrow(_ROLE_CHECK)
        superuser, replication, bypassrls, reads, writes, programs = row if row else (False,) * 6
        found = [
            label
            for label, flag in (
                ("a superuser", superuser),
                ("a REPLICATION role", replication),
                ("a member of pg_read_server_files", reads),
                ("a member of pg_write_server_files", writes),
                ("a member of pg_execute_server_program", programs),
            )  # fmt: skip
            if flag
        ]
        if found and not self.settings.allow_superuser:
            raise StartupRefused(
                f"refusing to run as a role that is {', '.join(found)}: use a least-privilege role (README, "
                "'PostgreSQL role'), or start with --allow-superuser (unsafe)"
            )
        if found:
            logger.warning("running as a privileged role (%s) because --allow-superuser was given", ", ".join(found))
        if bypassrls:
            logger.warning("the role has BYPASSRLS: row-level security policies do not apply to it")
        if not self.settings.enable_writes and await conn.fetchval(_WRITABLE_TABLES):
            logger.warning("the role can write to some tables; reads still run in READ ONLY transactions")

    async def _acquire(self) -> _Connection:
        """A pooled connection, or DatabaseUnavailable without connection details.

        No timeout of its own (one costs more than the rest of a small query): a new connection is bounded by
        SQL_SERVER_CONNECT_TIMEOUT (the pool's connect timeout), and the wait for a busy pool by the statement
        timeout of the statements holding its connections.
        """
        assert self._pool is not None, "start() first"
        try:
            return await self._pool.acquire()  # type: ignore[no-any-return]
        except SqlServerError:
            raise
        except TimeoutError:
            raise LimitExceeded(
                f"no database connection within SQL_SERVER_CONNECT_TIMEOUT ({self.settings.connect_timeout_s:g} s): "
                "the database server is unreachable"
            ) from None
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise _unavailable(exc) from None

    async def _release(self, conn: _Connection) -> None:
        assert self._pool is not None
        try:
            await self._pool.release(conn)  # its reset query runs under the connection's statement_timeout
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            conn.terminate()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[_Connection]:
        conn = await self._acquire()
        try:
            yield conn
        finally:
            await self._release(conn)

    async def _retrying(self, work: Any) -> Any:
        """Run `work(conn)`; when the connection turns out to be dead, expire the pool and try once more."""
        for attempt in (1, 2):
            conn = await self._acquire()
            try:
                return await work(conn)
            except _DroppedConnection as exc:
                await self._pool.expire_connections()  # type: ignore[union-attr]
                if attempt == 2:
                    raise _unavailable(exc.__cause__ or exc) from None
                logger.info("a pooled connection was dropped (%s); retrying once on a new one", exc.__cause__)
            finally:
                await self._release(conn)
        raise AssertionError("unreachable")

    async def read(self, statement: Statement, args: Sequence[Any], limit: int) -> ReadResult:
        return await self._retrying(lambda conn: self._read(conn, statement.sql, args, limit))  # type: ignore[no-any-return]

    async def _read(self, conn: _Connection, sql: str, args: Sequence[Any], limit: int) -> ReadResult:
        await self._begin(conn, "BEGIN READ ONLY")
        try:
            stmt = await self._prepare(conn, sql)
            columns, encoders, parameters = self._describe(stmt)
            cap = RowCap(limit, self.settings.max_result_bytes, encoders)
            cursor = await stmt.cursor(*coerce(parameters, args), timeout=self._timeout)
            chunk_size, exhausted = min(limit + 1, 100), False
            while not cap.full:
                chunk = await cursor.fetch(chunk_size, timeout=self._timeout)
                cap.add(chunk)
                if len(chunk) < chunk_size:
                    exhausted = True
                    break
                per_row = max(cap.bytes // max(len(cap.rows), 1), 1)
                chunk_size = max(1, min(limit + 1 - cap.received, _CHUNK_BYTES // per_row, 10_000))
            total, note = (cap.received, None) if exhausted else await self._count_rest(conn, cursor, cap.received)
        except _DRIVER_ERRORS as exc:
            failure = self._failure(conn, exc)
            raise failure from (exc if isinstance(failure, _DroppedConnection) else None)
        finally:
            await self._rollback(conn)
        return ReadResult(list(columns), cap.rows, total, cap.truncated, note)

    def _describe(self, stmt: Any) -> tuple[list[Column], list[Any], list[str]]:
        """Columns, per-column encoders and parameter types of a prepared statement, computed once per
        statement state: asyncpg re-prepares (a new state) when the schema changes, so this never goes stale."""
        state = stmt._state  # the cached server-side statement behind this (per-call) wrapper
        found = self._descriptions.get(id(state))
        if found is None or found[0] is not state:
            attributes, parameters = stmt.get_attributes(), stmt.get_parameters()
            found = (
                state,
                [Column(a.name, a.type.name) for a in attributes],
                [encoder(a.type) for a in attributes],
                [p.name for p in parameters],
            )
            self._descriptions[id(state)] = found
            if len(self._descriptions) > 1024:
                self._descriptions.popitem(last=False)
        return found[1], found[2], found[3]

    async def _count_rest(self, conn: _Connection, cursor: Any, seen: int) -> tuple[int | None, str | None]:
        budget = self.settings.count_timeout_s
        if budget <= 0:
            return None, "counting is disabled (SQL_SERVER_COUNT_TIMEOUT=0)"
        budget_ms = max(1, int(min(budget, self.settings.statement_timeout_s) * 1000))
        await conn.execute(f"SET LOCAL statement_timeout = {budget_ms}")
        try:
            while (moved := await cursor.forward(2**31 - 1, timeout=budget + 5)) > 0:
                seen += moved
                if moved < 2**31 - 1:
                    break
        except (asyncpg.exceptions.QueryCanceledError, TimeoutError):
            return None, f"counting the remaining rows stopped after SQL_SERVER_COUNT_TIMEOUT ({budget:g} s)"
        return seen, None

    @property
    def _timeout(self) -> float:
        """The client-side guard: the server's statement_timeout plus a grace period."""
        return self.settings.statement_timeout_s + 5

    async def _prepare(self, conn: _Connection, sql: str) -> Any:
        try:
            return await conn.statement(sql)
        except asyncpg.exceptions.InvalidCachedStatementError:
            conn.forget(sql)
            return await conn.statement(sql)

    async def _begin(self, conn: _Connection, begin: str) -> None:
        try:
            await conn.execute(begin)
        except _DROPPED as exc:
            raise _DroppedConnection() from exc
        except (asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError) as exc:
            # a backend terminated while the connection sat in the pool can leave the protocol mid-state
            # ("cannot switch to state …"): nothing ran yet, so drop it and retry on a new connection
            conn.terminate()
            raise _DroppedConnection() from exc
        except asyncpg.PostgresError as exc:
            raise self._error(exc) from None

    async def _rollback(self, conn: _Connection) -> None:
        """End the transaction unless the body committed; a connection that cannot roll back is dropped."""
        if not conn.is_closed() and conn.is_in_transaction():
            try:
                await conn.execute("ROLLBACK")
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                conn.terminate()

    def _failure(self, conn: _Connection, exc: BaseException) -> Exception:
        """A driver error under a statement: the connection died (retry elsewhere), or our own sanitized error."""
        if isinstance(exc, (*_DROPPED, asyncpg.InterfaceError)) and conn.is_closed():
            return _DroppedConnection()
        return self._error(exc)

    @asynccontextmanager
    async def _transaction(self, conn: _Connection, begin: str) -> AsyncIterator[None]:
        """BEGIN …, then ROLLBACK unless the body committed; errors become our own, sanitized."""
        await self._begin(conn, begin)
        try:
            yield
        except _DRIVER_ERRORS as exc:
            failure = self._failure(conn, exc)
            raise failure from (exc if isinstance(failure, _DroppedConnection) else None)
        finally:
            await self._rollback(conn)

    def _error(self, exc: BaseException) -> SqlServerError:
        if isinstance(exc, asyncpg.exceptions.QueryCanceledError | TimeoutError):
            return LimitExceeded(
                f"the statement ran longer than SQL_SERVER_STATEMENT_TIMEOUT ({self.settings.statement_timeout_s:g} s) "
                "and was cancelled"
            )
        if isinstance(exc, asyncpg.exceptions.ProgramLimitExceededError):
            return LimitExceeded(f"PostgreSQL refused the statement: {exc}")
        if isinstance(exc, asyncpg.exceptions.DataError) and not isinstance(exc, asyncpg.PostgresError):
            return InvalidArguments(f"a parameter does not fit its placeholder: {exc}")
        if isinstance(exc, asyncpg.PostgresError):
            return DatabaseError(_postgres_message(exc))
        if isinstance(exc, _DROPPED):
            return _unavailable(exc)
        logger.error("unexpected driver error: %r", exc)
        return DatabaseError("the database driver failed on this statement (details are in the server log)")

    async def explain(self, statement: Statement, args: Sequence[Any], analyze: bool) -> Any:
        options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
        sql = f"EXPLAIN ({options}) {statement.sql}"

        async def work(conn: _Connection) -> Any:
            async with self._transaction(conn, "BEGIN READ ONLY"):
                stmt = await self._prepare(conn, sql)
                return await stmt.fetchval(*coerce(self._describe(stmt)[2], args), timeout=self._timeout)

        return await self._retrying(work)

    async def write(
        self, statement: Statement, args: Sequence[Any], *, dry_run: bool, expected: int | None
    ) -> WriteResult:
        if not self.settings.enable_writes:
            raise WriteRefused("writes are disabled on this server (start it with --enable-writes)")
        async with self._connection() as conn:
            return await self._write(conn, statement, args, dry_run, expected)

    async def _write(
        self, conn: _Connection, statement: Statement, args: Sequence[Any], dry_run: bool, expected: int | None
    ) -> WriteResult:
        try:
            async with self._transaction(conn, "BEGIN READ WRITE"):
                stmt = await self._prepare(conn, statement.sql)
                columns, encoders, parameters = self._describe(stmt)
                returned = await stmt.fetch(*coerce(parameters, args), timeout=self._timeout)
                status = stmt.get_statusmsg() or ""
                affected = _affected(status) if statement.kind != "ddl" else None
                committed = not dry_run and (expected is None or affected == expected)
                if committed:
                    await conn.execute("COMMIT")
        except _DroppedConnection as exc:
            raise _unavailable(exc.__cause__ or exc) from None
        finally:
            if statement.kind == "ddl":
                conn.forget(statement.sql)
        cap = RowCap(self.settings.max_rows, self.settings.max_result_bytes, encoders)
        cap.add(returned)
        return WriteResult(affected, status, list(columns), cap.rows, cap.truncated, committed)

    async def _catalog(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async def work(conn: _Connection) -> list[asyncpg.Record]:
            async with self._transaction(conn, "BEGIN READ ONLY"):
                stmt = await self._prepare(conn, sql)
                return await stmt.fetch(*args, timeout=self._timeout)  # type: ignore[no-any-return]

        return await self._retrying(work)  # type: ignore[no-any-return]

    async def schemas(self) -> list[SchemaInfo]:
        rows = await self._catalog(
            f"SELECT n.nspname, count(c.oid) FILTER (WHERE {_READABLE}) FROM pg_namespace n "
            "LEFT JOIN pg_class c ON c.relnamespace = n.oid "
            f"WHERE {_USER_SCHEMA} AND has_schema_privilege(n.oid, 'USAGE') GROUP BY n.nspname ORDER BY n.nspname"
        )
        return [SchemaInfo(name, int(count)) for name, count in rows]

    async def tables(self, schema: str | None = None) -> list[TableRef]:
        rows = await self._catalog(
            "SELECT n.nspname, c.relname, c.relkind::text, c.reltuples::bigint FROM pg_class c "
            f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_SCHEMA} AND {_READABLE} "
            "AND ($1::text IS NULL OR n.nspname = $1) ORDER BY n.nspname, c.relname",
            schema,
        )
        return [
            TableRef(s, name, _KINDS.get(kind, kind), None if tuples < 0 else int(tuples))
            for s, name, kind, tuples in rows
        ]

    async def describe(self, table: TableRef) -> TableDescription:
        oid_sql = "(quote_ident($1) || '.' || quote_ident($2))::regclass"
        columns = await self._catalog(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, "
            "pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
            "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            f"WHERE a.attrelid = {oid_sql} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            table.schema, table.name,
        )  # fmt: skip
        constraints = await self._catalog(
            "SELECT c.contype::text, ARRAY(SELECT attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i) "
            "JOIN pg_attribute ON attrelid = c.conrelid AND attnum = k.n ORDER BY k.i), "
            "c.confrelid::regclass::text, ARRAY(SELECT attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i) "
            "JOIN pg_attribute ON attrelid = c.confrelid AND attnum = k.n ORDER BY k.i) "
            f"FROM pg_constraint c WHERE c.conrelid = {oid_sql} AND c.contype IN ('p', 'f') ORDER BY c.conname",
            table.schema, table.name,
        )  # fmt: skip
        indexes = await self._catalog(
            "SELECT i.relname, x.indisunique, ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true) "
            "FROM generate_series(1, x.indnatts) k ORDER BY k) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            f"WHERE x.indrelid = {oid_sql} ORDER BY i.relname",
            table.schema, table.name,
        )  # fmt: skip
        primary = next((list(cols) for kind, cols, _r, _rc in constraints if kind == "p"), [])
        return TableDescription(
            table=table,
            columns=[
                {"name": n, "type": t, "nullable": nullable, "default": d, "primary_key": n in primary}
                for n, t, nullable, d in columns
            ],
            primary_key=primary,
            foreign_keys=[
                {"columns": list(cols), "references_table": ref, "references_columns": list(ref_cols)}
                for kind, cols, ref, ref_cols in constraints
                if kind == "f"
            ],
            indexes=[{"name": n, "columns": list(cols), "unique": unique} for n, unique, cols in indexes],
            row_estimate=table.row_estimate,
            row_estimate_exact=False,
        )


_USER_SCHEMA = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
    "AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'"
)
_READABLE = "c.relkind IN ('r', 'v', 'm', 'f', 'p') AND has_table_privilege(c.oid, 'SELECT')"
_KINDS = {"r": "table", "v": "view", "m": "materialized view", "f": "foreign table", "p": "partitioned table"}


class _DroppedConnection(Exception):
    """Internal: the connection died under a statement (its cause is the driver's error)."""


def _unavailable(exc: BaseException) -> DatabaseUnavailable:
    """Connection failures by category only; the details (host, port, user) go to the log."""
    logger.warning("database connection failed: %s: %s", type(exc).__name__, exc)
    if isinstance(
        exc, asyncpg.exceptions.InvalidPasswordError | asyncpg.exceptions.InvalidAuthorizationSpecificationError
    ):
        reason = "the server refused the credentials"
    elif isinstance(exc, asyncpg.exceptions.InvalidCatalogNameError):
        reason = "the database named in SQL_SERVER_DSN does not exist"
    elif isinstance(exc, asyncpg.exceptions.TooManyConnectionsError):
        reason = "the server has no free connection slots"
    elif isinstance(exc, asyncpg.exceptions.CannotConnectNowError | asyncpg.exceptions.AdminShutdownError):
        reason = "the server is starting up or shutting down"
    else:
        reason = "the server cannot be reached"
    return DatabaseUnavailable(f"database unavailable: {reason}; try again later (details are in the server log)")


def _postgres_message(exc: asyncpg.PostgresError) -> str:
    message = str(getattr(exc, "message", None) or exc).strip()
    parts = [f"PostgreSQL refused the statement: {message}"]
    for label in ("detail", "hint"):
        value = getattr(exc, label, None)
        if value:
            parts.append(f"{label}: {value}")
    return "; ".join(parts)


def _affected(status: str) -> int | None:
    match = re.search(r"(\d+)\s*$", status)
    return int(match.group(1)) if match else None
