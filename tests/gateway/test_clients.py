"""`gateway clients`: the entries each client gets, the container rule, and the errors a user can make."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.clients import client_config, container_entry, image_name
from gateway.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
PYTHON = os.path.abspath(sys.executable)


def _config(auth: bool = False, extra: str = "") -> object:
    import yaml

    text = f"""
mcpServers:
  data-analysis:
    command: {sys.executable}
    args: ["-m", "data_analysis_server"]
    env: {{DATA_ANALYSIS_ROOTS: /srv/data, DATA_ANALYSIS_MAX_ROWS: "1000"}}
  eval:
    command: {sys.executable}
    args: ["-m", "mcp_eval_server"]
    env: {{MCP_EVAL_DB: /home/me/eval.sqlite3}}
  tool:
    command: sh
    args: ["-c", "true"]
  far:
    url: https://mcp.example.com/mcp
{extra}
gateway:
  host: 0.0.0.0
  port: 4444
"""
    data = yaml.safe_load(text)
    if auth:
        data["gateway"]["auth"] = {"tokens": [{"token": "t" * 32, "identity": "me"}]}
    return parse_config(data, ROOT, environ={})


def test_claude_gets_the_gateway_as_a_connect_command_runnable_as_printed() -> None:
    entry = client_config(_config(), "claude")["mcpServers"]["harbor"]
    assert entry == {"command": PYTHON, "args": ["-m", "gateway", "connect", "http://127.0.0.1:4444/mcp"]}


def test_with_auth_the_token_comes_from_an_env_entry_referenced_by_the_header() -> None:
    entry = client_config(_config(auth=True), "claude")["mcpServers"]["harbor"]
    assert entry["args"][-2:] == ["--header", "Authorization: Bearer ${HARBOR_TOKEN}"]
    assert list(entry["env"]) == ["HARBOR_TOKEN"] and "t" * 32 not in json.dumps(entry)


def test_url_clients_get_the_url_and_their_own_token_syntax() -> None:
    config = _config(auth=True)
    assert client_config(config, "claude-code")["mcpServers"]["harbor"] == {
        "type": "http",
        "url": "http://127.0.0.1:4444/mcp",
        "headers": {"Authorization": "Bearer ${HARBOR_TOKEN}"},
    }
    assert client_config(config, "cursor")["mcpServers"]["harbor"]["headers"] == {
        "Authorization": "Bearer ${env:HARBOR_TOKEN}"
    }
    vscode = client_config(config, "vscode")
    assert vscode["servers"]["harbor"]["headers"] == {"Authorization": "Bearer ${input:harbor-token}"}
    assert vscode["inputs"][0]["id"] == "harbor-token" and vscode["inputs"][0]["password"] is True


def test_server_entries_have_absolute_commands() -> None:
    servers = client_config(_config(), "vscode")["servers"]
    assert servers["tool"]["command"] == os.path.abspath(__import__("shutil").which("sh"))
    assert servers["data-analysis"] == {
        "type": "stdio",
        "command": sys.executable,
        "args": ["-m", "data_analysis_server"],
        "env": {"DATA_ANALYSIS_ROOTS": "/srv/data", "DATA_ANALYSIS_MAX_ROWS": "1000"},
    }
    assert servers["far"] == {"type": "http", "url": "https://mcp.example.com/mcp"}


@pytest.mark.parametrize(
    ("package", "image"),
    [
        ("data_analysis_server", "harbor-data-analysis:latest"),
        ("mcp_eval_server", "harbor-mcp-eval:latest"),
        ("weather_server", "harbor-weather:latest"),
        ("sql", "harbor-sql:latest"),
    ],
)
def test_image_names_follow_the_package_folder(package: str, image: str) -> None:
    assert image_name(package) == image


def test_container_entries_run_the_image_with_env_by_name_and_a_read_only_data_root() -> None:
    servers = client_config(_config(), "claude", container=True)["mcpServers"]
    assert servers["data-analysis"] == {
        "command": "docker",
        "args": [
            "run",
            "-i",
            "--rm",
            "-e",
            "DATA_ANALYSIS_MAX_ROWS",
            "-v",
            "/srv/data:/data:ro",
            "harbor-data-analysis:latest",
        ],
        "env": {"DATA_ANALYSIS_MAX_ROWS": "1000"},
    }  # the image sets DATA_ANALYSIS_ROOTS=/data itself; the value never goes on the command line
    # a host database path becomes the image's state volume
    assert servers["eval"] == {
        "command": "docker",
        "args": ["run", "-i", "--rm", "-v", "harbor-mcp-eval:/var/lib/harbor", "harbor-mcp-eval:latest"],
    }
    assert "tool" not in servers  # not a package of this repo: no image to run


def test_several_data_roots_are_mounted_side_by_side_under_data() -> None:
    server = _config().mcpServers["data-analysis"].model_copy(update={"env": {"DATA_ANALYSIS_ROOTS": "/a/x:/b/x"}})
    entry = container_entry(server)
    assert entry is not None and entry["args"][3:7] == ["-v", "/a/x:/data/x:ro", "-v", "/b/x:/data/x_:ro"]


def _clients(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "gateway", "clients", "--config", str(config), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=ROOT)


def test_an_unknown_server_exits_2_naming_the_servers_there_are(tmp_path: Path) -> None:
    config = tmp_path / "harbor.yaml"
    config.write_text("mcpServers:\n  alpha: {command: x}\n  beta: {command: y}\n")
    done = _clients("--server", "gamma", config=config)
    assert done.returncode == 2 and done.stdout == ""
    assert "no server named 'gamma'" in done.stderr and "alpha, beta" in done.stderr


def test_one_server_alone_has_no_gateway_entry(tmp_path: Path) -> None:
    config = tmp_path / "harbor.yaml"
    config.write_text("mcpServers:\n  alpha: {command: /bin/true}\n  beta: {command: /bin/false}\n")
    done = _clients("--server", "beta", config=config)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"mcpServers": {"beta": {"command": "/bin/false", "args": []}}}


def test_a_disabled_server_is_left_out_unless_asked_for(tmp_path: Path) -> None:
    config = tmp_path / "harbor.yaml"
    config.write_text("mcpServers:\n  alpha: {command: /bin/true}\n  beta: {command: /bin/false, enabled: false}\n")
    listed = json.loads(_clients(config=config).stdout)["mcpServers"]
    assert set(listed) == {"alpha", "harbor"}
    alone = json.loads(_clients("--server", "beta", config=config).stdout)["mcpServers"]
    assert alone == {"beta": {"command": "/bin/false", "args": []}}
