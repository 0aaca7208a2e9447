"""`make new-server`: a server generated into a temp copy of the repo tests, lints, docks, serves and updates.

The copy is the working tree (what `git ls-files` lists, uncommitted changes included) in a fresh git
repository, with the root virtualenv linked in (the root `make install` is not under test here). The generated
package bootstraps its own `.venv` from `constraints.txt` as on a fresh clone. The gateway then runs on the
copy's own `config/harbor.yaml`, with a `HARBOR_PYTHON` that puts the new package's `src` on the path in
place of the editable install the root `make install` does on a real checkout. Never generates inside this repo: the root `make test` runs every server package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import anyio
import mcp.types as types
import pytest
import yaml
from mcp import Client

from tests.conftest import ROOT, ServerProcess, free_port

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

GIT = ["git", "-c", "user.name=harbor-test", "-c", "user.email=test@harbor.invalid", "-c", "init.defaultBranch=main"]


def _copy_of_the_repo(destination: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True, timeout=30,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    (destination / ".venv").symlink_to(ROOT / ".venv")
    _git(destination, "init", "-q")
    (destination / ".git" / "info" / "exclude").write_text(".venv\n")
    _git(destination, "add", "-A")
    _git(destination, "commit", "-qm", "copy")
    return destination


def _git(where: Path, *args: str) -> None:
    subprocess.run([*GIT, *args], cwd=where, check=True, timeout=60, capture_output=True)


def _run(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS", "PYTEST", "VIRTUAL_ENV"))}
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


class _Gateway(ServerProcess):
    name = "gateway"

    def __init__(self, repo: Path, package_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = repo / "config" / "harbor.yaml"
        argv = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(self.port)]
        # What the root `make install` would do (install the new package editable into the root venv), done
        # without touching the shared venv: HARBOR_PYTHON runs the root Python with the package's src on the
        # path (children get a clean environment, so a PYTHONPATH of the gateway's own would not reach them).
        python = repo / "python-with-new-server"
        python.write_text(f'#!/bin/sh\nPYTHONPATH="{package_dir / "src"}" exec "{sys.executable}" "$@"\n')
        python.chmod(0o755)
        env = {"HARBOR_PYTHON": str(python)}
        self._launch_in(argv, repo, env)
        self.wait_ready("/readyz?strict=1", timeout=90)

    def _launch_in(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.stderr_path = cwd / "gateway.log"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=self._stderr, env={**os.environ, **env}
        )


@pytest.mark.timeout(600)
async def test_a_generated_server_passes_its_tests_and_lint_and_the_gateway_serves_it_once_docked(
    tmp_path: Path,
) -> None:
    repo = _copy_of_the_repo(tmp_path / "repo")
    made = _run(["make", "new-server", "NAME=weather_server", "TITLE=Weather", "HTTP_PORT=9123", "DOCK=1"], repo, 180)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    package = repo / "mcp-servers" / "python" / "weather_server"
    answers = yaml.safe_load((package / ".copier-answers.yml").read_text())
    assert answers["package"] == "weather_server" and answers["slug"] == "weather" and answers["http_port"] == 9123
    assert answers["_commit"] and answers["_src_path"] == "../../.."  # versioned: `copier update` can work
    for path in ("pyproject.toml", "Makefile", "Containerfile", "README.md", "src/weather_server/server.py"):
        assert (package / path).is_file(), path
    assert "include ../bootstrap.mk" in (package / "Makefile").read_text()
    docked = yaml.safe_load((repo / "config" / "harbor.yaml").read_text())["mcpServers"]["weather"]
    assert docked == {"command": "${HARBOR_PYTHON}", "args": ["-m", "weather_server"]}

    again = _run(["make", "new-server", "NAME=weather_server"], repo, 60)
    assert again.returncode == 2 and "already exists" in again.stderr

    checked = _run(["make", "test", "lint"], package, 400)  # its own .venv, bootstrapped as on a fresh clone
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-2000:]
    assert "10 passed" in checked.stdout and "Success: no issues found" in checked.stdout

    gateway = _Gateway(repo, package)
    try:
        with anyio.fail_after(60):
            async with Client(gateway.url + "/mcp", mode="legacy") as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert "weather__summarize_numbers" in names and "data-analysis__load_dataset" in names
                result = await client.call_tool("weather__summarize_numbers", {"values": [1, 2, 3, 4]})
                assert not result.is_error and result.structured_content is not None
                assert result.structured_content["mean"] == 2.5 and result.structured_content["warnings"] == []
                strict = await client.call_tool("weather__summarize_numbers", {"value": [1]})
                assert strict.is_error
                block = strict.content[0]
                assert isinstance(block, types.TextContent) and "did you mean 'values'" in block.text
    finally:
        gateway.stop()


@pytest.mark.timeout(300)
def test_copier_update_brings_template_changes_into_a_generated_server(tmp_path: Path) -> None:
    repo = _copy_of_the_repo(tmp_path / "repo")
    made = _run(["make", "new-server", "NAME=rain_server"], repo, 180)
    assert made.returncode == 0, made.stderr[-2000:]
    package = repo / "mcp-servers" / "python" / "rain_server"
    readme = package / "README.md"
    readme.write_text(readme.read_text() + "\nA line of the server's own.\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "rain_server")
    template = repo / "mcp-servers" / "template" / "project" / "README.md.jinja"
    template.write_text(template.read_text() + "\n## Changelog\n\nA section the template gained later.\n")
    _git(repo, "commit", "-qam", "template: a changelog section")
    copier = str(repo / ".venv" / "bin" / "copier")
    updated = _run([copier, "update", "--defaults", "--quiet"], package, 120)
    assert updated.returncode == 0, updated.stderr[-2000:]
    text = readme.read_text()
    assert "A section the template gained later." in text and "A line of the server's own." in text
