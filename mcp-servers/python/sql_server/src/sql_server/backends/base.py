"""What every backend provides: a read path (layer 2 and 3), a write path, and the catalog.

Contract: a backend receives statements that layer 1 already checked (`validation.Statement`) and must
still be safe if it receives one that was not: its read path runs every statement on a connection and in
a transaction that cannot change anything (the tests drive it directly with refused statements to prove
that), always ends that transaction with a rollback, sends the text to the driver as one prepared
statement, never as a script, and applies the row cap (`limit` + 1 fetched) and the byte cap. It raises
only `errors.SqlServerError` subclasses, with messages that carry no DSN, host, port, user or password.

`resolve_table` is shared: it matches a caller's table name against the backend's `tables()`.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..config import Settings
from ..dialect import Dialect
from ..errors import NotFound
from ..validation import Statement


class Column(NamedTuple):
    name: str
    type: str


@dataclass
class ReadResult:
    """Rows of one read, capped, with the exact total when it could be counted (None otherwise)."""

    columns: list[Column]
    rows: list[list[Any]]
    total: int | None
    truncated: str | None  # None, "rows" or "bytes"
    count_note: str | None = None  # why `total` is None


@dataclass
class WriteResult:
    """What a write did (or would do, for a dry run that was rolled back)."""

    affected: int | None  # None for DDL
    status: str
    columns: list[Column] = field(default_factory=list)  # RETURNING
    rows: list[list[Any]] = field(default_factory=list)
    truncated: str | None = None
    committed: bool = False


@dataclass(frozen=True)
class TableRef:
    schema: str
    name: str
    type: str  # "table" | "view" | "materialized view" | "foreign table" | "partitioned table"
    row_estimate: int | None = None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass
class TableDescription:
    table: TableRef
    columns: list[dict[str, Any]]
    primary_key: list[str]
    foreign_keys: list[dict[str, Any]]
    indexes: list[dict[str, Any]]
    row_estimate: int | None
    row_estimate_exact: bool


@dataclass(frozen=True)
class SchemaInfo:
    name: str
    tables: int


class Backend(ABC):
    """One database behind one dialect. Subclasses implement the abstract methods."""

    dialect: Dialect

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @abstractmethod
    async def start(self) -> None:
        """Open connections and check the role. Raises StartupRefused when the configuration is unsafe."""

    @abstractmethod
    async def close(self) -> None:
        """Close every connection."""

    @abstractmethod
    async def read(self, statement: Statement, args: Sequence[Any], limit: int) -> ReadResult:
        """Run one read statement in a read-only, rolled-back transaction; rows capped by `limit` and bytes."""

    @abstractmethod
    async def explain(self, statement: Statement, args: Sequence[Any], analyze: bool) -> Any:
        """The plan of a read statement (EXPLAIN without ANALYZE unless asked), in a rolled-back transaction."""

    @abstractmethod
    async def write(
        self, statement: Statement, args: Sequence[Any], *, dry_run: bool, expected: int | None
    ) -> WriteResult:
        """Run one write in a transaction: rolled back when `dry_run`, or when `expected` is given and the
        affected row count differs from it; committed otherwise."""

    @abstractmethod
    async def schemas(self) -> list[SchemaInfo]:
        """The schemas this role can see, with their table counts."""

    @abstractmethod
    async def tables(self, schema: str | None = None) -> list[TableRef]:
        """Tables and views this role can read, optionally of one schema."""

    @abstractmethod
    async def describe(self, table: TableRef) -> TableDescription:
        """Columns, keys, indexes and a row estimate of one table."""

    async def resolve_table(self, name: str) -> TableRef:
        """The table a caller means by `name` (`table` or `schema.table`, exact case first).

        Raises:
            NotFound: no such table is visible; the message suggests the closest names.
        """
        tables = await self.tables()
        schema, _, bare = name.rpartition(".")
        for exact in (True, False):
            found = [t for t in tables if _same(t.name, bare, exact) and (not schema or _same(t.schema, schema, exact))]
            if found:
                return sorted(found, key=lambda t: t.schema != self.default_schema)[0]
        names = [t.name if t.schema == self.default_schema else t.qualified for t in tables]
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else "; list_tables shows the tables"
        raise NotFound(f"no table or view named {name!r} is visible to this server{hint}")

    @property
    def default_schema(self) -> str:
        return "main" if self.dialect.name == "sqlite" else "public"


def _same(a: str, b: str, exact: bool) -> bool:
    return a == b if exact else a.lower() == b.lower()
