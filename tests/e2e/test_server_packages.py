"""Each server package's own `make serve-http` / `make test-http`, as its README tells users to run them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.e2e

PACKAGES = {"data_analysis_server": "data-analysis", "mcp_eval_server": "mcp-eval-server", "sql_server": "sql"}


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"make serve-http exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                body: dict[str, object] = json.loads(resp.read())
                return body
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise AssertionError(f"{url} not ready within {timeout} s")


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_make_serve_http_bridges_the_server_and_make_test_http_reaches_it(package: str) -> None:
    folder = ROOT / "mcp-servers" / "python" / package
    port = free_port()
    make = ["make", "--no-print-directory", "-C", str(folder), f"PYTHON={sys.executable}", f"PORT={port}"]
    serving = subprocess.Popen(
        [*make, "serve-http"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        ready = _wait_ready(f"http://127.0.0.1:{port}/readyz", serving)
        assert ready["status"] == "ready"
        checked = subprocess.run([*make, "test-http"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f'"name":"{PACKAGES[package]}"' in checked.stdout  # the server's own initialize result came back
    finally:
        os.killpg(serving.pid, signal.SIGTERM)  # make, translate and the server share this process group
        serving.wait(15)
        _wait_group_gone(serving.pid)


def _wait_group_gone(pgid: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)
    raise AssertionError("translate or the server did not stop within 15 s of SIGTERM")
