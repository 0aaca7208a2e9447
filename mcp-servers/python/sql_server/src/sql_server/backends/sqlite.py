"""SQLite: the embedded backend (the default, on the generated sample), with its own layer 2.

Contract (see `base`): every read runs on a connection opened with `mode=ro`, `PRAGMA query_only=ON`,
`PRAGMA trusted_schema=OFF`, `SQLITE_LIMIT_ATTACHED = 0`, a cap on any single string or blob, and an
authorizer that denies by default: it allows reading tables, SELECT, recursive CTEs, the read-only
catalog pragmas and the functions on this dialect's allow-list, and nothing else (no ATTACH, VACUUM,
PRAGMA writes, temp objects, transactions, `load_extension`). A single statement on such a connection is
its own read transaction; none can be opened, so nothing persists across calls. Python's `sqlite3`
executes one statement and refuses a script. A progress handler interrupts a statement at the statement
timeout, and counting the rest of a capped result at the count timeout.

Writes (only with --enable-writes) use one separate `mode=rw` connection with its own authorizer (DML,
plus DDL with --allow-ddl), serialised by a lock, in BEGIN IMMEDIATE … COMMIT/ROLLBACK.

A read first runs inline on the event loop with a 2 ms budget (a small read costs less than the trip to a
worker thread); past the budget, or on a lock, the progress handler interrupts it and it is re-run from the
start on a worker thread under the real timeout. Everything else runs on worker threads.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import anyio.to_thread

from ..config import Settings, sample_dirs, sqlite_path
from ..dialect import COMMON_FUNCTIONS, Dialect
from ..errors import DatabaseError, InvalidArguments, LimitExceeded, StartupRefused, WriteRefused
from ..results import RowCap, infer_types
from ..sample import ensure_sample_in
from ..validation import Statement
from .base import Backend, Column, ReadResult, SchemaInfo, TableDescription, TableRef, WriteResult

logger = logging.getLogger("sql_server.sqlite")

SQLITE_FUNCTIONS = frozenset(
    """
    instr char hex unhex ifnull iif glob like likelihood likely unlikely quote typeof unicode
    total group_concat string_agg date time datetime julianday strftime unixepoch timediff
    json json_array json_array_length json_extract json_insert json_object json_patch json_remove json_replace
    json_set json_type json_valid json_quote json_group_array json_group_object json_each json_tree log2
    pragma_table_info pragma_table_xinfo pragma_index_list pragma_index_info pragma_index_xinfo
    pragma_foreign_key_list
    """.split()
)
# Not printf()/format(): a huge width ('%.*c', 2000000000) runs for many seconds inside one C call, where
# neither the progress handler nor the length limit can stop it.
# What SQLite itself calls for operators and keywords (LIKE, GLOB, ->, ->>, CURRENT_DATE …) is
# authorized under these names too.
_OPERATOR_FUNCTIONS = frozenset({"like", "glob", "->", "->>", "current_date", "current_time", "current_timestamp"})
DIALECT = Dialect("sqlite", "sqlite", COMMON_FUNCTIONS | SQLITE_FUNCTIONS, "question", ("pragma_",))

_READ_PRAGMAS = frozenset({"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"})
_READ_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE})
_DML_ACTIONS = frozenset({sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE})
_DDL_ACTIONS = frozenset(
    {
        sqlite3.SQLITE_CREATE_TABLE, sqlite3.SQLITE_CREATE_INDEX, sqlite3.SQLITE_CREATE_VIEW,
        sqlite3.SQLITE_DROP_TABLE, sqlite3.SQLITE_DROP_INDEX, sqlite3.SQLITE_DROP_VIEW, sqlite3.SQLITE_ALTER_TABLE,
    }
)  # fmt: skip
_ACTION_NAMES = {
    value: name.removeprefix("SQLITE_").replace("_", " ")
    for name, value in vars(sqlite3).items()
    if name.startswith("SQLITE_") and isinstance(value, int) and name not in ("SQLITE_OK", "SQLITE_DENY")
    and name != "SQLITE_IGNORE"
    and not name.startswith("SQLITE_LIMIT")
}  # fmt: skip
_CHUNK = 500
_NEVER = math.inf
_INLINE_BUDGET_S = 0.002  # how long a read may run on the event loop before it moves to a worker thread
_INLINE_CHUNK = 100


class _Slow(Exception):
    """Internal: the inline attempt ran out of its budget (or met a lock); run it on a worker thread."""


class Authorizer:
    """Deny-by-default SQLite authorizer (`sqlite3.Connection.set_authorizer`).

    Reads: SELECT, READ, RECURSIVE, the read-only catalog pragmas and allow-listed functions. Writers add
    INSERT/UPDATE/DELETE on user tables, DDL when `ddl`, and transactions while `internal` is set (our own
    BEGIN/COMMIT/ROLLBACK). `denied` names the last refusal, for the error message.
    """

    def __init__(self, functions: frozenset[str], *, writes: bool = False, ddl: bool = False) -> None:
        self.functions = functions | _OPERATOR_FUNCTIONS
        self.writes = writes
        self.ddl = ddl
        self.internal = False
        self.denied: str | None = None

    def __call__(self, action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
        if self._allows(action, arg1, arg2):
            return sqlite3.SQLITE_OK
        self.denied = self._describe(action, arg1, arg2)
        return sqlite3.SQLITE_DENY

    def _allows(self, action: int, arg1: str | None, arg2: str | None) -> bool:
        if action in _READ_ACTIONS:
            return True
        if action == sqlite3.SQLITE_FUNCTION:
            return (arg2 or "").lower() in self.functions
        if action == sqlite3.SQLITE_PRAGMA:
            return (arg1 or "").lower() in _READ_PRAGMAS
        if action == sqlite3.SQLITE_TRANSACTION:
            return self.internal
        catalog = (arg1 or "").lower() in ("sqlite_master", "sqlite_schema", "sqlite_sequence")
        if action == sqlite3.SQLITE_UPDATE and (arg1 or "").lower() in ("sqlite_master", "sqlite_schema"):
            # SQLite asks this while it sets up an eponymous virtual table (pragma_table_info, json_each);
            # a real UPDATE of the schema table is refused by SQLite itself (writable_schema is off, and
            # PRAGMA writes are denied above).
            return True
        if self.writes and action in _DML_ACTIONS:
            return not catalog or self.ddl or (arg1 or "").lower() == "sqlite_sequence"
        return self.ddl and action in _DDL_ACTIONS

    @staticmethod
    def _describe(action: int, arg1: str | None, arg2: str | None) -> str:
        if action == sqlite3.SQLITE_FUNCTION:
            return f"the function {arg2}()"
        if action == sqlite3.SQLITE_PRAGMA:
            return f"PRAGMA {arg1}" + (f" = {arg2}" if arg2 else "")
        name = _ACTION_NAMES.get(action, f"action {action}")
        return f"{name}" + (f" ({arg1})" if arg1 else "")


class _Deadline:
    """The progress handler's clock: a statement is interrupted once `at` has passed."""

    def __init__(self) -> None:
        self.at = _NEVER

    def __call__(self) -> int:
        return 1 if time.monotonic() > self.at else 0


