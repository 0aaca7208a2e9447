"""Layer 1 as a pure function: what it accepts, what it generates, how it reports, how params bind."""

from __future__ import annotations

import re

import pytest

from conftest import PACKAGE_DIR
from sql_server.backends.postgres import DIALECT as POSTGRES
from sql_server.backends.sqlite import DIALECT as SQLITE
from sql_server.errors import InvalidArguments, RejectedStatement, SqlSyntaxError, WriteRefused
from sql_server.validation import validate_read
from sql_server.writes import validate_write

ANALYTIC = [
    "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = $1",
    "SELECT status, count(*) AS n, avg(total) FROM orders GROUP BY status HAVING count(*) > 10 ORDER BY n DESC LIMIT 5",
    "WITH t AS (SELECT customer_id, sum(total) s FROM orders GROUP BY 1) SELECT * FROM t WHERE s > :min",
    "SELECT id, row_number() OVER (PARTITION BY customer_id ORDER BY ordered_at) FROM orders",
    "SELECT date_trunc('month', ordered_at) m, count(*) FROM orders GROUP BY 1",
    "SELECT extract(year FROM ordered_at), ordered_at::date, CAST(total AS int) FROM orders",
    "SELECT * FROM generate_series(1, 10) g",
    "SELECT CASE WHEN total > 10 THEN 'big' ELSE 'small' END, coalesce(id, 0), nullif(id, 0) FROM orders",
    "SELECT 1 UNION ALL SELECT 2 EXCEPT SELECT 3",
    "VALUES (1, 'a'), (2, 'b')",
    "SELECT count(*) FILTER (WHERE total > 1) FROM orders",
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total) FROM orders",
    "SELECT DISTINCT ON (status) status, id FROM orders ORDER BY status, id",
    "SELECT '{\"a\": 1}'::jsonb ->> 'a', ARRAY[1, 2][1], 'a' || 'b'",
    "SELECT * FROM orders o LEFT JOIN customers c ON c.id = o.customer_id CROSS JOIN LATERAL (SELECT 1) x",
    "SELECT now(), current_date, interval '1 day'",
    "SELECT id FROM orders WHERE id = ANY($1)",
    "SELECT id FROM orders FETCH FIRST 3 ROWS ONLY",
    "SELECT id FROM orders WHERE status IN (SELECT status FROM orders WHERE total > 100) AND id BETWEEN 1 AND 9",
]
SQLITE_ANALYTIC = [
    "SELECT json_extract('{\"a\": 1}', '$.a'), '{\"b\": 2}' ->> '$.b', iif(1, 2, 3), group_concat(status) FROM orders",
    "SELECT strftime('%Y', ordered_at), date('now') FROM orders WHERE id = ?",
    "SELECT * FROM json_each('[1, 2]')",
    "SELECT name FROM customers WHERE name LIKE 'A%' AND email GLOB '*x*'",
    "SELECT * FROM pragma_table_info('orders')",
]


@pytest.mark.parametrize("sql", ANALYTIC)
def test_ordinary_analytic_postgres_queries_pass_layer1(sql: str) -> None:
    statement = validate_read(sql, POSTGRES)
    assert statement.kind == "select" and statement.sql


@pytest.mark.parametrize("sql", SQLITE_ANALYTIC)
def test_ordinary_sqlite_queries_pass_layer1(sql: str) -> None:
    assert validate_read(sql, SQLITE).sql


def test_the_statement_that_runs_is_regenerated_without_comments() -> None:
    statement = validate_read("SELECT 1 -- */ pg_sleep(10)\n, 2 /* note */", POSTGRES)
    assert statement.sql == "SELECT 1, 2"


@pytest.mark.parametrize(
    ("sql", "where"),
    [
        ("SELECT * FROM orders WHERE", "line 1, column 22 near 'WHERE'"),
        ("SELECT id,\n  status\nFROM orders WHERE id = = 1", "line 3, column 24 near '='"),
        ("SELECT 'unterminated", "unterminated string starting at line 1, column 8"),
    ],
)
def test_a_syntax_error_says_where_in_the_callers_own_sql(sql: str, where: str) -> None:
    with pytest.raises(SqlSyntaxError) as error:
        validate_read(sql, POSTGRES)
    assert where in str(error.value) and "sqlglot" not in str(error.value)


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        (
            "WITH x AS (DELETE FROM orders RETURNING *) SELECT * FROM x",
            "data-modifying CTE is not allowed in query; use execute_write (the statement has DELETE inside WITH)",
        ),
        ("SELECT * INTO t FROM orders", "SELECT … INTO is not allowed"),
        ("SELECT * FROM orders FOR UPDATE", "FOR UPDATE is not allowed"),
        ("SELECT * FROM orders FOR SHARE", "FOR SHARE is not allowed"),
        ("SELECT 1; SELECT 2", "2 statements were given"),
        ("SELECT pg_read_file('/etc/passwd')", "function pg_read_file() is not on the postgresql allow-list"),
        ("SELECT pg_catalog.lower('x')", "schema-qualified function call"),
        ("SELECT lowr(status) FROM orders", "did you mean lower()?"),
        ("EXPLAIN SELECT 1", "use the explain tool"),
        ("DELETE FROM orders", "DELETE is not allowed in query"),
        ("SET ROLE x", "SET is not allowed in query"),
        ("", "the statement is empty"),
        ("SELECT $1, :a", "mixes positional and named placeholders"),
        ("SELECT ?", "postgresql statements use $1, $2 … or :name"),
    ],
)
def test_a_rejected_construct_is_named(sql: str, named: str) -> None:
    with pytest.raises((RejectedStatement, SqlSyntaxError)) as error:
        validate_read(sql, POSTGRES)
    assert named in str(error.value)


