"""Config, naming and policy are pure modules: importing them loads no web framework nor the MCP SDK."""

from __future__ import annotations

import subprocess
import sys

PURE = [
    "gateway.config",
    "gateway.core.naming",
    "gateway.policy",
    "gateway.policy.auth",
    "gateway.policy.views",
    "gateway.policy.ratelimit",
    "gateway.policy.audit",
    "gateway.policy.jwks",
    "gateway.policy.oauth",
]


def test_pure_modules_do_not_load_web_frameworks_or_the_sdk() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in PURE)
        + (
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('starlette', 'uvicorn', 'sse_starlette', 'mcp', 'httpx', 'anyio'))\n"
            "print(','.join(bad))\n"
        )
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
