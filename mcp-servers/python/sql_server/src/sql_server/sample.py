"""The sample shop database: customers, products, orders and order items, generated deterministically.

Contract: `rows()` always returns the same rows (a fixed seed, no clock, no locale), `ddl(backend)` the
schema for SQLite or PostgreSQL, and `ensure_sample(folder)` a ready SQLite file in `folder`, generated
on first use. The file is built under a temporary name and renamed into place, so two servers starting
at once never see half a database, and it is never written into the installed package (which may be
read-only): the folder is a cache (`SQL_SERVER_SAMPLE_DIR`, else `$XDG_CACHE_HOME` or `~/.cache`, else
the temp folder). `SAMPLE_VERSION` is stored as `PRAGMA user_version`; a file of another version is rebuilt.
"""

from __future__ import annotations

import os
import random
import sqlite3
import tempfile
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

SAMPLE_VERSION = 1
SAMPLE_FILE = f"shop-sample-v{SAMPLE_VERSION}.sqlite3"
SEED = 20261201
COUNTS = {"customers": 500, "products": 120, "orders": 3000}

_FIRST = (
    "Ada Alan Bea Carl Dana Emil Fay Gus Hana Ivan Jo Kai Lea Milo Nia Omar Pia Raj Sara Tom Uma Vic Wen Yara".split()
)
_LAST = (
    "Abe Brook Chen Diaz Evans Fox Garcia Haas Ito Jones Klein Lund Moreau Novak Olsen Park Quinn Rossi Silva Tran"
).split()
_PLACES = [
    ("France", "Paris"), ("France", "Lyon"), ("Germany", "Berlin"), ("Germany", "Hamburg"), ("Japan", "Tokyo"),
    ("Brazil", "Recife"), ("Canada", "Montreal"), ("Canada", "Vancouver"), ("India", "Pune"), ("Kenya", "Nairobi"),
    ("Spain", "Valencia"), ("United States", "Austin"), ("United States", "Boston"), ("Italy", "Turin"),
]  # fmt: skip
_CATEGORIES = ["books", "garden", "kitchen", "music", "office", "outdoor", "toys", "tools"]
_ADJECTIVES = "Basic Bright Compact Deluxe Eco Handy Classic Modern Quiet Rugged Smart Sturdy Tiny Vintage Zen".split()
_NOUNS = "Lamp Kettle Shovel Notebook Drill Guitar Puzzle Tent Chair Mug Clock Planter Speaker Stapler Rake".split()
_STATUSES = ["pending", "paid", "shipped", "delivered", "delivered", "delivered", "cancelled", "refunded"]

COLUMNS = {
    "customers": ["id", "name", "email", "country", "city", "signup_date", "is_active"],
    "products": ["id", "sku", "name", "category", "price", "stock"],
    "orders": ["id", "customer_id", "ordered_at", "status", "total"],
    "order_items": ["id", "order_id", "product_id", "quantity", "unit_price"],
}

_TYPES = {  # column → (SQLite type, PostgreSQL type); the constraints are shared
    "id": ("INTEGER", "integer"), "name": ("TEXT", "text"), "email": ("TEXT", "text"), "country": ("TEXT", "text"),
    "city": ("TEXT", "text"), "signup_date": ("DATE", "date"), "is_active": ("BOOLEAN", "boolean"),
    "sku": ("TEXT", "text"), "category": ("TEXT", "text"), "price": ("NUMERIC(10,2)", "numeric(10,2)"),
    "stock": ("INTEGER", "integer"), "customer_id": ("INTEGER", "integer"), "ordered_at": ("TIMESTAMP", "timestamp"),
    "status": ("TEXT", "text"), "total": ("NUMERIC(12,2)", "numeric(12,2)"), "order_id": ("INTEGER", "integer"),
    "product_id": ("INTEGER", "integer"), "quantity": ("INTEGER", "integer"),
    "unit_price": ("NUMERIC(10,2)", "numeric(10,2)"),
}  # fmt: skip
_REFERENCES = {"customer_id": "customers", "order_id": "orders", "product_id": "products"}
_UNIQUE = {"email", "sku"}
_INDEXES = [
    ("orders", "customer_id"),
    ("orders", "ordered_at"),
    ("order_items", "order_id"),
    ("order_items", "product_id"),
]