def test_a_statement_too_long_or_too_deep_is_refused_not_crashed() -> None:
    with pytest.raises(RejectedStatement, match="characters long"):
        validate_read("SELECT " + "1 + " * 30_000 + "1", POSTGRES)
    with pytest.raises((RejectedStatement, SqlSyntaxError)):
        validate_read("SELECT " + "(" * 5000 + "1" + ")" * 5000, POSTGRES)


def test_sqlite_positional_placeholders_keep_their_textual_order_when_the_generator_reorders() -> None:
    """LIMIT a, b is regenerated as LIMIT b OFFSET a: the values must follow their placeholders."""
    statement = validate_read("SELECT id FROM orders WHERE status = ? LIMIT ?, ?", SQLITE)
    assert statement.sql == "SELECT id FROM orders WHERE status = :p3 LIMIT :p1 OFFSET :p2"
    assert statement.bind(["paid", 10, 5]) == [5, 10, "paid"]  # p1 = count, p2 = offset, p3 = status


def test_named_and_positional_params_bind_and_errors_name_what_to_fix() -> None:
    named = validate_read("SELECT * FROM orders WHERE status = :status AND total > :min OR status = :status", POSTGRES)
    assert named.sql.count("$1") == 2 and named.bind({"status": "paid", "min": 3}) == ["paid", 3]
    with pytest.raises(InvalidArguments, match="missing 'min'"):
        named.bind({"status": "paid"})
    with pytest.raises(InvalidArguments, match="did you mean 'status'"):
        named.bind({"status": "paid", "min": 1, "statsu": 2})
    with pytest.raises(InvalidArguments, match="as an object"):
        named.bind(["paid", 1])
    positional = validate_read("SELECT * FROM orders WHERE id = $2 OR id = $1", POSTGRES)
    assert positional.bind([10, 20]) == [20, 10]
    with pytest.raises(InvalidArguments, match="2 positional placeholder"):
        positional.bind([1])
    with pytest.raises(InvalidArguments, match="never used"):
        validate_read("SELECT $2", POSTGRES).bind([1, 2])
    with pytest.raises(InvalidArguments, match="no placeholders"):
        validate_read("SELECT 1", POSTGRES).bind([1])


def test_writes_layer1_rules() -> None:
    assert (
        validate_write(
            "UPDATE ledger SET qty = 1 WHERE id = $1", POSTGRES, allow_full_table=False, allow_ddl=False
        ).kind
        == "update"
    )
    for sql in ("DELETE FROM ledger", "UPDATE ledger SET qty = 0", "DELETE FROM ledger WHERE 1 = 1"):
        with pytest.raises(WriteRefused, match="allow_full_table=true"):
            validate_write(sql, POSTGRES, allow_full_table=False, allow_ddl=False)
        assert validate_write(sql, POSTGRES, allow_full_table=True, allow_ddl=False).kind in ("delete", "update")
    with pytest.raises(WriteRefused, match="allow_ddl"):
        validate_write("CREATE TABLE t (a int)", POSTGRES, allow_full_table=False, allow_ddl=False)
    assert validate_write("CREATE TABLE t (a int)", POSTGRES, allow_full_table=False, allow_ddl=True).kind == "ddl"
    with pytest.raises(RejectedStatement, match="only TABLE, INDEX and VIEW"):
        validate_write(
            "CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql",
            POSTGRES,
            allow_full_table=False,
            allow_ddl=True,
        )
    with pytest.raises(RejectedStatement, match="a second write"):
        validate_write("WITH d AS (DELETE FROM ledger WHERE id = 1 RETURNING *) INSERT INTO ledger SELECT * FROM d", POSTGRES,
                       allow_full_table=False, allow_ddl=False)  # fmt: skip
    with pytest.raises(RejectedStatement, match="pg_read_file"):
        validate_write("INSERT INTO ledger (item, qty) VALUES (pg_read_file('/etc/passwd'), 1)", POSTGRES,
                       allow_full_table=False, allow_ddl=False)  # fmt: skip
    with pytest.raises(RejectedStatement, match="use query"):
        validate_write("SELECT 1", POSTGRES, allow_full_table=False, allow_ddl=False)
    with pytest.raises(RejectedStatement, match="COPY is not allowed"):
        validate_write("COPY ledger FROM STDIN", POSTGRES, allow_full_table=True, allow_ddl=True)


def _readme_functions(backend: str) -> set[str]:
    text = (PACKAGE_DIR / "README.md").read_text()
    section = re.search(rf"<!-- functions:{backend} -->(.*?)<!-- /functions -->", text, re.DOTALL)
    assert section, f"README lacks the {backend} function list"
    return set(re.findall(r"`([a-z0-9_]+)`", section.group(1)))


@pytest.mark.parametrize(("backend", "dialect"), [("postgresql", POSTGRES), ("sqlite", SQLITE)])
def test_the_readme_documents_exactly_the_function_allow_lists(backend: str, dialect: object) -> None:
    assert _readme_functions(backend) == set(dialect.functions)  # type: ignore[attr-defined]


def test_the_readme_gives_the_role_script_statement_for_statement() -> None:
    script = (PACKAGE_DIR / "src" / "sql_server" / "postgres_role.sql").read_text()
    statements = [" ".join(s.split()) for s in re.sub(r"--[^\n]*", "", script).split(";") if s.strip()]
    readme = " ".join((PACKAGE_DIR / "README.md").read_text().split())
    assert len(statements) == 15 and all(s + ";" in readme for s in statements)
