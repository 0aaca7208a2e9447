"""Pydantic models for tool arguments that are records, and for every tool's `outputSchema`.

Contract: argument models describe structured predicates and operations so clients see a precise
JSON schema (and the SDK validates before any code runs). Output models name the fields a client can
rely on and allow extra fields, because results carry test- or kind-specific details. No MCP import.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FilterOp = Literal[
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not_in",
    "between",
    "contains",
    "startswith",
    "endswith",
    "is_null",
    "not_null",
]
AggFunc = Literal["count", "size", "sum", "mean", "median", "min", "max", "std", "var", "nunique", "first", "last"]


class _Strict(BaseModel):
    """Argument records: an unknown key is an error (the schema says additionalProperties: false)."""

    model_config = ConfigDict(extra="forbid")


class Filter(_Strict):
    """One predicate; all filters are combined with AND."""

    column: str
    op: FilterOp
    value: Any = Field(
        None, description="Scalar; a list for in/not_in; [low, high] for between; unused for is_null/not_null"
    )


class Aggregation(_Strict):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    column: str
    func: AggFunc = "count"
    as_: str | None = Field(None, alias="as", description="Output column name (default column_func)")


class Pivot(_Strict):
    index: str
    columns: str
    values: str
    func: AggFunc = "mean"


class SortKey(_Strict):
    column: str
    descending: bool = False


class Operation(_Strict):
    """One transform step; which fields apply depends on `op` (see the tool description)."""

    op: Literal[
        "drop_na",
        "fill_na",
        "dedupe",
        "rename",
        "cast",
        "bin",
        "one_hot",
        "standardize",
        "derive",
        "filter",
        "drop_columns",
        "select_columns",
    ]
    columns: list[str] | None = None
    column: str | None = None
    how: Literal["any", "all"] | None = None
    method: str | None = Field(
        None,
        description=(
            "fill_na: value|mean|median|mode|ffill|bfill; bin: equal_width|quantile; standardize: zscore|minmax"
        ),
    )
    value: Any = None
    mapping: dict[str, str] | None = None
    to: Literal["int", "float", "str", "bool", "category", "datetime"] | None = None
    format: str | None = None
    bins: int | list[float] | None = None
    labels: list[str] | None = None
    new_column: str | None = None
    keep: Literal["first", "last"] | None = None
    drop_first: bool | None = None
    expression: str | None = Field(
        None, description="derive: arithmetic over columns, e.g. 'price * qty' or 'log(col(\"gross income\"))'"
    )
    filters: list[Filter] | None = None


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class WarningOut(BaseModel):
    """One warning: a stable snake_case `code` and a sentence saying what happened and what to do."""

    code: str
    message: str


class _ToolOut(_Open):
    """Every tool result carries `warnings` (empty when none); the text repeats each as 'Warning: …'."""

    warnings: list[WarningOut]


class ColumnInfo(_Open):
    name: str
    dtype: str
    missing: int
    non_null: int


class DatasetOut(_ToolOut):
    dataset_id: str
    table_name: str
    rows: int
    columns: int
    memory_bytes: int
    source: str
    schema_: list[ColumnInfo] = Field(alias="schema")
    preview: list[dict[str, Any]]


class DatasetListOut(_ToolOut):
    datasets: list[dict[str, Any]]
    total_bytes: int
    budget_bytes: int


class TableBody(_Open):
    columns: list[str]
    rows: list[dict[str, Any]]
    total_rows: int
    returned_rows: int
    truncated: bool


class TableOut(TableBody, _ToolOut):
    """A capped table as a tool result."""


class ProfileOut(_ToolOut):
    dataset_id: str
    rows: int
    columns: list[dict[str, Any]]


class CorrelationOut(_ToolOut):
    dataset_id: str
    method: str
    columns: list[str]
    r: dict[str, dict[str, float | None]]
    p_value: dict[str, dict[str, float | None]]
    n: dict[str, dict[str, int]]


class HypothesisOut(_ToolOut):
    test: str
    statistic: float | None
    p_value: float | None
    df: Any = None
    n: Any = None
    effect_size: dict[str, Any] | None = None
    interpretation: str


class RegressionOut(_ToolOut):
    kind: str
    y: str
    x: list[str]
    n: int
    coefficients: list[dict[str, Any]]


class TimeSeriesOut(_ToolOut):
    operation: str
    table: TableBody | None = None
    summary: dict[str, Any] | None = None


class PlotOut(_ToolOut):
    kind: str
    caption: str
    rows: int
    bytes: int


class DropOut(_ToolOut):
    dataset_id: str
    dropped: bool