def rows() -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, in id order, as Python values (date, datetime, Decimal, bool)."""
    rng = random.Random(SEED)  # noqa: S311 - sample data, not secrets
    customers = []
    for cid in range(1, COUNTS["customers"] + 1):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        country, city = rng.choice(_PLACES)
        signup = date(2022, 1, 1) + timedelta(days=rng.randrange(1000))
        email = f"{first}.{last}.{cid}@example.com".lower()
        customers.append((cid, f"{first} {last}", email, country, city, signup, rng.random() < 0.9))
    products = []
    for pid in range(1, COUNTS["products"] + 1):
        name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        price = Decimal(rng.randrange(199, 49999)) / 100
        products.append((pid, f"SKU-{pid:05d}", name, rng.choice(_CATEGORIES), price, rng.randrange(0, 500)))
    orders: list[tuple[Any, ...]] = []
    items: list[tuple[Any, ...]] = []
    start = datetime(2023, 1, 1)
    for oid in range(1, COUNTS["orders"] + 1):
        when = start + timedelta(seconds=rng.randrange(2 * 365 * 86400))
        total = Decimal(0)
        for _ in range(rng.choice([1, 1, 2, 2, 3, 4, 5])):
            product = rng.choice(products)
            quantity = rng.randrange(1, 6)
            unit = (product[4] * Decimal(rng.choice([100, 100, 100, 90, 80])) / 100).quantize(Decimal("0.01"))
            items.append((len(items) + 1, oid, product[0], quantity, unit))
            total += unit * quantity
        orders.append((oid, rng.randrange(1, COUNTS["customers"] + 1), when, rng.choice(_STATUSES), total))
    return {"customers": customers, "products": products, "orders": orders, "order_items": items}


def ddl(backend: str) -> list[str]:
    """CREATE statements for `backend` ("sqlite" or "postgresql"), tables in dependency order."""
    position = 0 if backend == "sqlite" else 1
    statements = []
    for table, columns in COLUMNS.items():
        parts = []
        for column in columns:
            spec = f"{column} {_TYPES[column][position]}"
            spec += " PRIMARY KEY" if column == "id" else " NOT NULL"
            spec += " UNIQUE" if column in _UNIQUE else ""
            spec += f" REFERENCES {_REFERENCES[column]}(id)" if column in _REFERENCES else ""
            parts.append(spec)
        statements.append(f"CREATE TABLE {table} ({', '.join(parts)})")
    statements += [f"CREATE INDEX {table}_{column}_idx ON {table} ({column})" for table, column in _INDEXES]
    return statements


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def build_sqlite(path: Path) -> None:
    """Write the sample database to `path` (replaced atomically if it exists)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".sample-", suffix=".sqlite3", dir=path.parent)
    os.close(handle)
    try:
        with sqlite3.connect(temporary) as conn:
            for statement in ddl("sqlite"):
                conn.execute(statement)
            for table, table_rows in rows().items():
                marks = ", ".join("?" * len(COLUMNS[table]))
                conn.executemany(
                    f"INSERT INTO {table} VALUES ({marks})", [tuple(map(_sqlite_value, r)) for r in table_rows]
                )
            conn.execute("ANALYZE")
            conn.execute(f"PRAGMA user_version = {SAMPLE_VERSION}")
        conn.close()
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _is_current(path: Path) -> bool:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.close()
    except sqlite3.Error:
        return False
    return bool(version == SAMPLE_VERSION)


def ensure_sample(folder: Path) -> Path:
    """The sample database file in `folder`, generated first if it is missing or of another version."""
    path = folder / SAMPLE_FILE
    if not (path.is_file() and _is_current(path)):
        build_sqlite(path)
    return path


def ensure_sample_in(folders: Sequence[Path]) -> Path:
    """The sample in the first folder that has it or can hold it (an unwritable cache is skipped).

    Raises:
        OSError: no folder is writable (the last folder's error).
    """
    error: OSError | None = None
    for folder in folders:
        path = folder / SAMPLE_FILE
        if path.is_file() and _is_current(path):
            return path
        try:
            return ensure_sample(folder)
        except OSError as exc:
            error = exc
    raise error or OSError("no folder for the sample database")
