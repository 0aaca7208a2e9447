"""The data path reads top-down: nothing below the transports imports a web framework."""

from __future__ import annotations

import subprocess
import sys

CORE = [
    "gateway",
    "gateway.errors",
    "gateway.jsonrpc",
    "gateway.framing",
    "gateway.session",
    "gateway.child",
    "gateway.router",
    "gateway.sessions",
    "gateway.upstream.base",
    "gateway.upstream.stdio",
]


def test_core_modules_do_not_load_starlette_or_uvicorn() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in CORE)
        + (
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'sse_starlette', 'mcp'))\n"
            "print(','.join(bad))\n"
        )
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
