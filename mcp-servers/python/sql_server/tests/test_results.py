"""Layer 3 as a pure function: JSON encoding without information loss, and the row and byte caps."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import orjson
import pytest

from sql_server.config import describe_dsn, load_settings
from sql_server.errors import StartupRefused
from sql_server.results import RowCap, to_json


def test_values_become_json_without_losing_information() -> None:
    assert to_json(Decimal("12345678901234567890.000000001")) == "12345678901234567890.000000001"
    assert [to_json(float("nan")), to_json(float("inf")), to_json(-float("inf")), to_json(0.1)] == [
        "NaN",
        "Infinity",
        "-Infinity",
        0.1,
    ]
    assert to_json(b"\x00\xff") == "AP8=" and to_json(memoryview(b"ab")) == "YWI="
    assert to_json(datetime(2024, 2, 29, 1, 2, 3, tzinfo=UTC)) == "2024-02-29T01:02:03+00:00"
    assert to_json(date(2024, 1, 1)) == "2024-01-01" and to_json(time(1, 2)) == "01:02:00"
    assert [to_json(timedelta(days=1, hours=2, seconds=3.5)), to_json(timedelta(0)), to_json(-timedelta(minutes=5))] == [
        "P1DT2H3.5S", "PT0S", "-PT5M",
    ]  # fmt: skip
    assert to_json(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert to_json([1, [b"\x01", None], {"k": Decimal("1.5")}]) == [1, ["AQ==", None], {"k": "1.5"}]
    assert to_json(2**70) == 2**70


def test_the_row_cap_keeps_limit_rows_and_counts_what_it_received() -> None:
    cap = RowCap(limit=3, max_bytes=10_000)
    assert cap.add([[1], [2]]) is True
    assert cap.add([[3], [4]]) is False
    assert (cap.rows, cap.truncated, cap.received) == ([[1], [2], [3]], "rows", 4)


def test_the_byte_cap_counts_the_json_encoding_and_stops_between_rows() -> None:
    rows = [[i, "x" * 10] for i in range(100)]
    cap = RowCap(limit=1000, max_bytes=100)
    cap.add(rows)
    assert cap.truncated == "bytes" and cap.bytes <= 100
    assert len(orjson.dumps(cap.rows)) <= 100 + 1 and cap.rows == rows[: len(cap.rows)]
    exact = RowCap(limit=1000, max_bytes=len(orjson.dumps(rows[:5])) - 1)
    exact.add(rows[:5])
    assert exact.truncated is None and len(exact.rows) == 5


def test_settings_validate_the_environment_and_name_the_variable() -> None:
    with pytest.raises(StartupRefused, match="SQL_SERVER_MAX_ROWS must be a whole number"):
        load_settings([], {"SQL_SERVER_MAX_ROWS": "many"})
    with pytest.raises(StartupRefused, match="SQL_SERVER_STATEMENT_TIMEOUT must be at least"):
        load_settings([], {"SQL_SERVER_STATEMENT_TIMEOUT": "0"})
    with pytest.raises(StartupRefused, match="postgresql:// or sqlite:///"):
        load_settings([], {"SQL_SERVER_DSN": "mysql://x"})
    settings = load_settings(["--enable-writes", "--no-confirm"], {"SQL_SERVER_DSN": "postgresql://u:pw@h:1/db"})
    assert settings.enable_writes and not settings.confirm_writes and settings.backend == "postgresql"
    assert "pw" not in repr(settings) and "pw" not in describe_dsn(settings.dsn)
    defaults = load_settings([], {})
    assert (defaults.statement_timeout_s, defaults.max_rows, defaults.max_result_bytes, defaults.pool_size) == (
        30,
        1000,
        5 * 1024 * 1024,
        5,
    )
