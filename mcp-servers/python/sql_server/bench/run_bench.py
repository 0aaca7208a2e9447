"""`make bench`: the server's query path against the raw driver doing the same work, in the same run.

Two workloads on each backend (a throw-away PostgreSQL cluster, and an SQLite file):
1. `query` of a 100,000-row × 10-column table capped to 10,000 returned rows (exact total counted);
2. 1,000 sequential small queries (one row by primary key, a bound parameter).

"Our" side is the service in-process (layer 1 with its cache, the read-only transaction, the caps, the JSON
encoding and the text rendering: everything but the MCP transport) — the figure the 1.3x target is about —
and, for information, the same calls through MCP over stdio (a server subprocess and the SDK client: adds
JSON-RPC framing, pydantic validation of the output on both sides, and a pipe). The raw side is the driver
doing the same database work with no checking: for PostgreSQL an asyncpg pool, BEGIN READ ONLY, one prepared
statement, a cursor fetched to limit + 1 rows, MOVE over the rest to count it, ROLLBACK, and the rows encoded
to JSON; for SQLite a read-only connection on a worker thread (as any asyncio server must), fetchmany to
limit + 1, counting the rest, JSON encoding (and, as a floor, the same inline on the event loop). The two
sides alternate in blocks of 50 calls (the side going first alternates too), so that both see the same load
on a shared machine; the best-of ratio and the median of the per-round ratios are printed (wall clock, and
this process's CPU time) and written to bench/results/bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import asyncpg
import orjson
from mcp import Client, StdioServerParameters

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from pg_cluster import create_cluster  # noqa: E402
from sql_server.backends import open_backend  # noqa: E402
from sql_server.config import Settings  # noqa: E402
from sql_server.service import SqlService  # noqa: E402

COLUMNS = "id integer PRIMARY KEY, a integer, b bigint, c double precision, d numeric(12,2), e text, f text, g date, h timestamp, i boolean"
BIG = "SELECT * FROM bench_rows ORDER BY id"
LIMIT = 10_000
SMALL_PG = "SELECT * FROM bench_rows WHERE id = $1"
SMALL_SQLITE = "SELECT * FROM bench_rows WHERE id = ?"


def bench_rows(n: int) -> list[tuple[Any, ...]]:
    rng = random.Random(7)
    start = datetime(2024, 1, 1)
    return [
        (
            i,
            rng.randrange(1000),
            rng.randrange(10**12),
            rng.random() * 1000,
            Decimal(rng.randrange(10**7)) / 100,
            f"name-{rng.randrange(10**6)}",
            rng.choice(["red", "green", "blue"]),
            date(2024, 1, 1) + timedelta(days=i % 700),
            start + timedelta(seconds=i * 37),
            i % 3 == 0,
        )  # fmt: skip
        for i in range(1, n + 1)
    ]


def _default(value: Any) -> Any:
    return str(value) if not isinstance(value, bytes) else value.hex()


async def raw_postgres(pool: asyncpg.Pool, sql: str, args: list[Any], limit: int) -> bytes:
    async with pool.acquire() as conn:
        await conn.execute("BEGIN READ ONLY")
        try:
            stmt = await conn._prepare(sql, use_cache=True)
            cursor = await stmt.cursor(*args)
            rows = await cursor.fetch(limit + 1)
            total = len(rows)
            if total > limit:
                total += await cursor.forward(2**31 - 1)
            return orjson.dumps({"rows": [list(r) for r in rows[:limit]], "total": total}, default=_default)
        finally:
            await conn.execute("ROLLBACK")


def _raw_sqlite_work(conn: sqlite3.Connection, sql: str, args: list[Any], limit: int) -> bytes:
    cursor = conn.execute(sql, args)
    rows = cursor.fetchmany(limit + 1)
    total = len(rows)
    if total > limit:
        while more := cursor.fetchmany(10_000):
            total += len(more)
    return orjson.dumps({"rows": [list(r) for r in rows[:limit]], "total": total}, default=_default)


Work = Callable[[int], Awaitable[Any]]  # one call; the argument picks the row for the small queries


async def _block(work: Work, first: int, count: int) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) for `count` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(first, first + count):
        await work(1 + (i * 7919) % 100_000)
    return time.perf_counter() - wall, time.process_time() - cpu


async def compare(label: str, ours: Work, raw: Work, calls: int, rounds: int, block: int) -> dict[str, Any]:
    """Interleave blocks of `block` calls (the side that goes first alternates), so both see the same load."""
    await _block(ours, 0, block)
    await _block(raw, 0, block)  # warm both (caches, pool, statements)
    mine, theirs = [], []
    for r in range(rounds):
        totals = {"ours": [0.0, 0.0], "raw": [0.0, 0.0]}
        for n, first in enumerate(range(0, calls, block)):
            order = [("ours", ours), ("raw", raw)] if (n + r) % 2 == 0 else [("raw", raw), ("ours", ours)]
            for side, work in order:
                wall, cpu = await _block(work, first, min(block, calls - first))
                totals[side][0] += wall
                totals[side][1] += cpu
        mine.append(totals["ours"])
        theirs.append(totals["raw"])
    wall = [m[0] / t[0] for m, t in zip(mine, theirs, strict=True)]
    cpu = [m[1] / t[1] for m, t in zip(mine, theirs, strict=True)]
    best_mine, best_theirs = min(m[0] for m in mine), min(t[0] for t in theirs)
    row = {
        "workload": label, "ours_best_s": best_mine, "raw_best_s": best_theirs,
        "ratio_of_bests": best_mine / best_theirs, "median_ratio": statistics.median(wall),
        "median_cpu_ratio": statistics.median(cpu), "rounds": rounds,
    }  # fmt: skip
    print(
        f"  {label:<52} ours {best_mine:.4f} s  raw {best_theirs:.4f} s  bests {row['ratio_of_bests']:.2f}x  "
        f"median {row['median_ratio']:.2f}x  (client CPU median {row['median_cpu_ratio']:.2f}x)",
        flush=True,
    )
    return row


@contextlib.asynccontextmanager
async def mcp_stdio(env: dict[str, str]) -> AsyncIterator[Client]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SQL_SERVER_")}
    params = StdioServerParameters(command=sys.executable, args=["-m", "sql_server"], env={**inherited, **env})
    async with Client(params, mode="legacy") as client:
        yield client


async def via_mcp(client: Client, sql: str, params: list[Any] | None, limit: int | None) -> None:
    result = await client.call_tool("query", {"sql": sql, "params": params, "limit": limit})
    assert not result.is_error, result.content


async def run_postgres(rows: list[tuple[Any, ...]], rounds: int, small: int) -> list[dict[str, Any]]:
    cluster = await anyio.to_thread.run_sync(create_cluster)
    try:
        admin = await asyncpg.connect(cluster.admin_dsn)
        await admin.execute(f"CREATE TABLE bench_rows ({COLUMNS})")
        await admin.copy_records_to_table("bench_rows", records=rows)
        await admin.execute("ANALYZE bench_rows; GRANT SELECT ON bench_rows TO harbor_reader")
        settings = Settings(dsn=cluster.reader_dsn, max_rows=LIMIT, pool_size=5)
        backend = open_backend(settings)
        await backend.start()
        service = SqlService(settings, backend)
        pool = await asyncpg.create_pool(cluster.reader_dsn, min_size=1, max_size=5)
        env = {"SQL_SERVER_DSN": cluster.reader_dsn, "SQL_SERVER_MAX_ROWS": str(LIMIT)}
        try:
            print(f"PostgreSQL ({len(rows):,} rows x 10 columns)")
            big_raw: Work = lambda _: raw_postgres(pool, BIG, [], LIMIT)  # noqa: E731
            small_raw: Work = lambda i: raw_postgres(pool, SMALL_PG, [i], LIMIT)  # noqa: E731
            results = [
                await compare(f"query {len(rows):,} rows capped to {LIMIT:,} (exact total)",
                              lambda _: service.query(BIG, None, LIMIT), big_raw, 1, rounds * 3, 1),
                await compare(f"{small:,} sequential small queries",
                              lambda i: service.query(SMALL_PG, [i], None), small_raw, small, rounds, 50),
            ]  # fmt: skip
            async with mcp_stdio(env) as client:
                results += [
                    await compare("  the same query through MCP over stdio",
                                  lambda _: via_mcp(client, BIG, None, LIMIT), big_raw, 1, rounds * 3, 1),
                    await compare("  the same small queries through MCP over stdio",
                                  lambda i: via_mcp(client, SMALL_PG, [i], None), small_raw, small, rounds, 50),
                ]  # fmt: skip
            connections = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'harbor-sql-server'"
            )
            print(f"  server connections after all the small queries: {connections} (pool size 5)")
            results.append({"workload": "server connections after the small queries", "count": connections})
        finally:
            await pool.close()
            await backend.close()
            await admin.close()
    finally:
        cluster.destroy()
    for row in results:
        row["backend"] = "postgresql"
    return results


def _sqlite_file(rows: list[tuple[Any, ...]], folder: Path) -> Path:
    path = folder / "bench.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE bench_rows ({COLUMNS})")
        conn.executemany(f"INSERT INTO bench_rows VALUES ({', '.join('?' * 10)})",
                         [tuple(str(v) if isinstance(v, Decimal | date) else v for v in r) for r in rows])  # fmt: skip
    conn.close()
    return path


async def run_sqlite(rows: list[tuple[Any, ...]], rounds: int, small: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as folder:
        path = _sqlite_file(rows, Path(folder))
        settings = Settings(dsn=f"sqlite:///{path}", max_rows=LIMIT)
        backend = open_backend(settings)
        await backend.start()
        service = SqlService(settings, backend)
        raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

        def on_thread(sql: str, args: list[Any]) -> Awaitable[bytes]:
            return anyio.to_thread.run_sync(lambda: _raw_sqlite_work(raw, sql, args, LIMIT))

        async def inline(sql: str, args: list[Any]) -> bytes:  # the floor: no thread, blocks the event loop
            return _raw_sqlite_work(raw, sql, args, LIMIT)

        ours_small: Work = lambda i: service.query(SMALL_SQLITE, [i], None)  # noqa: E731
        try:
            print(f"SQLite ({len(rows):,} rows x 10 columns)")
            results = [
                await compare(f"query {len(rows):,} rows capped to {LIMIT:,} (exact total)",
                              lambda _: service.query(BIG, None, LIMIT), lambda _: on_thread(BIG, []), 1, rounds * 3, 1),
                await compare(f"{small:,} sequential small queries",
                              ours_small, lambda i: on_thread(SMALL_SQLITE, [i]), small, rounds, 50),
                await compare("  the same, against raw sqlite3 inline (no thread)",
                              ours_small, lambda i: inline(SMALL_SQLITE, [i]), small, rounds, 50),
            ]  # fmt: skip
            env = {"SQL_SERVER_DSN": f"sqlite:///{path}", "SQL_SERVER_MAX_ROWS": str(LIMIT)}
            async with mcp_stdio(env) as client:
                results += [
                    await compare("  the same query through MCP over stdio",
                                  lambda _: via_mcp(client, BIG, None, LIMIT), lambda _: on_thread(BIG, []), 1, rounds * 3, 1),
                    await compare("  the same small queries through MCP over stdio",
                                  lambda i: via_mcp(client, SMALL_SQLITE, [i], None),
                                  lambda i: on_thread(SMALL_SQLITE, [i]), small, rounds, 50),
                ]  # fmt: skip
        finally:
            raw.close()
            await backend.close()
    for row in results:
        row["backend"] = "sqlite"
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--small", type=int, default=1000)
    args = parser.parse_args()
    rows = bench_rows(args.rows)
    results = await run_postgres(rows, args.rounds, args.small) + await run_sqlite(rows, args.rounds, args.small)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    meta = {"python": sys.version.split()[0], "cpus": os.cpu_count(), "when": datetime.now(UTC).isoformat()}
    (out / "bench.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str))


if __name__ == "__main__":
    asyncio.run(main())
