"""Installed from wheels into a fresh virtualenv, as a user outside this checkout would: the gateway serves with
no config (docking the Harbor server it finds installed), `init` writes a starter config, every CLI has
`--version`, and the sdist holds only the gateway package."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.conftest import ROOT, free_port

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.timeout(600)]  # builds wheels and a venv

EVAL = ROOT / "mcp-servers" / "python" / "mcp_eval_server"


def _run(*argv: str | Path, timeout: float = 600, **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-3000:])
    return done


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the gateway's and the eval server's wheels (pinned by constraints.txt), nothing else."""
    base = tmp_path_factory.mktemp("wheel")
    wheels = base / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run(*pip, "wheel", "--no-deps", "-w", wheels, ROOT, EVAL)
    _run(sys.executable, "-m", "venv", base / "venv")
    python = base / "venv" / "bin" / "python"
    _run(
        python,
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        "-c",
        ROOT / "constraints.txt",
        *sorted(wheels.glob("*.whl")),
    )
    return base


async def test_the_installed_gateway_serves_with_no_config(venv: Path) -> None:
    home, port = venv / "home", free_port()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARBOR_", "VIRTUAL_ENV", "PYTHON"))}
    env["HOME"] = str(home)
    gateway = venv / "venv" / "bin" / "harbor-gateway"
    proc = subprocess.Popen(
        [gateway, "serve", "--port", str(port)], cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz?strict=1", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the installed gateway did not become ready"
            time.sleep(0.2)
        with anyio.fail_after(60):
            async with Client(f"http://127.0.0.1:{port}/mcp", mode="legacy") as client:
                tools = {t.name for t in (await client.list_tools()).tools}
                assert "eval__compute_metrics" in tools and not [t for t in tools if t.startswith("data-analysis")]
                scored = await client.call_tool(
                    "eval__compute_metrics",
                    {"predictions": ["a b c"], "references": [["a b c"]], "metrics": ["exact_match"]},
                )
                assert not scored.is_error
    finally:
        proc.terminate()
        proc.wait(10)


def test_init_writes_a_starter_config_that_serves(venv: Path) -> None:
    bin_dir = venv / "venv" / "bin"
    target = venv / "starter.yaml"
    done = _run(bin_dir / "harbor-gateway", "init", "--path", target, cwd=venv)
    assert "servers: eval" in done.stdout and target.exists()
    text = target.read_text()
    assert "mcp_eval_server" in text and "session_mode: per-identity" in text
    refused = subprocess.run([bin_dir / "harbor-gateway", "init", "--path", target], capture_output=True, text=True)
    assert refused.returncode == 2 and "--force" in refused.stderr
    clients = _run(bin_dir / "harbor-gateway", "clients", "--config", target)
    assert str(bin_dir / "python") in clients.stdout  # absolute commands
    for cli in ("harbor-gateway", "gateway-translate", "mcp-eval-server"):
        assert "0." in _run(bin_dir / cli, "--version").stdout


def test_the_sdist_holds_only_the_gateway_package(tmp_path: Path) -> None:
    _run(sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", tmp_path, cwd=ROOT)
    (archive,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        names = [name.split("/", 1)[1] for name in tar.getnames() if "/" in name]
    outside = {n for n in names if not n.startswith("gateway/")}
    assert outside <= {"PKG-INFO", "pyproject.toml", "README.md", "LICENSE", ".gitignore"}, outside
    assert "gateway/__main__.py" in names and not [n for n in names if n.startswith(("tests", "mcp-servers", "bench"))]
