"""Settings: the database and the limits from the environment, the elevations from the command line.

Contract: `load_settings(argv, environ)` returns a frozen `Settings` or raises `StartupRefused` naming the
variable or flag that is wrong. The database is chosen by `SQL_SERVER_DSN` only (`postgresql://…` or
`sqlite:///path.db`; unset = the generated sample), never by a tool argument or a command-line flag, so it
does not show up in a process list. Every elevation (`--enable-writes`, `--allow-ddl`, `--no-confirm`,
`--allow-superuser`) is an explicit flag in the server's command, where a reviewer sees it.

The DSN is kept out of `repr` and is never logged: `describe_dsn` gives the loggable part (no password).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from . import __version__
from .errors import StartupRefused

MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Everything one server process needs; the defaults are the documented ones."""

    dsn: str | None = field(default=None, repr=False)  # None = the generated sample database
    statement_timeout_s: float = 30.0
    max_rows: int = 1000
    max_result_bytes: int = 5 * MIB
    pool_size: int = 5
    connect_timeout_s: float = 5.0
    count_timeout_s: float = 2.0
    explain_analyze: bool = False
    sample_dir: Path | None = None  # where the sample is generated; None = the first writable cache folder
    enable_writes: bool = False
    confirm_writes: bool = True
    allow_ddl: bool = False
    allow_superuser: bool = False

    @property
    def backend(self) -> str:
        """`postgresql` or `sqlite`, from the DSN's scheme (the sample is SQLite)."""
        return dsn_scheme(self.dsn) if self.dsn else "sqlite"


def dsn_scheme(dsn: str) -> str:
    """The backend a DSN selects.

    Raises:
        StartupRefused: the scheme is neither postgresql:// (postgres://) nor sqlite:///.
    """
    scheme = dsn.split(":", 1)[0].lower() if ":" in dsn else ""
    if scheme in ("postgresql", "postgres"):
        return "postgresql"
    if scheme == "sqlite":
        if not dsn.lower().startswith("sqlite:///"):
            raise StartupRefused(
                "SQL_SERVER_DSN: a SQLite DSN is sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )
        return "sqlite"
    raise StartupRefused("SQL_SERVER_DSN must start with postgresql:// or sqlite:/// (nothing else is supported)")


def sqlite_path(dsn: str) -> Path:
    """The file a sqlite:/// DSN names (`sqlite:////abs.db` is absolute, `sqlite:///rel.db` relative)."""
    return Path(dsn[len("sqlite:///") :].split("?", 1)[0])


def describe_dsn(dsn: str | None) -> str:
    """What may be logged about a DSN: backend, host, port, database and user, never the password."""
    if not dsn:
        return "the generated SQLite sample"
    if dsn_scheme(dsn) == "sqlite":
        return f"SQLite file {sqlite_path(dsn)}"
    parts = urlsplit(dsn)
    database = parts.path.lstrip("/") or "(default)"
    where = f"{parts.hostname or 'local socket'}:{parts.port or 5432}"
    return f"PostgreSQL database {database!r} on {where} as {parts.username}"


def sample_dirs(environ: Mapping[str, str]) -> list[Path]:
    """Where the sample database may be generated, in order: a writable cache, never the (maybe read-only)
    package folder. `SQL_SERVER_SAMPLE_DIR` alone when set; else $XDG_CACHE_HOME, ~/.cache, the temp folder."""
    if environ.get("SQL_SERVER_SAMPLE_DIR"):
        return [Path(environ["SQL_SERVER_SAMPLE_DIR"]).expanduser()]
    roots = [
        environ.get("XDG_CACHE_HOME", ""),
        str(Path(environ.get("HOME") or Path.home()) / ".cache"),
        tempfile.gettempdir(),
    ]
    return [Path(root) / "harbor-sql-server" for root in roots if root]


def _number(environ: Mapping[str, str], name: str, default: float, minimum: float, integer: bool = False) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise StartupRefused(f"{name} must be {kind} (got {raw!r})") from None
    if value < minimum:
        raise StartupRefused(f"{name} must be at least {minimum:g} (got {raw})")
    return value


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command-line flags: elevations only (the database and limits come from the environment)."""
    parser = argparse.ArgumentParser(prog="sql-server", description="SQL MCP server over stdio.")
    parser.add_argument("--enable-writes", action="store_true", help="publish a working execute_write tool")
    parser.add_argument("--allow-ddl", action="store_true", help="execute_write may run DDL when a call asks")
    parser.add_argument(
        "--no-confirm", action="store_true", help="execute_write runs without asking the user (automation only)"
    )
    parser.add_argument(
        "--allow-superuser", action="store_true", help="UNSAFE: accept a superuser or file/program-privileged role"
    )
    parser.add_argument("--build-sample", metavar="PATH", help="write the sample SQLite database to PATH and exit")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser.parse_args(list(argv))


def load_settings(argv: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment and the flags.

    Raises:
        StartupRefused: a variable is malformed or out of range; the message names it.
    """
    env = os.environ if environ is None else environ
    args = parse_args(argv)
    dsn = env.get("SQL_SERVER_DSN", "").strip() or None
    if dsn:
        dsn_scheme(dsn)
    return Settings(
        dsn=dsn,
        statement_timeout_s=_number(env, "SQL_SERVER_STATEMENT_TIMEOUT", 30.0, 0.1),
        max_rows=int(_number(env, "SQL_SERVER_MAX_ROWS", 1000, 1, integer=True)),
        max_result_bytes=int(_number(env, "SQL_SERVER_MAX_RESULT_BYTES", 5 * MIB, 1024, integer=True)),
        pool_size=int(_number(env, "SQL_SERVER_POOL_SIZE", 5, 1, integer=True)),
        connect_timeout_s=_number(env, "SQL_SERVER_CONNECT_TIMEOUT", 5.0, 0.1),
        count_timeout_s=_number(env, "SQL_SERVER_COUNT_TIMEOUT", 2.0, 0),
        explain_analyze=_flag(env, "SQL_SERVER_EXPLAIN_ANALYZE"),
        sample_dir=Path(env["SQL_SERVER_SAMPLE_DIR"]).expanduser() if env.get("SQL_SERVER_SAMPLE_DIR") else None,
        enable_writes=args.enable_writes,
        confirm_writes=not args.no_confirm,
        allow_ddl=args.allow_ddl,
        allow_superuser=args.allow_superuser,
    )
