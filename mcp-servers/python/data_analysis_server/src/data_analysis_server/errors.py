"""Domain errors: the one hierarchy every module raises and `server.py` maps to tool errors.

Every error is a `ValueError` subclass whose message tells the caller (usually a model) what to
fix: the valid column names, the allowed operators, the configured roots. Messages never carry
stack traces or the text of internal exceptions that could leak server paths.

    AnalysisError (ValueError)
    ├── DatasetNotFoundError      unknown or evicted dataset id
    ├── ColumnError               unknown column, or a column of the wrong type
    ├── InvalidArgumentError      a bad combination or value of arguments
    ├── AccessDeniedError         path outside the roots, private URL, non-http scheme
    ├── LimitExceededError        size/time caps (download size, inline data, SQL time limit)
    └── DataFormatError           the bytes could not be parsed in the stated/inferred format
"""

from __future__ import annotations

from collections.abc import Iterable


class AnalysisError(ValueError):
    """Base class: an anticipated failure whose message is safe and useful to show the caller."""


class DatasetNotFoundError(AnalysisError):
    """The dataset id is unknown or was evicted from memory."""


class ColumnError(AnalysisError):
    """A column is missing or has a type the operation cannot use."""

    @classmethod
    def missing(cls, names: Iterable[str], available: Iterable[object]) -> ColumnError:
        """Build the standard 'unknown column' error listing what exists, so the caller can retry."""
        listed = ", ".join(repr(str(c)) for c in list(available)[:60])
        return cls(f"Unknown column(s) {', '.join(repr(n) for n in names)}. Available columns: {listed}")


class InvalidArgumentError(AnalysisError):
    """Arguments are individually valid but cannot be used together, or a value is out of range."""


class AccessDeniedError(AnalysisError):
    """A file path or URL is outside what the server is configured to read."""


class LimitExceededError(AnalysisError):
    """A configured size or time limit was reached."""


class DataFormatError(AnalysisError):
    """The input could not be parsed in the requested or inferred format."""
