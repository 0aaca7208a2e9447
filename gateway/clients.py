"""`python -m gateway clients`: the client-config entries for this config, ready to paste (and for `install`).

    python -m gateway clients [--config FILE] [--format claude|claude-code|cursor|vscode] [--server NAME]
                              [--container]

Every entry is runnable as printed: commands are absolute paths. Two kinds of entry:
- one per docked stdio server, the server's own command (or, with `--container`, `docker run -i --rm … IMAGE`
  of its container image), for a client that should reach it directly;
- `harbor`, the gateway itself (all servers, under its policy, audit and metrics). Claude Desktop takes only
  commands, so there it is `python -m gateway connect URL` with this checkout's Python; clients that take a
  URL get the URL. With `gateway.auth` on, the token never appears in the entry: it is read from
  `HARBOR_TOKEN` (a placeholder to fill in, or the client's own variable syntax).

Container entries follow the image conventions (docs/deploy.md): the image of package folder
`mcp-servers/python/<pkg>` is `harbor-<pkg minus _server, _ → ->:latest`; environment values go in the entry's
`env` and reach the container as `-e NAME` (never a value on the command line); a `*_ROOTS` data root is
mounted read-only at `/data` (the image already points the variable there, so it is not repeated); a host
path of another kind (a database) becomes the named volume `harbor-<name>` on the image's state folder
`/var/lib/harbor`, where the image keeps it. Never `-t`: a TTY would corrupt the stdio stream.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.config import ConfigError, HarborConfig, ServerConfig

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("claude", "claude-code", "cursor", "vscode")
TOKEN_VARIABLE = "HARBOR_TOKEN"
TOKEN_PLACEHOLDER = "<your Harbor gateway token>"
GATEWAY_ENTRY = "harbor"
SERVERS_FOLDER = ROOT / "mcp-servers" / "python"
DATA_DIR = "/data"  # the images' read-only input folder (docs/deploy.md)
STATE_DIR = "/var/lib/harbor"  # the images' writable state folder


class UnknownServer(LookupError):
    """`--server` names no configured server; the message lists the names there are."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harbor-gateway clients", description="Print ready-to-paste client config.")
    p.add_argument("--config", type=Path, default=None, help="default: config/harbor.yaml, else built-in")
    p.add_argument("--server", default=None, help="only this server (its name or slug)")
    p.add_argument("--format", default="claude", choices=FORMATS)
    p.add_argument("--container", action="store_true", help="entries that run each server's container image")
    return p


def python() -> str:
    """This checkout's interpreter, as an absolute path (the venv's own, never its symlink target)."""
    return os.path.abspath(sys.executable)


def gateway_url(config: HarborConfig) -> str:
    host = config.gateway.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{'[' + host + ']' if ':' in host else host}:{config.gateway.port}/mcp"


def gateway_entry(config: HarborConfig, fmt: str) -> dict[str, Any]:
    """The gateway as one entry: a `connect` command for Claude Desktop, its URL for the others."""
    url, auth = gateway_url(config), config.gateway.auth is not None
    if fmt == "claude":
        entry: dict[str, Any] = {"command": python(), "args": ["-m", "gateway", "connect", url]}
        if auth:
            entry["args"] += ["--header", f"Authorization: Bearer ${{{TOKEN_VARIABLE}}}"]
            entry["env"] = {TOKEN_VARIABLE: TOKEN_PLACEHOLDER}
        return entry
    entry = {"type": "http", "url": url}
    if auth and fmt == "claude-code":
        entry["headers"] = {"Authorization": f"Bearer ${{{TOKEN_VARIABLE}}}"}  # expanded by Claude Code
    elif auth and fmt == "cursor":
        entry["headers"] = {"Authorization": f"Bearer ${{env:{TOKEN_VARIABLE}}}"}  # expanded by Cursor
    elif auth and fmt == "vscode":
        entry["headers"] = {"Authorization": "Bearer ${input:harbor-token}"}  # VS Code prompts once
    if fmt == "cursor":
        del entry["type"]  # Cursor tells HTTP from stdio by `url`
    return entry


def vscode_inputs(config: HarborConfig) -> list[dict[str, Any]]:
    if config.gateway.auth is None:
        return []
    return [{"type": "promptString", "id": "harbor-token", "description": "Harbor gateway token", "password": True}]


def server_entry(server: ServerConfig, fmt: str, container: bool = False) -> dict[str, Any] | None:
    """One docked server as its own entry; None when `container` is asked and it has no image."""
    if server.kind != "stdio":
        return {"type": "sse" if server.kind == "sse" else "http", "url": server.url}
    entry = container_entry(server) if container else _stdio_entry(server)
    if entry is not None and fmt in ("vscode", "claude-code"):
        entry = {"type": "stdio", **entry}
    return entry


