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

    JudgePending (Exception)   not an error: control flow for stateless (2026-07-28) sampling, see judges/sampling.py
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


class JudgePending(Exception):
    """The judge asked the client's model questions that are not answered yet; the call is retried with answers.

    Deliberately not an `EvalError`: it must pass through error handling untouched up to the server, which turns
    it into an "input required" result.
    """
