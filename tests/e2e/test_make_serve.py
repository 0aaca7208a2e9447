"""`make serve GATEWAY_PORT=…`: the README's first command, on another port — what it prints names that port,
and the gateway it starts answers there with every shipped server ready."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.e2e


def test_make_serve_on_another_port_prints_and_serves_that_port() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARBOR_")}
    proc = subprocess.Popen(
        ["make", "-s", "serve", f"GATEWAY_PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # make and the gateway it runs stop together
    )
    try:
        deadline = time.monotonic() + 90
        body: dict[str, object] = {}
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz?strict=1", timeout=1) as resp:
                    body = json.loads(resp.read())
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        assert body.get("status") == "ready", body
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=10)
    urls = [word for line in out.splitlines() for word in line.split() if word.startswith("http://")]
    assert f"http://127.0.0.1:{port}/mcp" in urls, out[-3000:]
    assert urls and all(f":{port}" in url for url in urls), urls  # no URL names another port
    assert f"127.0.0.1:{port}/mcp" in out.split("client config:", 1)[1], out[-3000:]  # the printed entries too
