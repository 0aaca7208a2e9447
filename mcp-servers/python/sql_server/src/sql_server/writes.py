"""Layer 1 for execute_write: one INSERT, UPDATE or DELETE (or, when allowed, one plain DDL statement).

Contract: `validate_write(sql, dialect, allow_full_table, allow_ddl)` returns a `Statement` of kind
insert / update / delete / ddl, or raises `SqlSyntaxError`, `RejectedStatement` or `WriteRefused`, each
naming what to change. The rules: exactly one statement; no second write inside it (a data-modifying CTE);
no `SELECT … INTO`; every function on the dialect's allow-list (the same one reads use); an UPDATE or
DELETE without a WHERE clause, or whose WHERE references no column (`WHERE 1=1`), is refused unless
`allow_full_table`; TRUNCATE counts as a full-table DDL statement; DDL is refused unless `allow_ddl`, and
then only CREATE / ALTER / DROP of a TABLE, INDEX or VIEW. MERGE, COPY, GRANT, and every command sqlglot
does not model are refused.

Like reads, the SQL that runs is generated from the checked tree. Nothing here touches a database.
"""

from __future__ import annotations

from sqlglot import exp

from .dialect import Dialect
from .errors import RejectedStatement, WriteRefused
from .validation import READ_NODES, Statement, check_nodes, finish, parse_one

_WRITE_NODE_NAMES = """
    Insert Update Delete Returning OnConflict Schema PrimaryKey ColumnDef ColumnConstraint
    NotNullColumnConstraint DefaultColumnConstraint PrimaryKeyColumnConstraint UniqueColumnConstraint
    CheckColumnConstraint Reference ForeignKey Create Drop Alter AlterColumn AddConstraint RenameColumn
    AlterRename Constraint IndexParameters Index IndexColumnConstraint Properties TemporaryProperty
    TruncateTable Set SetItem Using Cascade
""".split()
WRITE_NODES: frozenset[type[exp.Expr]] = READ_NODES | frozenset(
    getattr(exp, name) for name in _WRITE_NODE_NAMES if isinstance(getattr(exp, name, None), type)
)
_DDL_KINDS = frozenset({"TABLE", "INDEX", "VIEW"})


def validate_write(sql: str, dialect: Dialect, *, allow_full_table: bool, allow_ddl: bool) -> Statement:
    """Layer 1 for execute_write (see the module docstring).

    Raises:
        SqlSyntaxError: the statement does not parse.
        RejectedStatement: not one write, or a construct or function that is not allowed.
        WriteRefused: a full-table UPDATE/DELETE without allow_full_table, or DDL without allow_ddl.
    """
    tree = parse_one(sql, dialect, "execute_write")
    if isinstance(tree, exp.Insert | exp.Update | exp.Delete):
        return _dml(tree, dialect, allow_full_table)
    if isinstance(tree, exp.Create | exp.Drop | exp.Alter | exp.TruncateTable):
        return _ddl(tree, dialect, allow_full_table=allow_full_table, allow_ddl=allow_ddl)
    if isinstance(tree, exp.Query):
        raise RejectedStatement("execute_write runs INSERT, UPDATE or DELETE; use query for a read")
    keyword = str(tree.this).upper() if isinstance(tree, exp.Command) else type(tree).__name__.upper()
    raise RejectedStatement(
        f"{keyword} is not allowed in execute_write: only INSERT, UPDATE, DELETE (and DDL when allowed)"
    )


def _dml(tree: exp.Insert | exp.Update | exp.Delete, dialect: Dialect, allow_full_table: bool) -> Statement:
    check_nodes(tree, dialect, "execute_write", allowed=WRITE_NODES)
    kind = type(tree).__name__.lower()
    table = _target(tree)
    if not isinstance(tree, exp.Insert):
        where = tree.args.get("where")
        if not allow_full_table and (where is None or not any(where.find_all(exp.Column))):
            clause = "without a WHERE clause" if where is None else "with a WHERE clause that names no column"
            raise WriteRefused(
                f"{kind.upper()} {clause} changes every row of {table}; add a WHERE clause, or pass "
                "allow_full_table=true if that is intended"
            )
    return finish(tree, dialect, kind, table)


def _ddl(tree: exp.Expr, dialect: Dialect, *, allow_full_table: bool, allow_ddl: bool) -> Statement:
    if not allow_ddl:
        raise WriteRefused(
            "DDL is not allowed unless the call passes allow_ddl=true (and the server runs with --allow-ddl)"
        )
    kind = str(tree.args.get("kind") or "TABLE").upper()
    if isinstance(tree, exp.TruncateTable):
        if not allow_full_table:
            raise WriteRefused("TRUNCATE removes every row; pass allow_full_table=true as well if that is intended")
    elif kind not in _DDL_KINDS:
        raise RejectedStatement(f"CREATE/ALTER/DROP {kind} is not allowed in execute_write: only TABLE, INDEX and VIEW")
    if isinstance(tree, exp.Create) and tree.args.get("properties") is not None:
        for prop in tree.args["properties"].expressions:
            if not isinstance(prop, exp.TemporaryProperty):
                raise RejectedStatement(f"the table property {prop.sql(dialect=dialect.sqlglot)!r} is not allowed")
    check_nodes(tree, dialect, "execute_write", allowed=WRITE_NODES)
    return finish(tree, dialect, "ddl", _target(tree))


def _target(tree: exp.Expr) -> str:
    table = tree.find(exp.Table)
    return table.sql() if table is not None else "the table"
