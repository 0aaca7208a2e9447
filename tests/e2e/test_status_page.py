"""The status page, rendered by a real headless Chromium against a live gateway."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from mcp import Client

from tests.conftest import FIXTURE_SERVER, HubProcess

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CONFIG = f"""
mcpServers:
  everything:
    command: ${{HARBOR_PYTHON}}
    args: ["{FIXTURE_SERVER}"]
  broken:
    command: /nonexistent/server-binary
gateway:
  host: 127.0.0.1
"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Debian's chromium is missing: `make browser` installs it (make test does it for you)")
    return found


def _headless(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=2000",
        *extra,
        url,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=90)


async def test_status_page_shows_servers_calls_and_errors_in_a_real_browser(
    hub: type[HubProcess], tmp_path: Path
) -> None:
    h = hub(CONFIG, strict=False)
    async with Client(h.url + "/mcp", mode="legacy") as client:
        await client.call_tool("everything__echo", {"text": "for the status page"})
        await client.call_tool("everything__test_error_handling", {})
    dom = _headless(h.url + "/", tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert "<h1>Harbor gateway</h1>" in html
    assert 'id="servers"' in html and "everything" in html and "broken" in html
    assert 'class="state ready"' in html
    assert "/nonexistent/server-binary" in html  # the broken server's last error is shown
    assert 'id="calls"' in html and "echo" in html and "tool_error" in html
    shot = tmp_path / "status.png"
    snap = _headless(h.url + "/", tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1200,800")
    assert snap.returncode == 0, snap.stderr[-2000:]
    assert shot.stat().st_size > 5000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
