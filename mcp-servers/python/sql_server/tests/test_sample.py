"""The generated sample: deterministic, versioned, written atomically into a writable cache only."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from conftest import sqlite_checksum
from sql_server import sample
from sql_server.config import load_settings, sample_dirs


def test_the_rows_are_the_same_every_time() -> None:
    first, second = sample.rows(), sample.rows()
    assert first == second
    assert {table: len(rows) for table, rows in first.items()} == {
        "customers": 500, "products": 120, "orders": 3000, "order_items": 7810,
    }  # fmt: skip
    # pinned: a change to the generator must come with a new SAMPLE_VERSION (cached files are then rebuilt)
    assert (sample.SAMPLE_VERSION, hashlib.sha256(repr(first).encode()).hexdigest()) == (
        1,
        "47040c8885d8820def7dc5346015084923d0384dc38a0520a8fa1ef318e143d0",
    )


def test_two_builds_hold_identical_content(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "s.sqlite3", tmp_path / "b" / "s.sqlite3"
    sample.build_sqlite(a)
    sample.build_sqlite(b)
    assert sqlite_checksum(a) == sqlite_checksum(b)
    with sqlite3.connect(a) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (sample.SAMPLE_VERSION,)
        assert conn.execute("SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id").fetchone() == (
            3000,
        )
    conn.close()


def test_a_file_of_another_version_is_rebuilt_and_no_temporary_files_remain(tmp_path: Path) -> None:
    stale = tmp_path / sample.SAMPLE_FILE
    with sqlite3.connect(stale) as conn:
        conn.execute("CREATE TABLE junk (a)")
    conn.close()
    path = sample.ensure_sample(tmp_path)
    assert path == stale and sqlite3.connect(path).execute("SELECT count(*) FROM products").fetchone() == (120,)
    assert sorted(p.name for p in tmp_path.iterdir()) == [sample.SAMPLE_FILE]


def test_an_unwritable_cache_falls_back_to_the_next_folder(tmp_path: Path) -> None:
    blocked = Path("/dev/null/harbor")  # a folder under a file can never be created
    path = sample.ensure_sample_in([blocked, tmp_path / "cache"])
    assert path.parent == tmp_path / "cache"
    with pytest.raises(OSError):
        sample.ensure_sample_in([blocked])


def test_the_sample_folder_comes_from_the_environment_never_the_package() -> None:
    assert sample_dirs({"SQL_SERVER_SAMPLE_DIR": "/srv/x"}) == [Path("/srv/x")]
    folders = sample_dirs({"HOME": "/home/u", "XDG_CACHE_HOME": "/c"})
    assert folders[:2] == [Path("/c/harbor-sql-server"), Path("/home/u/.cache/harbor-sql-server")]
    package = Path(sample.__file__).parent
    assert all(package not in folder.parents for folder in folders)
    assert load_settings([], {}).sample_dir is None and load_settings([], {}).dsn is None


def test_the_sample_ddl_has_keys_for_both_backends() -> None:
    for backend in ("sqlite", "postgresql"):
        statements = sample.ddl(backend)
        assert any("REFERENCES customers(id)" in s for s in statements)
        assert sum(s.startswith("CREATE INDEX") for s in statements) == 4