class _Connection:
    def __init__(self, raw: sqlite3.Connection, authorizer: Authorizer, deadline: _Deadline) -> None:
        self.raw, self.authorizer, self.deadline = raw, authorizer, deadline


def _open(path: Path, settings: Settings, *, writes: bool) -> _Connection:
    uri = f"file:{quote(str(path.resolve()))}?mode={'rw' if writes else 'ro'}"
    raw = sqlite3.connect(  # timeout: readers wait out locks themselves (`_execute`), never on the event loop
        uri, uri=True, isolation_level=None, check_same_thread=False, cached_statements=0 if writes else 128,
        timeout=5.0 if writes else 0.0,
    )  # fmt: skip
    raw.execute("PRAGMA trusted_schema = OFF")
    if not writes:
        raw.execute("PRAGMA query_only = ON")
    raw.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max(settings.max_result_bytes, 16 * 1024 * 1024))
    raw.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, 1_000_000)
    authorizer = Authorizer(DIALECT.functions, writes=writes, ddl=writes and settings.allow_ddl)
    raw.set_authorizer(authorizer)
    deadline = _Deadline()
    raw.set_progress_handler(deadline, 1000)
    return _Connection(raw, authorizer, deadline)


class SqliteBackend(Backend):
    """An SQLite file: a small pool of read-only connections and, with writes enabled, one writer."""

    dialect = DIALECT

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._free: list[_Connection] = []
        self._slots = anyio.Semaphore(settings.pool_size)
        self._writer: _Connection | None = None
        self._write_lock = threading.Lock()
        self.path: Path | None = None

    async def start(self) -> None:
        self.path = await anyio.to_thread.run_sync(self._locate)
        opened = [
            await anyio.to_thread.run_sync(lambda: self._open(writes=False)) for _ in range(self.settings.pool_size)
        ]
        self._free.extend(opened)
        if self.settings.enable_writes:
            self._writer = await anyio.to_thread.run_sync(lambda: self._open(writes=True))
        logger.info("SQLite backend on %s (%d read connections, writes %s)", self.path, len(opened),
                    "enabled" if self._writer else "disabled")  # fmt: skip

    def _locate(self) -> Path:
        if self.settings.dsn is None:
            folders = [self.settings.sample_dir] if self.settings.sample_dir else sample_dirs(os.environ)
            try:
                return ensure_sample_in(folders)
            except OSError as exc:
                raise StartupRefused(
                    f"cannot write the sample database to {folders[-1]} ({exc.strerror}); set SQL_SERVER_SAMPLE_DIR"
                ) from None
        path = sqlite_path(self.settings.dsn)
        if not path.is_file():
            raise StartupRefused(f"SQL_SERVER_DSN names a SQLite file that does not exist: {path}")
        return path

    def _open(self, *, writes: bool) -> _Connection:
        assert self.path is not None
        try:
            return _open(self.path, self.settings, writes=writes)
        except sqlite3.Error as exc:
            raise StartupRefused(f"cannot open the SQLite database {'for writing' if writes else ''}: {exc}") from None

    async def close(self) -> None:
        for conn in [*self._free, *([self._writer] if self._writer else [])]:
            conn.raw.close()
        self._free.clear()
        self._writer = None

    async def _acquire(self) -> _Connection:
        try:
            self._slots.acquire_nowait()  # the common case: a free connection, without a trip round the loop
        except anyio.WouldBlock:
            await self._slots.acquire()
        return self._free.pop()

    def _release(self, conn: _Connection) -> None:
        self._free.append(conn)
        self._slots.release()

    async def _run(self, work: Callable[[_Connection], Any]) -> Any:
        conn = await self._acquire()
        try:
            return await anyio.to_thread.run_sync(lambda: work(conn))
        finally:
            self._release(conn)

    async def read(self, statement: Statement, args: Sequence[Any], limit: int) -> ReadResult:
        """Try the statement inline first, within `_INLINE_BUDGET_S`: a small read costs less than the trip to a
        worker thread. One that runs longer (or meets a lock) is interrupted and re-run from the start on a
        worker thread under the real timeout; re-running is safe because nothing on this connection can write."""
        values, sql = _coerce(args), statement.sql
        conn = await self._acquire()
        try:
            try:
                return self._read(conn, sql, values, limit, inline=True)
            except _Slow:
                return await anyio.to_thread.run_sync(lambda: self._read(conn, sql, values, limit, inline=False))  # type: ignore[no-any-return]
        finally:
            self._release(conn)

    def _read(self, conn: _Connection, sql: str, args: Sequence[Any], limit: int, *, inline: bool) -> ReadResult:
        cap = RowCap(limit, self.settings.max_result_bytes)
        now = time.monotonic()
        deadline = now + (_INLINE_BUDGET_S if inline else self.settings.statement_timeout_s)
        conn.deadline.at, conn.authorizer.denied = deadline, None
        try:
            cursor = self._execute(conn, sql, _named(args), inline)
            names = [d[0] for d in cursor.description or ()]
            size = min(limit + 1, _INLINE_CHUNK if inline else _CHUNK)
            chunk = cursor.fetchmany(size)
            types = infer_types(chunk, len(names))
            cap.add(chunk)
            exhausted = len(chunk) < size
            while not exhausted and not cap.full:
                if inline and time.monotonic() > deadline:
                    raise _Slow
                chunk = cursor.fetchmany(size)
                cap.add(chunk)
                exhausted = len(chunk) < size
            if not exhausted and inline:
                raise _Slow  # counting the rest can take long: never inline
            total, note = (cap.received, None) if exhausted else self._count_rest(conn, cursor, cap.received)
            cursor.close()
        except sqlite3.OperationalError as exc:
            if inline and ("interrupt" in str(exc) or "locked" in str(exc)):
                raise _Slow from None
            raise self._error(conn, exc) from None
        except sqlite3.Error as exc:
            raise self._error(conn, exc) from None
        finally:
            conn.deadline.at = _NEVER
        return ReadResult(list(map(Column, names, types)), cap.rows, total, cap.truncated, note)

    @staticmethod
    def _execute(conn: _Connection, sql: str, args: dict[str, Any], inline: bool) -> sqlite3.Cursor:
        """Start the statement; on a worker thread, wait out a writer's lock until the statement deadline (the
        connection has no busy handler of its own, so that an inline attempt never sleeps on the event loop)."""
        while True:
            try:
                return conn.raw.execute(sql, args)
            except sqlite3.OperationalError as exc:
                if inline or "locked" not in str(exc) or time.monotonic() > conn.deadline.at:
                    raise
                time.sleep(0.005)

    def _count_rest(self, conn: _Connection, cursor: sqlite3.Cursor, seen: int) -> tuple[int | None, str | None]:
        budget = self.settings.count_timeout_s
        if budget <= 0:
            return None, "counting is disabled (SQL_SERVER_COUNT_TIMEOUT=0)"
        statement_deadline = conn.deadline.at
        conn.deadline.at = min(statement_deadline, time.monotonic() + budget)
        try:
            while rows := cursor.fetchmany(10_000):
                seen += len(rows)
        except sqlite3.OperationalError as exc:
            if "interrupt" not in str(exc):
                raise
            return None, f"counting the remaining rows stopped after SQL_SERVER_COUNT_TIMEOUT ({budget:g} s)"
        finally:
            conn.deadline.at = statement_deadline
        return seen, None

    @contextmanager
    def _statement(self, conn: _Connection, deadline: float) -> Iterator[None]:
        """Arm the statement timeout and translate SQLite's errors (authorizer refusals named)."""
        conn.deadline.at, conn.authorizer.denied = deadline, None
        try:
            yield
        except sqlite3.Error as exc:
            raise self._error(conn, exc) from None
        finally:
            conn.deadline.at = _NEVER

    def _error(self, conn: _Connection, exc: sqlite3.Error) -> Exception:
        message = str(exc)
        if "interrupt" in message:
            return LimitExceeded(
                f"the statement ran longer than SQL_SERVER_STATEMENT_TIMEOUT ({self.settings.statement_timeout_s:g} s) "
                "and was interrupted"
            )
        if "not authorized" in message and conn.authorizer.denied:
            return DatabaseError(f"the SQLite authorizer refused {conn.authorizer.denied}")
        if "too big" in message:
            return LimitExceeded(f"a value exceeds the size limit SQLite was opened with ({message})")
        if isinstance(exc, sqlite3.ProgrammingError) and "one statement" in message:
            return DatabaseError("the driver runs exactly one statement and refused a script")
        if isinstance(exc, sqlite3.ProgrammingError) and "binding" in message.lower():
            return InvalidArguments(f"params do not match the statement's placeholders ({message})")
        return DatabaseError(f"SQLite refused the statement: {message}")

    async def explain(self, statement: Statement, args: Sequence[Any], analyze: bool) -> Any:
        values = _named(_coerce(args))
        return await self._run(lambda conn: self._explain(conn, statement.sql, values))

    def _explain(self, conn: _Connection, sql: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        with self._statement(conn, time.monotonic() + self.settings.statement_timeout_s):
            plan = conn.raw.execute(f"EXPLAIN QUERY PLAN {sql}", args).fetchall()
        return [{"id": row[0], "parent": row[1], "detail": row[3]} for row in plan]

    async def write(
        self, statement: Statement, args: Sequence[Any], *, dry_run: bool, expected: int | None
    ) -> WriteResult:
        if self._writer is None:
            raise WriteRefused("writes are disabled on this server (start it with --enable-writes)")
        values, writer = _named(_coerce(args)), self._writer
        return await anyio.to_thread.run_sync(lambda: self._write(writer, statement, values, dry_run, expected))  # type: ignore[no-any-return]

    def _write(
        self, conn: _Connection, statement: Statement, args: dict[str, Any], dry_run: bool, expected: int | None
    ) -> WriteResult:
        with self._write_lock:
            self._internal(conn, "BEGIN IMMEDIATE")
            committed = False
            try:
                with self._statement(conn, time.monotonic() + self.settings.statement_timeout_s):
                    cursor = conn.raw.execute(statement.sql, args)
                    cap = RowCap(self.settings.max_rows, self.settings.max_result_bytes)
                    names = [d[0] for d in cursor.description or []]
                    returned = cursor.fetchall() if names else []
                    cap.add(returned)
                    affected = None if statement.kind == "ddl" else max(cursor.rowcount, len(returned))
                if not dry_run and (expected is None or affected == expected):
                    self._internal(conn, "COMMIT")
                    committed = True
            finally:
                if not committed:
                    self._internal(conn, "ROLLBACK")
        columns = list(map(Column, names, infer_types(returned, len(names))))
        status = f"{statement.kind.upper()} {affected}" if affected is not None else "DDL"
        return WriteResult(affected, status, columns, cap.rows, cap.truncated, committed)

    @staticmethod
    def _internal(conn: _Connection, sql: str) -> None:
        conn.authorizer.internal = True
        try:
            conn.raw.execute(sql)
        except sqlite3.OperationalError as exc:
            if sql != "ROLLBACK" or "no transaction" not in str(exc):
                raise DatabaseError(f"SQLite refused {sql}: {exc}") from None
        finally:
            conn.authorizer.internal = False

    async def _catalog(self, sql: str, args: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        def work(conn: _Connection) -> list[tuple[Any, ...]]:
            with self._statement(conn, time.monotonic() + self.settings.statement_timeout_s):
                return conn.raw.execute(sql, args or {}).fetchall()

        return await self._run(work)  # type: ignore[no-any-return]

    async def schemas(self) -> list[SchemaInfo]:
        return [SchemaInfo("main", len(await self.tables()))]

    async def tables(self, schema: str | None = None) -> list[TableRef]:
        if schema not in (None, "main"):
            return []
        found = await self._catalog(
            "SELECT name, type FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite!_%' "
            "ESCAPE '!' ORDER BY name"
        )
        estimates: dict[str, int] = {}
        if any(name == "sqlite_stat1" for (name,) in await self._catalog("SELECT name FROM sqlite_schema")):
            for table, stat in await self._catalog("SELECT tbl, stat FROM sqlite_stat1"):
                estimates.setdefault(table, int(str(stat).split()[0]))
        return [TableRef("main", name, kind, estimates.get(name)) for name, kind in found]

    async def describe(self, table: TableRef) -> TableDescription:
        args = {"t": table.name}
        columns = await self._catalog(
            'SELECT name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(:t)', args
        )
        keys = sorted((pk, name) for name, _t, _n, _d, pk, _h in columns if pk)
        fks: dict[int, dict[str, Any]] = {}
        for fid, _seq, ref, src, dst, *_ in await self._catalog("SELECT * FROM pragma_foreign_key_list(:t)", args):
            entry = fks.setdefault(fid, {"columns": [], "references_table": ref, "references_columns": []})
            entry["columns"].append(src)
            entry["references_columns"].append(dst)
        indexes = []
        for _seq, name, unique, origin, _partial in await self._catalog("SELECT * FROM pragma_index_list(:t)", args):
            parts = await self._catalog("SELECT name FROM pragma_index_info(:i) ORDER BY seqno", {"i": name})
            indexes.append({"name": name, "columns": [p[0] for p in parts], "unique": bool(unique), "origin": origin})
        count, exact = await self._row_count(table)
        return TableDescription(
            table=table,
            columns=[
                {"name": n, "type": t or "", "nullable": not nn and not pk, "default": d, "primary_key": bool(pk)}
                for n, t, nn, d, pk, hidden in columns
                if not hidden
            ],
            primary_key=[name for _pk, name in keys],
            foreign_keys=list(fks.values()),
            indexes=indexes,
            row_estimate=count,
            row_estimate_exact=exact,
        )

    async def _row_count(self, table: TableRef) -> tuple[int | None, bool]:
        quoted = '"' + table.name.replace('"', '""') + '"'
        try:
            rows = await self._catalog(f"SELECT count(*) FROM {quoted}")
        except LimitExceeded:
            return table.row_estimate, False
        return int(rows[0][0]), True


def _coerce(args: Sequence[Any]) -> list[Any]:
    """JSON params as SQLite values: booleans as 0/1, lists and objects as JSON text."""
    import json

    out: list[Any] = []
    for value in args:
        if isinstance(value, bool):
            out.append(int(value))
        elif isinstance(value, list | dict):
            out.append(json.dumps(value))
        else:
            out.append(value)
    return out


def _named(args: Sequence[Any]) -> dict[str, Any]:
    """Generated SQLite statements bind :p1, :p2 … (see `Dialect.placeholder`)."""
    return {f"p{index}": value for index, value in enumerate(args, start=1)}
