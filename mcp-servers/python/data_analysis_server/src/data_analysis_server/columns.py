"""Column lookup and coercion shared by the analysis modules.

Every module asks for columns through here so that an unknown column always produces the same
error listing the available columns, and a non-numeric column used as numeric says which it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import ColumnError


def require(frame: pd.DataFrame, names: Iterable[str]) -> list[str]:
    """Return `names` as a list after checking each exists.

    Raises:
        ColumnError: lists the missing names and the available columns.
    """
    names = list(names)
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise ColumnError.missing(missing, frame.columns)
    return names


def numeric(frame: pd.DataFrame, name: str) -> pd.Series:
    """The column as float64 (bools become 0/1).

    Raises:
        ColumnError: unknown column or a non-numeric dtype.
    """
    require(frame, [name])
    col = frame[name]
    if pd.api.types.is_bool_dtype(col):
        return col.astype("float64")
    if not pd.api.types.is_numeric_dtype(col):
        raise ColumnError(
            f"Column {name!r} has dtype {col.dtype}, not numeric; cast it with `transform` or pick a numeric column."
        )
    return col.astype("float64")


def numeric_columns(frame: pd.DataFrame, names: Sequence[str] | None = None) -> list[str]:
    """`names` checked to be numeric, or every numeric (non-bool) column when `names` is None."""
    if names:
        for n in names:
            numeric(frame, n)
        return list(names)
    return [
        str(c)
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]


def finite(values: pd.Series) -> np.ndarray:
    """Values as a float array with NaN/inf removed (tests drop missing values pairwise elsewhere)."""
    arr = values.to_numpy(dtype="float64", na_value=np.nan)
    return arr[np.isfinite(arr)]
