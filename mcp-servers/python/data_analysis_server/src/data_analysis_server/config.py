"""Runtime settings read once from environment variables.

All limits live here so that the README's configuration table and the code cannot drift apart.
This module only reads the environment; it never touches the network or the file system beyond
resolving the configured root directories.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# sample_data/ sits beside src/ in a checkout; an installed wheel has no such folder.
SAMPLE_DATA_DIR = PACKAGE_DIR.parent.parent / "sample_data"

_TRUE = {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def _default_roots() -> list[Path]:
    """Without DATA_ANALYSIS_ROOTS only the package's sample data is readable — never the working directory,
    which for a server started from `/` (as in a container) would be the whole machine."""
    return [SAMPLE_DATA_DIR] if SAMPLE_DATA_DIR.is_dir() else []


def _env_roots() -> list[Path]:
    raw = os.environ.get("DATA_ANALYSIS_ROOTS", "").strip()
    if not raw:
        return [p.resolve() for p in _default_roots()]
    return [Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip()]


@dataclass(frozen=True)
class Settings:
    """Limits and switches; see README 'Configuration' for the matching environment variables."""

    roots: list[Path] = field(default_factory=_env_roots)
    allow_private_urls: bool = field(
        default_factory=lambda: os.environ.get("DATA_ANALYSIS_ALLOW_PRIVATE_URLS", "").lower() in _TRUE
    )
    max_download_bytes: int = field(default_factory=lambda: _env_int("DATA_ANALYSIS_MAX_DOWNLOAD_BYTES", 500 * 2**20))
    url_timeout_s: float = field(default_factory=lambda: _env_float("DATA_ANALYSIS_URL_TIMEOUT", 30.0))
    max_inline_bytes: int = field(default_factory=lambda: _env_int("DATA_ANALYSIS_MAX_INLINE_BYTES", 20 * 2**20))
    memory_budget_bytes: int = field(default_factory=lambda: _env_int("DATA_ANALYSIS_MEMORY_BUDGET", 2 * 2**30))
    max_rows: int = field(default_factory=lambda: _env_int("DATA_ANALYSIS_MAX_ROWS", 100))
    max_chars: int = field(default_factory=lambda: _env_int("DATA_ANALYSIS_MAX_CHARS", 40_000))
    sql_timeout_s: float = field(default_factory=lambda: _env_float("DATA_ANALYSIS_SQL_TIMEOUT", 30.0))
    sql_memory_limit: str = field(default_factory=lambda: os.environ.get("DATA_ANALYSIS_SQL_MEMORY", "2GB"))
    progress_interval_s: float = field(default_factory=lambda: _env_float("DATA_ANALYSIS_PROGRESS_INTERVAL", 5.0))


def load_settings() -> Settings:
    """Read the environment now; called once at server start and by tests with a patched env."""
    return Settings()
