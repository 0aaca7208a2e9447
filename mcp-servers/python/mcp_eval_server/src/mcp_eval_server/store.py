"""SQLite persistence for stored runs and the judge response cache (stdlib `sqlite3`, one file).

One connection per process, used from the event-loop thread only; every statement is short, so blocking the loop
for it costs less than a thread hop. WAL mode lets a second process (the CLI, a notebook) read while we write.
The cache stores the judge's raw reply text keyed by a hash of everything that determines it (provider kind,
base URL, model, messages, temperature), and only replies the judge accepted as a valid verdict; it never stores
API keys or headers.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from mcp_eval_server.errors import RunNotFoundError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, name TEXT, created REAL, task TEXT, summary TEXT, n_items INTEGER
);
CREATE TABLE IF NOT EXISTS run_items (
    run_id TEXT, idx INTEGER, item_id TEXT, result TEXT, PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS judge_cache (
    key TEXT PRIMARY KEY, reply TEXT, input_tokens INTEGER, output_tokens INTEGER, model TEXT, created REAL
);
"""


class Store:
    """Runs and judge cache in one SQLite file, created on first use (never at import or start-up)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL never corrupts; it may lose the last commits on power loss, which a cache can afford,
            # and it avoids an fsync per judge reply on the event-loop thread.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # judge cache -------------------------------------------------------------------------------------------
    def cache_get(self, key: str) -> tuple[str, int | None, int | None, str] | None:
        """(reply, input_tokens, output_tokens, model) of an identical earlier call, or None."""
        row = self.conn.execute(
            "SELECT reply, input_tokens, output_tokens, model FROM judge_cache WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3])

    def cache_put(self, key: str, reply: str, input_tokens: int | None, output_tokens: int | None, model: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO judge_cache VALUES (?, ?, ?, ?, ?, ?)",
            (key, reply, input_tokens, output_tokens, model, time.time()),
        )

    def cache_delete(self, key: str) -> None:
        """Forget one cached reply (the judge found it invalid)."""
        self.conn.execute("DELETE FROM judge_cache WHERE key = ?", (key,))

    # runs --------------------------------------------------------------------------------------------------
    def save_run(
        self, run_id: str, name: str, task: dict[str, Any], summary: dict[str, Any], items: list[dict]
    ) -> None:
        """Store a finished run and its items in one transaction."""
        conn = self.conn
        conn.execute("BEGIN")
        try:
            conn.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, name, time.time(), json.dumps(task), json.dumps(summary), len(items)),
            )
            conn.executemany(
                "INSERT INTO run_items VALUES (?, ?, ?, ?)",
                [(run_id, i, str(item["id"]), json.dumps(item)) for i, item in enumerate(items)],
            )
            conn.execute("COMMIT")
        except sqlite3.Error:
            conn.execute("ROLLBACK")
            raise

    def get_run(self, run_id: str) -> dict[str, Any]:
        """Run header and summary.

        Raises:
            RunNotFoundError: no run has this id.
        """
        row = self.conn.execute(
            "SELECT id, name, created, task, summary, n_items FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise RunNotFoundError(f"no run with id {run_id!r}; call list_runs to see stored runs")
        return {
            "run_id": row[0],
            "name": row[1],
            "created": row[2],
            "task": json.loads(row[3]),
            "summary": json.loads(row[4]),
            "n_items": row[5],
        }

    def get_items(self, run_id: str, offset: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT result FROM run_items WHERE run_id = ? ORDER BY idx LIMIT ? OFFSET ?",
            (run_id, -1 if limit is None else limit, offset),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def list_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, name, created, n_items, summary FROM runs ORDER BY created DESC LIMIT ?", (limit,)
        ).fetchall()
        return [
            {
                "run_id": r[0],
                "name": r[1],
                "created": r[2],
                "n_items": r[3],
                "aggregates": json.loads(r[4]).get("means"),
            }
            for r in rows
        ]
