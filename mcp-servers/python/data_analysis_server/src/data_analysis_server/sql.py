"""Read-only SQL over registered datasets through a locked-down, in-memory DuckDB.

Contract: each call opens a fresh in-memory connection configured with external access disabled
(no file, URL, ATTACH, COPY or extension installs), extension autoloading off, a thread and memory
limit, and then the configuration locked so SQL cannot re-enable anything. Only the datasets passed
in are registered, each as a view named after the dataset. Exactly one statement is accepted and it
must be a SELECT (CTEs included). A watchdog interrupts the query at the time limit. Results stream
in record batches so `total_rows` is exact without materialising a large result; the kept rows go
straight from Arrow to JSON values by their SQL types (`sqltypes.py`), never through pandas (whose
object columns turned HUGEINT sums and DECIMALs into strings and INTERVALs into DateOffset text).
"""

from __future__ import annotations

import threading
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from . import sqltypes
from .errors import InvalidArgumentError, LimitExceededError

BATCH_ROWS = 100_000


def _connect(memory_limit: str, threads: int) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(
        ":memory:",
        config={
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "memory_limit": memory_limit,
            "threads": threads,
            "python_enable_replacements": False,
            "lock_configuration": True,
        },
    )


def _single_select(con: duckdb.DuckDBPyConnection, query: str) -> None:
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise InvalidArgumentError(f"SQL syntax error: {str(exc).splitlines()[0][:300]}") from None
    if len(statements) != 1:
        raise InvalidArgumentError(f"Send exactly one SELECT statement; got {len(statements)}.")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise InvalidArgumentError(
            f"Only read-only SELECT queries are allowed; got a {statements[0].type.name} statement."
        )


def run_sql(
    tables: dict[str, pd.DataFrame],
    query: str,
    limit: int,
    timeout_s: float,
    memory_limit: str = "2GB",
    threads: int = 2,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Run one SELECT; return (first `limit` rows as JSON values, column types, total row count).

    Raises:
        InvalidArgumentError: not exactly one SELECT, syntax/catalog/permission errors (with DuckDB's reason).
        LimitExceededError: the query ran past `timeout_s`.
    """
    con = _connect(memory_limit, threads)
    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        con.interrupt()

    watchdog = threading.Timer(timeout_s, interrupt)
    try:
        _single_select(con, query)
        for name, frame in tables.items():
            con.register(name, frame)
        watchdog.start()
        relation = con.sql(query)
        names, types = list(relation.columns), [str(t) for t in relation.types]
        reader = relation.to_arrow_reader(BATCH_ROWS)
        kept, total = [], 0
        for batch in reader:
            if total < limit:
                kept.append(batch.slice(0, limit - total))
            total += batch.num_rows
        schema = reader.schema
    except duckdb.InterruptException:
        raise LimitExceededError(
            f"Query stopped at the {timeout_s:g} s time limit (DATA_ANALYSIS_SQL_TIMEOUT)."
        ) from None
    except duckdb.Error as exc:
        if timed_out.is_set():
            raise LimitExceededError(
                f"Query stopped at the {timeout_s:g} s time limit (DATA_ANALYSIS_SQL_TIMEOUT)."
            ) from None
        # Only the caller's own tables are listed (in per-identity mode the server holds one identity's data).
        known = ", ".join(tables) or "none loaded"
        raise InvalidArgumentError(f"SQL error: {str(exc).splitlines()[0][:300]} (your tables: {known})") from None
    finally:
        watchdog.cancel()
        con.close()
    rows, columns = sqltypes.convert(pa.Table.from_batches(kept, schema=schema).to_pylist(), names, types)
    return rows, columns, total
