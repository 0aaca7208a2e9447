"""What layer 1 needs to know about one SQL dialect: its sqlglot name, its placeholders, its function allow-list.

Contract: a backend module declares one `Dialect` (for example `Dialect("postgresql", "postgres", …)`);
`validation` reads nothing else about the backend. Adding DuckDB or MySQL is one backend module with one
`Dialect` in it.

Functions are allowed by an allow-list, never a deny-list: a deny-list cannot see `pg_read_binary_file`
spelled `U&"\\0070g_…"`, schema-qualified, or assembled inside `query_to_xml('…')`. The list holds SQL names;
sqlglot parses many of them into typed nodes (`COUNT` → `exp.Count`), so `allowed_classes` maps each name to
the node class sqlglot gives it in this dialect, by parsing a probe call once. The statement that runs is
the one sqlglot generates from the checked tree, so the check and the execution see the same function.

`CONSTRUCTS` are node classes that sqlglot models as functions but that are syntax (CAST, CASE, EXTRACT,
JSON and array operators, CURRENT_DATE): always allowed, listed in the README.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

# Functions both SQLite and PostgreSQL have under these names; each backend adds its own.
COMMON_FUNCTIONS = frozenset(
    """
    count sum avg min max
    abs coalesce nullif lower upper length replace round trim ltrim rtrim substr substring
    ceil ceiling floor exp ln log log10 mod pi power pow sqrt sign sin cos tan asin acos atan atan2
    degrees radians trunc concat concat_ws octet_length random
    row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value
    """.split()
)

_CONSTRUCT_NAMES = """
    Cast TryCast Extract Case If Coalesce Nullif Interval CurrentDate CurrentTime CurrentTimestamp
    Array Bracket Struct Tuple Distinct
    JSONExtract JSONExtractScalar JSONBExtract JSONBExtractScalar JSONBContains JSONBContainsAnyTopKeys
    JSONBContainsAllTopKeys JSONBDeleteAtPath JSONArrayContains ArrayContains ArrayContainsAll ArrayOverlaps
    RegexpLike RegexpILike Collate AtTimeZone
""".split()
CONSTRUCTS: frozenset[type[exp.Expr]] = frozenset(
    getattr(exp, name) for name in _CONSTRUCT_NAMES if isinstance(getattr(exp, name, None), type)
)


@dataclass(frozen=True)
class Dialect:
    """One backend's SQL dialect as layer 1 sees it (hashable: validations are cached per dialect)."""

    name: str  # the backend's name, used in messages: "postgresql", "sqlite"
    sqlglot: str  # sqlglot's dialect name: "postgres", "sqlite"
    functions: frozenset[str]  # allowed SQL function names, lower case
    positional: Literal["dollar", "question"]  # $1, $2 … (PostgreSQL) or ? (SQLite)
    table_function_prefixes: tuple[str, ...] = ()  # table names that are really functions (SQLite's pragma_*)

    def allowed_classes(self) -> frozenset[type[exp.Expr]]:
        """The typed sqlglot node classes the allowed names parse to in this dialect (Anonymous excluded)."""
        return _allowed_classes(self.sqlglot, self.functions)

    def placeholder(self, number: int) -> exp.Expr:
        """The node the generated SQL binds parameter `number` (1-based) with: `$n` or `:pn`."""
        if self.positional == "dollar":
            return exp.Parameter(this=exp.Literal.number(number))
        return exp.Placeholder(this=f"p{number}")


_PROBE_ARGS = ("", "1", "1, 1", "1, 1, 1", "1, 1, 1, 1")


def _probe(name: str, dialect: str) -> set[type[exp.Expr]]:
    """The classes `name(...)` parses to as a scalar and as a table function, with 0 to 4 arguments.

    Every arity counts, because some names parse to different nodes by arity (`log(x)` and `log(b, x)`).
    """
    found: set[type[exp.Expr]] = set()
    for template in ("SELECT {}({})", "SELECT * FROM {}({})"):
        for args in _PROBE_ARGS:
            try:
                tree = sqlglot.parse_one(template.format(name, args), read=dialect)
            except (ParseError, TokenError, ValueError):
                continue
            found.update(type(node) for node in tree.walk() if isinstance(node, exp.Func))
    return found


@functools.cache
def _allowed_classes(dialect: str, names: frozenset[str]) -> frozenset[type[exp.Expr]]:
    classes: set[type[exp.Expr]] = set()
    for name in sorted(names):
        classes |= _probe(name, dialect)
    classes.discard(exp.Anonymous)
    return frozenset(classes)


def function_name(node: exp.Func, dialect: str) -> str:
    """The name a function node is called by in the generated SQL (for allow-list checks and messages)."""
    if isinstance(node, exp.Anonymous):
        return str(node.name)
    rendered = node.sql(dialect=dialect, comments=False)
    head = rendered.split("(", 1)[0].strip()
    return head if head and head.replace("_", "").isalnum() else node.key.upper()
