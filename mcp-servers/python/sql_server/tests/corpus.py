"""The adversarial corpus: statements `query` must refuse, with what each defence layer must do alone.

Each case names the backends it applies to ("p" PostgreSQL, "s" SQLite, "b" both) and the expected
engine verdict when layer 1 is bypassed and the raw text goes straight to the backend's read path:
- "refused": the read-only transaction / role / authorizer (or the driver's one-statement rule, or the
  statement timeout) raises an error;
- "inert": it runs, but changes nothing and leaves nothing behind (the tests prove it: checksums, the
  pooled connection's settings, advisory locks, files on disk).
`role` marks PostgreSQL cases the least-privilege role refuses on its own, even in a READ WRITE transaction;
`authorizer` marks SQLite cases the authorizer refuses on its own, on a writable connection.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    sql: str
    backends: str  # "p", "s" or "b"
    engine: str = "refused"  # "refused" | "inert"
    role: bool = False  # PostgreSQL: refused by the role's privileges alone
    authorizer: bool = False  # SQLite: refused by the authorizer alone
    note: str = ""

    def applies(self, backend: str) -> bool:
        return self.backends == "b" or self.backends == backend[0]


_INSERT = "INSERT INTO products (id, sku, name, category, price, stock) VALUES (9999, 'S-X', 'x', 'x', 1, 1)"

CORPUS: list[Case] = [
    # stacked statements
    Case("SELECT 1; DELETE FROM orders", "b", note="stacked"),
    Case("SELECT 1;DROP TABLE orders--", "b"),
    Case("SELECT 1; SELECT 2", "b"),
    Case("/* hi */ SELECT 1 ; /* */ DELETE FROM customers", "b"),
    Case("SELECT 1 -- a comment\n; DELETE FROM orders", "b"),
    Case("SELECT 1 WHERE 1 = 1\u200b; DELETE FROM orders", "b", note="zero-width space before the ;"),
    # comment tricks
    Case("/* /* nested */ SELECT 1 */ DELETE FROM orders", "p", role=True, note="PostgreSQL nests block comments"),
    Case("/* x */ DELETE FROM orders", "b", role=True, authorizer=True),
    Case("DELETE/**/FROM orders", "b", role=True, authorizer=True),
    Case("--\nDELETE FROM orders WHERE 1=1", "b", role=True, authorizer=True),
    Case("SELECT 1 /* */ UNION SELECT 2; DELETE FROM orders -- */", "b"),
    # case tricks and plain writes
    Case("dElEtE FROM orders", "b", role=True, authorizer=True),
    Case(_INSERT, "b", role=True, authorizer=True),
    Case(_INSERT.replace("INSERT", "InSeRt"), "b", role=True, authorizer=True),
    Case("UPDATE products SET price = 0", "b", role=True, authorizer=True),
    Case("uPdAtE products SET price = 0 WHERE id = 1", "b", role=True, authorizer=True),
    Case("INSERT INTO orders SELECT * FROM orders", "b", role=True, authorizer=True),
    Case(
        "REPLACE INTO products (id, sku, name, category, price, stock) VALUES (1, 'a', 'b', 'c', 1, 1)",
        "s",
        authorizer=True,
    ),
    Case("INSERT OR IGNORE INTO " + _INSERT.removeprefix("INSERT INTO "), "s", authorizer=True),
    Case("MERGE INTO products p USING orders o ON p.id = o.id WHEN MATCHED THEN DELETE", "p", role=True),
    # data-modifying CTEs
    Case("WITH x AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM x", "p", role=True),
    Case("WITH x AS (UPDATE products SET stock = 0 RETURNING id) SELECT * FROM x", "p", role=True),
    Case("WITH x AS (" + _INSERT + " RETURNING id) SELECT * FROM x", "p", role=True),
    Case("WITH RECURSIVE x AS (DELETE FROM orders RETURNING id) SELECT 1", "p", role=True),
    Case("WITH x AS (SELECT 1) DELETE FROM orders", "b", role=True, authorizer=True),
    # SELECT … INTO
    Case("SELECT * INTO stolen FROM customers", "p", role=True),
    Case("SELECT id INTO TEMP t FROM orders", "p", role=True),
    Case("SELECT id INTO TEMPORARY TABLE t2 FROM orders", "p", role=True),
    # file and server functions (PostgreSQL)
    Case("SELECT pg_read_file('/etc/passwd')", "p", role=True),
    Case("SELECT pg_read_file('/etc/passwd', 0, 100)", "p", role=True),
    Case("SELECT pg_read_binary_file('/etc/passwd')", "p", role=True),
    Case("SELECT pg_catalog.pg_read_file('/etc/passwd')", "p", role=True, note="schema-qualified"),
    Case("SELECT \"pg_read_file\"('/etc/passwd')", "p", role=True, note="quoted name"),
    Case("SELECT U&\"\\0070g_read_file\"('/etc/passwd')", "p", role=True, note="unicode-escaped identifier"),
    Case("SELECT * FROM pg_ls_dir('.')", "p", role=True),
    Case("SELECT pg_stat_file('/etc/passwd')", "p", role=True),
    Case("SELECT query_to_xml('SELECT pg_read_file(''/etc/passwd'')', true, true, '')", "p", role=True),
    Case("SELECT query_to_xml('DELETE FROM orders RETURNING id', true, true, '')", "p", role=True),
    Case("SELECT lo_import('/etc/passwd')", "p", role=True),
    Case("SELECT lo_export(1, '/tmp/harbor-lo')", "p", role=True),
    Case("VALUES (pg_read_file('/etc/passwd'))", "p", role=True),
    Case("SELECT (SELECT pg_read_file('/etc/passwd'))", "p", role=True),
    Case("SELECT pg_read_file(f) FROM (VALUES ('/etc/passwd')) v(f)", "p", role=True),
    Case("SELECT 1 UNION SELECT length(pg_read_file('/etc/passwd'))", "p", role=True),
    Case("SELECT 1 FROM orders o JOIN LATERAL pg_ls_dir('.') d ON true", "p", role=True),
    Case("SELECT current_setting('data_directory')", "p", role=True),
    Case("SELECT inet_server_addr()", "p", role=True, note="the host: revoked by the role script"),
    Case("SELECT inet_server_port()", "p", role=True),
    Case("SELECT pg_terminate_backend(1)", "p", role=True, note="revoked by the role script"),
    Case("SELECT pg_cancel_backend(1)", "p", role=True),
    Case("SELECT pg_reload_conf()", "p", role=True),
    Case("SELECT pg_rotate_logfile()", "p", role=True),
    Case("SELECT pg_switch_wal()", "p", role=True),
    Case("SELECT pg_create_physical_replication_slot('harbor')", "p", role=True),
    Case("SELECT pg_create_logical_replication_slot('harbor', 'pgoutput')", "p", role=True),
    Case("SELECT pg_logical_emit_message(true, 'x', 'y')", "p", role=True),
    Case(
        "SELECT pg_logical_emit_message(false, 'x', 'y')",
        "p",
        role=True,
        note="non-transactional: revoked by the role script",
    ),
    Case("SELECT pg_promote()", "p", role=True),
    Case("SELECT dblink_exec('dbname=shop', 'DELETE FROM orders')", "p", role=True, note="not installed"),
    Case("SELECT * FROM dblink('dbname=shop', 'SELECT 1') AS t(a int)", "p", role=True),
    Case("SELECT nextval('ledger_id_seq')", "p", role=True),
    Case("SELECT setval('ledger_id_seq', 1000)", "p", role=True),
    Case("SELECT set_config('statement_timeout', '0', false)", "p", engine="inert", note="undone by ROLLBACK"),
    Case("SELECT pg_advisory_lock(42)", "p", engine="inert", note="the pool's reset unlocks it"),
    Case("SELECT pg_notify('harbor', 'x')", "p", engine="inert", note="notifications are sent on commit only"),
    Case("SELECT pg_sleep(60)", "p", note="stopped by the statement timeout"),
    Case("SELECT * FROM orders WHERE id = (SELECT pg_sleep(60))::text::int", "p"),
    # COPY
    Case("COPY orders TO PROGRAM 'id'", "p", role=True),
    Case("COPY orders TO '/tmp/harbor-orders.csv'", "p", role=True),
    Case("COPY orders FROM PROGRAM 'id'", "p", role=True),
    Case("COPY orders FROM STDIN", "p", role=True),
    Case("COPY (SELECT * FROM customers) TO STDOUT", "p", engine="inert", note="a read; the driver gets no rows"),
    # DDL and privileges
    Case("CREATE TEMP TABLE t (a int)", "b", role=True, authorizer=True),
    Case("CREATE TABLE t (a int)", "b", role=True, authorizer=True),
    Case("DROP TABLE orders", "b", role=True, authorizer=True),
    Case("ALTER TABLE orders ADD COLUMN x int", "b", role=True, authorizer=True),
    Case("CREATE INDEX i ON orders (status)", "b", role=True, authorizer=True),
    Case("CREATE VIEW v AS SELECT 1", "b", role=True, authorizer=True),
    Case("CREATE TRIGGER t AFTER INSERT ON orders BEGIN DELETE FROM customers; END", "s", authorizer=True),
    Case("CREATE VIRTUAL TABLE v USING fts5(x)", "s", authorizer=True),
    Case("TRUNCATE orders", "p", role=True),
    Case("CREATE EXTENSION dblink", "p", role=True),
    Case("CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql", "p", role=True),
    Case("DO $$ BEGIN DELETE FROM orders; END $$", "p", role=True),
    Case("GRANT SELECT ON orders TO PUBLIC", "p", note="the role alone only gets a warning: no grant option"),
    Case("COMMENT ON TABLE orders IS 'x'", "p", role=True),
    Case("ALTER SYSTEM SET work_mem = '1GB'", "p", role=True),
    Case("REFRESH MATERIALIZED VIEW nothing_here", "p", role=True),
    Case("REINDEX TABLE orders", "p", role=True),
    Case("CLUSTER orders", "p", role=True),
    Case("CHECKPOINT", "p", role=True),
    # sessions, roles, transactions
    Case("SET ROLE harbor_admin", "p", role=True),
    Case("SET SESSION AUTHORIZATION harbor_admin", "p", role=True),
    Case("SET statement_timeout = 0", "p", engine="inert", note="undone by ROLLBACK"),
    Case("SET default_transaction_read_only = off", "p", engine="inert"),
    Case("SET TRANSACTION READ WRITE", "p", engine="inert", note="the transaction ends right after"),
    Case("RESET ROLE", "p", engine="inert"),
    Case("COMMIT", "p", engine="inert"),
    Case("DISCARD ALL", "p"),
    Case("PREPARE harbor_p AS DELETE FROM orders", "p", engine="inert", note="EXECUTE is still read-only"),
    Case("EXECUTE harbor_p", "p"),
    Case("LISTEN harbor", "p", engine="inert"),
    Case("LOCK TABLE orders", "p", role=True),
    Case("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE", "p", role=True),
    Case("BEGIN IMMEDIATE", "s", authorizer=True),
    Case("SAVEPOINT a", "s", authorizer=True),
    # locking clauses
    Case("SELECT * FROM orders FOR UPDATE", "p", role=True),
    Case("SELECT * FROM orders FOR SHARE", "p", role=True),
    Case("SELECT * FROM orders FOR NO KEY UPDATE SKIP LOCKED", "p", role=True),
    # maintenance
    Case("VACUUM", "b"),
    Case("VACUUM FULL orders", "p"),
    Case("VACUUM INTO '/tmp/harbor-stolen.sqlite3'", "s", authorizer=True, note="would write a copy"),
    Case("ANALYZE", "p", engine="inert", note="PostgreSQL skips tables the role does not own"),
    Case("ANALYZE orders", "s", authorizer=True),
    Case("REINDEX", "s", authorizer=True),
    Case("EXPLAIN DELETE FROM orders", "s", authorizer=True),
    Case("EXPLAIN ANALYZE DELETE FROM orders", "p", role=True),
    # SQLite: attach, pragmas, extensions, big values
    Case("ATTACH DATABASE '/tmp/harbor-attached.sqlite3' AS x", "s", authorizer=True),
    Case("ATTACH ':memory:' AS m", "s", authorizer=True),
    Case("DETACH DATABASE main", "s", authorizer=True),
    Case("PRAGMA query_only = OFF", "s", authorizer=True),
    Case("PRAGMA writable_schema = ON", "s", authorizer=True),
    Case("PRAGMA journal_mode = DELETE", "s", authorizer=True),
    Case("SELECT * FROM pragma_query_only", "s", authorizer=True),
    Case("SELECT load_extension('/tmp/evil.so')", "s", authorizer=True),
    Case("SELECT 1 UNION ALL SELECT load_extension('/tmp/evil.so')", "s", authorizer=True),
    Case("SELECT writefile('/tmp/harbor-x', 'y')", "s", authorizer=True),
    Case("SELECT fts3_tokenizer('simple')", "s", authorizer=True),
    Case("SELECT randomblob(2000000000)", "s", authorizer=True),
    Case("SELECT zeroblob(1000000000)", "s", authorizer=True),
    Case("SELECT sqlite_compileoption_get(0)", "s", authorizer=True),
    Case("SELECT printf('%.*c', 2000000000, 'x')", "s", authorizer=True, note="seconds of CPU in one C call"),
    Case("SELECT format('%.*c', 2000000000, 'x')", "s", authorizer=True),
    # unicode homoglyphs
    Case("D\u0395LETE FROM orders", "b", note="Greek capital epsilon"),
    Case("\uff24\uff25\uff2c\uff25\uff34\uff25 FROM orders", "b", note="fullwidth letters"),
    Case("SELECT 1 \uff1b DELETE FROM orders", "b", note="fullwidth semicolon"),
    Case("S\u0415LECT * FROM orders; DELETE FROM orders", "b", note="Cyrillic Ie"),
]

# Accepted by layer 1 on purpose (ordinary functions and syntax) but bounded by layer 3 or the timeouts.
RESOURCE_CASES = {
    "postgresql": [
        ("SELECT generate_series(1, 10000000000)", "rows"),  # streams: the row cap stops it at once
        ("SELECT count(*) FROM generate_series(1, 10000000000)", "timeout"),
        ("SELECT repeat('x', 50000000)", "bytes"),
    ],
    "sqlite": [
        ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c", "rows"),
        ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", "timeout"),
        ("WITH RECURSIVE r(s) AS (SELECT 'x' UNION ALL SELECT s || s FROM r) SELECT length(s) FROM r", "too big"),
    ],
}