def _stdio_entry(server: ServerConfig) -> dict[str, Any]:
    entry: dict[str, Any] = {"command": _absolute(server.command or ""), "args": list(server.args)}
    if server.env:
        entry["env"] = dict(server.env)
    if server.cwd:
        entry["cwd"] = server.cwd
    return entry


def _absolute(command: str) -> str:
    if os.path.isabs(command):
        return command
    return os.path.abspath(found) if (found := shutil.which(command)) else command


def package_of(server: ServerConfig) -> str | None:
    """The repo's server package a stdio entry runs (`-m data_analysis_server`), if it runs one."""
    args = list(server.args)
    for flag, value in itertools.pairwise(args):
        if flag == "-m" and (SERVERS_FOLDER / value.split(".")[0] / "pyproject.toml").is_file():
            return value.split(".")[0]
    name = os.path.basename(server.command or "").replace("-", "_")
    return name if (SERVERS_FOLDER / name / "pyproject.toml").is_file() else None


def image_name(package: str) -> str:
    """`data_analysis_server` → `harbor-data-analysis:latest`."""
    base = package.removesuffix("_server").replace("_", "-")
    return f"harbor-{base}:latest"


def container_entry(server: ServerConfig) -> dict[str, Any] | None:
    """`docker run -i --rm …` of the server's image, in the shape docs/deploy.md gives for client entries."""
    package = package_of(server)
    if package is None:
        return None
    env: dict[str, str] = {}
    mounts: list[str] = []
    for name, value in sorted((server.env or {}).items()):
        if name.endswith(("_ROOTS", "_ROOT")):
            mounts += _data_mounts([r for r in value.split(os.pathsep) if r])  # the image points it at /data
        elif os.path.isabs(value):
            state = f"harbor-{image_name(package).split(':')[0].removeprefix('harbor-')}:{STATE_DIR}"
            if state not in mounts:
                mounts.append(state)  # a database or cache: the image keeps it in its state folder
        else:
            env[name] = value
    args = ["run", "-i", "--rm"]
    for name in env:
        args += ["-e", name]
    for mount in mounts:
        args += ["-v", mount]
    entry: dict[str, Any] = {"command": "docker", "args": [*args, image_name(package)]}
    if env:
        entry["env"] = env
    return entry


def _data_mounts(roots: list[str]) -> list[str]:
    """One root is `/data` itself; several go side by side under it (each its own read-only mount)."""
    if len(roots) == 1:
        return [f"{os.path.abspath(roots[0])}:{DATA_DIR}:ro"]
    mounts, used = [], set()
    for root in roots:
        name = os.path.basename(os.path.abspath(root)) or "root"
        while name in used:
            name += "_"
        used.add(name)
        mounts.append(f"{os.path.abspath(root)}:{DATA_DIR}/{name}:ro")
    return mounts


def client_config(
    config: HarborConfig, fmt: str = "claude", only: str | None = None, container: bool = False
) -> dict[str, Any]:
    """The whole block for one client: `{"mcpServers": {...}}` (VS Code: `{"servers": {...}}` and `inputs`).

    Raises:
        UnknownServer: `only` names no configured server.
    """
    slugs = config.slugs()
    if only is not None and only not in slugs and only not in slugs.values():
        known = ", ".join(sorted(slugs.values()))
        raise UnknownServer(f"no server named {only!r} in the config; the servers are: {known}")
    entries: dict[str, Any] = {}
    for name, server in config.mcpServers.items():
        if only is not None and only not in (name, slugs[name]):
            continue
        if only is None and not server.enabled:
            continue  # not docked, so not offered (asked for by name, it is printed all the same)
        entry = server_entry(server, fmt, container)
        if entry is None:
            sys.stderr.write(f"harbor-gateway clients: {slugs[name]} is not a package of this repo: no image\n")
            continue
        entries[slugs[name]] = entry
    if only is None:
        entries[GATEWAY_ENTRY] = gateway_entry(config, fmt)
    if fmt == "vscode":
        block: dict[str, Any] = {"servers": entries}
        if only is None and (inputs := vscode_inputs(config)):
            block["inputs"] = inputs
        return block
    return {"mcpServers": entries}


def load(path: Path | None) -> HarborConfig:
    """The config `serve` would run (`--config`, else the checkout's, else the built-in default), or exit 2."""
    os.environ.setdefault("HARBOR_ROOT", str(ROOT))
    os.environ.setdefault("HARBOR_PYTHON", sys.executable)
    from gateway.__main__ import load as load_like_serve

    try:
        config, _ = load_like_serve(path)
    except ConfigError as exc:
        sys.stderr.write(f"harbor-gateway: {exc}\n")
        sys.exit(2)
    return config  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    config = load(args.config)
    try:
        block = client_config(config, args.format, args.server, args.container)
    except UnknownServer as exc:
        sys.stderr.write(f"harbor-gateway clients: {exc}\n")
        sys.exit(2)
    sys.stdout.write(json.dumps(block, indent=2) + "\n")
