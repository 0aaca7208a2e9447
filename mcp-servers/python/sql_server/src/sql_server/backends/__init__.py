"""The backends: one module per database engine, chosen by the DSN's scheme."""

from __future__ import annotations

from ..config import Settings
from .base import Backend


def open_backend(settings: Settings) -> Backend:
    """The backend for `settings.dsn` (not started yet: call `await backend.start()`)."""
    if settings.backend == "postgresql":
        from .postgres import PostgresBackend

        return PostgresBackend(settings)
    from .sqlite import SqliteBackend

    return SqliteBackend(settings)
