"""The one error hierarchy of the domain modules.

Every error is a `ValueError` so callers that only know the standard library still catch it; the server maps
the whole tree to `isError` tool results in one place. Messages say what to change, not only what went wrong.

    EvalError (ValueError)
    ├── InvalidInputError      arguments that cannot be evaluated as given
    ├── DatasetError           a dataset path or record that cannot be read
    ├── RunNotFoundError       an unknown run id
    └── JudgeError
        ├── JudgeUnavailableError  the requested/default judge cannot be used now (lists usable judges)
        └── JudgeFailedError       the judge was called but gave no valid verdict (HTTP, timeout, bad JSON)
"""

from __future__ import annotations


class EvalError(ValueError):
    """Base class of every error the domain modules raise on purpose."""


class InvalidInputError(EvalError):
    """Arguments that cannot be evaluated as given."""


class DatasetError(EvalError):
    """A dataset path or record that cannot be read."""


class RunNotFoundError(EvalError):
    """An unknown run id."""


class JudgeError(EvalError):
    """A judge could not produce a verdict."""


class JudgeUnavailableError(JudgeError):
    """The requested or default judge cannot be used now; the message lists the judges that can."""


class JudgeFailedError(JudgeError):
    """The judge was called but returned no valid verdict after retries and one repair attempt."""
