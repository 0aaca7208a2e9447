"""The console entry point: `--version` answers and exits, an unknown flag is refused with usage (exit 2)."""

from __future__ import annotations

import subprocess
import sys

from sql_server import __version__


def test_version_prints_the_package_version_and_exits_0() -> None:
    done = subprocess.run([sys.executable, "-m", "sql_server", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"sql-server {__version__}"


def test_an_unknown_flag_is_refused_with_usage() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sql_server", "--no-such-flag"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "usage: sql-server" in done.stderr and done.stdout == ""
