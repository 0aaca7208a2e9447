"""Output models: each tool's `outputSchema`, and the shape of its `structuredContent`.

Every result carries `warnings` (a list of {code, message}, empty when there are none) — the convention
shared by every Harbor server; the text content starts with one `Warning: <message>` line per warning.
Every list is capped and says so with `total`, `returned` and `truncated`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WithJsonSchema


class WarningOut(BaseModel):
    code: str = Field(description="Stable identifier, e.g. 'truncated_rows'")
    message: str


class ColumnOut(BaseModel):
    name: str
    type: str = Field(description="The database's type name (SQLite: the storage class of the first non-NULL value)")


class Capped(BaseModel):
    total: int | None = Field(description="How many items exist (null when they could not be counted)")
    returned: int = Field(description="How many items this result holds")
    truncated: bool = Field(description="True when returned < total (or total is unknown and a cap was hit)")
    warnings: list[WarningOut]


# Published as a bare array on purpose: an `items` schema per row and per value makes a validating client
# (the SDK's jsonschema check) walk every cell — 0.33 s for 10,000 rows × 10 columns instead of 0.5 ms.
# The server still validates rows as a list of lists.
_ROWS_SCHEMA = {
    "type": "array",
    "description": (
        "Rows, each an array of values in column order. NUMERIC/DECIMAL, dates and times are strings (exact); "
        "binary values base64 strings; NaN/Infinity strings; arrays lists; JSON columns JSON"
    ),
}
Rows = Annotated[list[list[Any]], WithJsonSchema(_ROWS_SCHEMA)]


class RowsOut(Capped):
    columns: list[ColumnOut]
    rows: Rows
    truncated_by: Literal["rows", "bytes"] | None = Field(description="Which cap stopped the result, if any")
    statement: str = Field(description="The statement as executed (generated from the checked syntax tree)")
    elapsed_ms: float


class SchemaOut(BaseModel):
    name: str
    tables: int


class SchemasOut(Capped):
    backend: Literal["postgresql", "sqlite"]
    schemas: list[SchemaOut]


class TableOut(BaseModel):
    schema_: str = Field(alias="schema", serialization_alias="schema")
    name: str
    type: str
    row_estimate: int | None = Field(description="Planner statistics (PostgreSQL) or sqlite_stat1; null if none")


class TablesOut(Capped):
    tables: list[TableOut]


class ColumnInfoOut(BaseModel):
    name: str
    type: str
    nullable: bool
    default: str | None
    primary_key: bool


class ForeignKeyOut(BaseModel):
    columns: list[str]
    references_table: str
    references_columns: list[str]


class IndexOut(BaseModel):
    name: str
    columns: list[str]
    unique: bool


class DescribeOut(Capped):
    schema_: str = Field(alias="schema", serialization_alias="schema")
    name: str
    type: str
    columns: list[ColumnInfoOut]
    primary_key: list[str]
    foreign_keys: list[ForeignKeyOut]
    indexes: list[IndexOut]
    row_estimate: int | None
    row_estimate_exact: bool = Field(description="True when row_estimate is an exact count")


class ExplainOut(BaseModel):
    statement: str
    analyze: bool = Field(description="True when the plan comes from EXPLAIN ANALYZE (the statement was run)")
    plan: Any = Field(description="PostgreSQL: EXPLAIN (FORMAT JSON); SQLite: EXPLAIN QUERY PLAN rows")
    warnings: list[WarningOut]


class WriteOut(BaseModel):
    statement: str
    kind: Literal["insert", "update", "delete", "ddl"]
    affected_rows: int | None = Field(description="Rows the statement changed (null for DDL)")
    estimated_rows: int | None = Field(description="Rows a rolled-back trial run changed, shown to the user")
    confirmation: Literal["user", "not required"] = Field(
        description="'user': confirmed through elicitation; 'not required': the server runs with --no-confirm"
    )
    committed: bool
    columns: list[ColumnOut] = Field(description="RETURNING columns, if any")
    rows: Rows
    returned: int = Field(description="RETURNING rows in this result")
    truncated: bool = Field(description="True when RETURNING rows were cut by SQL_SERVER_MAX_ROWS or the byte cap")
    warnings: list[WarningOut]
