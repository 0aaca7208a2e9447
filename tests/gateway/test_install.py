"""`gateway install`: the right file per client and OS, merged into what is there, backed up, idempotent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.install import target

ROOT = Path(__file__).resolve().parents[2]


def _install(*args: str, home: Path, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("XDG_CONFIG_HOME", "HARBOR_TOKEN")}
    argv = [sys.executable, "-m", "gateway", "install", *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=30, cwd=cwd or home, env={**environ, "HOME": str(home), **env}
    )


@pytest.mark.parametrize(
    ("client", "platform", "expected"),
    [
        ("claude", "linux", ".config/Claude/claude_desktop_config.json"),
        ("claude", "darwin", "Library/Application Support/Claude/claude_desktop_config.json"),
        ("claude", "win32", "AppData/Roaming/Claude/claude_desktop_config.json"),
        ("cursor", "linux", ".cursor/mcp.json"),
    ],
)
def test_each_client_file_is_where_that_client_reads_it(client: str, platform: str, expected: str) -> None:
    assert target(client, {"HOME": "/h"}, None, platform) == Path("/h") / expected


def test_project_files_are_in_the_project(tmp_path: Path) -> None:
    assert target("vscode", {"HOME": "/h"}, tmp_path) == tmp_path / ".vscode" / "mcp.json"
    assert target("claude-code", {"HOME": "/h"}, tmp_path) == tmp_path / ".mcp.json"
    assert target("cursor", {"HOME": "/h"}, tmp_path) == tmp_path / ".cursor" / "mcp.json"
    assert target("claude", {"HOME": "/h", "XDG_CONFIG_HOME": "/x"}, None, "linux") == Path(
        "/x/Claude/claude_desktop_config.json"
    )


def test_claude_desktop_install_merges_keeps_other_entries_backs_up_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / ".config" / "Claude" / "claude_desktop_config.json"
    path.parent.mkdir(parents=True)
    before = {"mcpServers": {"mine": {"command": "/usr/bin/mine"}}, "globalShortcut": "Alt+Space"}
    path.write_text(json.dumps(before))
    done = _install("claude", home=tmp_path)
    assert done.returncode == 0, done.stderr
    after = json.loads(path.read_text())
    assert after["globalShortcut"] == "Alt+Space" and after["mcpServers"]["mine"] == {"command": "/usr/bin/mine"}
    harbor = after["mcpServers"]["harbor"]
    assert harbor["command"] == os.path.abspath(sys.executable) and harbor["args"][:3] == ["-m", "gateway", "connect"]
    backups = list(path.parent.glob("claude_desktop_config.json.*.bak"))
    assert len(backups) == 1 and json.loads(backups[0].read_text()) == before
    again = _install("claude", home=tmp_path)
    assert again.returncode == 0 and "unchanged" in again.stderr
    assert len(list(path.parent.glob("*.bak"))) == 1 and json.loads(path.read_text()) == after


def test_dry_run_prints_the_diff_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / ".cursor" / "mcp.json"
    path.parent.mkdir()
    path.write_text('{"mcpServers": {"mine": {"url": "http://x"}}}\n')
    done = _install("cursor", "--dry-run", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("---") and '+    "harbor": {' in done.stdout
    assert path.read_text() == '{"mcpServers": {"mine": {"url": "http://x"}}}\n'
    assert not list(path.parent.glob("*.bak"))


def test_vscode_gets_servers_and_a_new_file_is_private(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    done = _install("vscode", "--server", "eval", "--gateway", home=tmp_path, cwd=project)
    assert done.returncode == 0, done.stderr
    path = project / ".vscode" / "mcp.json"
    servers = json.loads(path.read_text())["servers"]
    assert set(servers) == {"eval", "harbor"} and servers["eval"]["type"] == "stdio"
    assert os.path.isabs(servers["eval"]["command"]) and servers["eval"]["args"] == ["-m", "mcp_eval_server"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_claude_code_writes_the_project_mcp_json(tmp_path: Path) -> None:
    done = _install("claude-code", "--project", str(tmp_path), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / ".mcp.json").read_text())["mcpServers"]["harbor"]["type"] == "http"


def test_a_token_in_the_environment_fills_the_placeholder(tmp_path: Path) -> None:
    config = tmp_path / "harbor.yaml"
    config.write_text(
        "mcpServers:\n  a: {command: /bin/true}\ngateway:\n  auth:\n    tokens:\n"
        "      - {token: '0123456789abcdef0123456789abcdef', identity: me}\n"
    )
    done = _install("claude", "--config", str(config), home=tmp_path, HARBOR_TOKEN="from-env")
    assert done.returncode == 0, done.stderr
    path = tmp_path / ".config" / "Claude" / "claude_desktop_config.json"
    assert json.loads(path.read_text())["mcpServers"]["harbor"]["env"] == {"HARBOR_TOKEN": "from-env"}


def test_a_broken_file_is_left_alone_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / ".cursor" / "mcp.json"
    path.parent.mkdir()
    path.write_text("{not json")
    done = _install("cursor", home=tmp_path)
    assert done.returncode == 2 and "is not valid JSON" in done.stderr and "nothing was written" in done.stderr
    assert path.read_text() == "{not json"


def test_an_unknown_server_exits_2(tmp_path: Path) -> None:
    done = _install("cursor", "--server", "nope", home=tmp_path)
    assert done.returncode == 2 and "no server named 'nope'" in done.stderr
    assert not (tmp_path / ".cursor").exists()
