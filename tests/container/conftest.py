"""`make container-test`: the images `make container` built, run for real with podman, and deploy/k8s rendered,
validated and played.

Collected only when `HARBOR_CONTAINER_TESTS=1` (set by `make container-test`): plain `make test` has no
images to run, so it does not even import these modules. Every podman call has a timeout; containers and pods
a test starts are removed by the test, also when it fails.

podman runs with runc and explicit rlimits because this host's crun cannot start containers and raising
limits is refused (docs/deploy.md); `--health-cmd` timers need systemd, which is absent here, so podman logs
an error about healthcheck timers and goes on: tests run the check itself with `podman healthcheck run`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

if os.environ.get("HARBOR_CONTAINER_TESTS") != "1":
    collect_ignore_glob = ["test_*.py"]

ROOT = Path(__file__).resolve().parents[2]
SERVERS_DIR = ROOT / "mcp-servers" / "python"
TAG = os.environ.get("IMAGE_TAG", "latest")
PODMAN = ["podman", "--runtime", "runc"]
LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"]
USER_ID = "10001"


def image_name(package_dir: Path) -> str:
    """The naming rule: harbor- + the package folder without a trailing `_server`, `_` → `-`."""
    return "harbor-" + package_dir.name.removesuffix("_server").replace("_", "-")


def image_ref(name: str) -> str:
    return f"localhost/{name}:{TAG}"


def server_packages() -> list[Path]:
    """Every server package (a folder with a pyproject.toml) that ships an image (has a Containerfile)."""
    return sorted(
        path.parent for path in SERVERS_DIR.glob("*/Containerfile") if (path.parent / "pyproject.toml").is_file()
    )


def podman(*args: str, timeout: float = 120, check: bool = True, env: dict[str, str] | None = None) -> str:
    """Run one podman command; its stdout, or a failure that shows stderr."""
    done = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return done.stdout


def inspect_image(name: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(podman("image", "inspect", image_ref(name)))
    return data[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 5, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(base: str, deadline_s: float = 90, logs: Any = None) -> dict[str, Any]:
    """Poll `/readyz?strict=1` (no token: counts only) until every docked server is ready; the body, or a
    failure with the logs."""
    end = time.monotonic() + deadline_s
    last = "no answer"
    while time.monotonic() < end:
        try:
            status, body = http_get(base + "/readyz?strict=1", timeout=2)
            if status == 200:
                ready: dict[str, Any] = json.loads(body)
                return ready
            last = f"{status} {body[:300]!r}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise AssertionError(f"{base} not ready in {deadline_s}s (last: {last})\n{logs() if logs else ''}")


def config_modules(config: Path) -> set[str]:
    """The `-m MODULE` of every enabled server the config docks."""
    servers = yaml.safe_load(config.read_text())["mcpServers"]
    return {s["args"][1] for s in servers.values() if s.get("args", [])[:1] == ["-m"] and s.get("enabled", True)}


class Container:
    """A detached container of ours, removed on exit."""

    def __init__(self, name: str) -> None:
        self.name = name

    def logs(self) -> str:
        done = subprocess.run([*PODMAN, "logs", self.name], capture_output=True, text=True, timeout=30)
        return (done.stdout + done.stderr)[-6000:]

    def exec(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*PODMAN, "exec", self.name, *argv], capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"exec {argv} exited {done.returncode}: {done.stderr}")
        return done

    def remove(self) -> None:
        podman("rm", "--force", "--time", "5", self.name, check=False, timeout=60)


TEST_TOKEN = "container-test-token-" + os.urandom(8).hex()


class Gateway(Container):
    def __init__(self, name: str, port: int) -> None:
        super().__init__(name)
        self.port = port
        self.base = f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    """harbor-gateway detached, read-only root, host network on a free port, with a test token."""
    port = free_port()
    gw = Gateway(f"harbor-gateway-test-{os.getpid()}", port)
    podman(
        "run", "--detach", "--name", gw.name, *LIMITS, "--read-only", "--network", "host",
        "--env", f"HARBOR_TOKEN={TEST_TOKEN}", "--env", f"HARBOR_PORT={port}", image_ref("harbor-gateway"),
    )  # fmt: skip
    try:
        wait_ready(gw.base, logs=gw.logs)
        yield gw
    finally:
        gw.remove()
