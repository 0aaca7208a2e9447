"""The data path reads top-down: nothing below the transports imports a web framework."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gateway

BELOW_TRANSPORTS = ("core", "session", "upstream", "connect", "cluster")  # whole subpackages
ALSO = ["gateway", "gateway.translate.manager", "gateway.hub.docked", "gateway.hub.aggregate", "gateway.hub.merged"]


def _modules() -> list[str]:
    root = Path(gateway.__file__).parent
    found = [
        "gateway." + ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        for package in BELOW_TRANSPORTS
        for path in sorted((root / package).rglob("*.py"))
        if path.name != "__main__.py"
    ]
    return found + ALSO


CORE = _modules()


def test_the_layers_are_where_the_folders_say() -> None:
    assert "gateway.session.router" in CORE and "gateway.core.jsonrpc" in CORE and "gateway.upstream.child" in CORE


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
