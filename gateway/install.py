"""`python -m gateway install CLIENT`: write Harbor's entries into a client's MCP config file, merged.

    python -m gateway install claude|cursor|vscode|claude-code [--gateway] [--server NAME ...] [--container]
                              [--config FILE] [--project DIR] [--file PATH] [--dry-run]

Which file, by client (`--file` overrides; DIR is `--project`, default the current directory):
- `claude` (Claude Desktop, `mcpServers`): `~/Library/Application Support/Claude/claude_desktop_config.json`
  on macOS, `%APPDATA%/Claude/claude_desktop_config.json` on Windows, `$XDG_CONFIG_HOME/Claude/…` (default
  `~/.config/Claude/…`) on Linux;
- `cursor` (`mcpServers`): `~/.cursor/mcp.json`, or `DIR/.cursor/mcp.json` when `--project` is given;
- `vscode` (`servers`, plus `inputs` for a prompted token): `DIR/.vscode/mcp.json`;
- `claude-code` (`mcpServers`, project scope): `DIR/.mcp.json`.

With neither `--gateway` nor `--server`, the gateway's single entry is installed. Entries are those of
`gateway clients` (same absolute commands). The merge replaces only Harbor's own entries, keeps every other
entry and key as it was, and writes nothing when nothing changes (so running it twice is a no-op). Before
changing an existing file it is copied to `FILE.<timestamp>.bak`; the new file is written atomically and a
new one is created readable by its owner only (it may hold a token). With auth on, the gateway entry's
`HARBOR_TOKEN` is taken from this process's environment when set, else left as a placeholder to fill in.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway.clients import (
    GATEWAY_ENTRY,
    TOKEN_PLACEHOLDER,
    TOKEN_VARIABLE,
    UnknownServer,
    client_config,
    gateway_entry,
    load,
    vscode_inputs,
)
from gateway.config import HarborConfig

CLIENTS = ("claude", "cursor", "vscode", "claude-code")


class InstallError(ValueError):
    """The target file cannot be merged; the message says what to fix. Nothing was written."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harbor-gateway install", description="Write Harbor into a client's MCP config.")
    p.add_argument("client", choices=CLIENTS)
    p.add_argument("--gateway", action="store_true", help="the gateway's entry (the default with no --server)")
    p.add_argument("--server", action="append", default=[], metavar="NAME", help="a docked server's own entry")
    p.add_argument("--container", action="store_true", help="server entries run the server's container image")
    p.add_argument("--config", type=Path, default=None, help="default: config/harbor.yaml, else built-in")
    p.add_argument("--project", type=Path, default=None, metavar="DIR", help="project folder (vscode, claude-code)")
    p.add_argument("--file", type=Path, default=None, metavar="PATH", help="write this file instead")
    p.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    return p


def target(client: str, environ: Mapping[str, str], project: Path | None, platform: str = sys.platform) -> Path:
    """The config file `client` reads on this OS."""
    home = Path(environ.get("HOME") or Path.home())
    here = project or Path.cwd()
    if client == "claude":
        if platform == "darwin":
            return home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
        if platform == "win32":
            appdata = Path(environ.get("APPDATA") or home / "AppData" / "Roaming")
            return appdata / "Claude" / "claude_desktop_config.json"
        return Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "Claude" / "claude_desktop_config.json"
    if client == "cursor":
        return (project if project else home) / ".cursor" / "mcp.json"
    if client == "vscode":
        return here / ".vscode" / "mcp.json"
    return here / ".mcp.json"


def entries(
    config: HarborConfig, client: str, servers: Sequence[str], gateway: bool, container: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The entries to install, keyed by name, and VS Code's `inputs`.

    Raises:
        UnknownServer: a `--server` names no configured server.
    """
    fmt = client
    wanted: dict[str, Any] = {}
    key = "servers" if client == "vscode" else "mcpServers"
    for name in servers:
        wanted.update(client_config(config, fmt, name, container)[key])
    inputs: list[dict[str, Any]] = []
    if gateway or not servers:
        entry = gateway_entry(config, fmt)
        token = os.environ.get(TOKEN_VARIABLE)
        if token and TOKEN_VARIABLE in entry.get("env", {}):
            entry["env"][TOKEN_VARIABLE] = token
        wanted[GATEWAY_ENTRY] = entry
        inputs = vscode_inputs(config) if client == "vscode" else []
    return wanted, inputs


def merged(
    current: dict[str, Any], key: str, wanted: Mapping[str, Any], inputs: list[dict[str, Any]]
) -> dict[str, Any]:
    """`current` with `wanted` set under `key` and `inputs` merged by id; everything else kept as it was.

    Raises:
        InstallError: `key` (or `inputs`) exists but is not of the right JSON type.
    """
    result = dict(current)
    section = result.get(key, {})
    if not isinstance(section, dict):
        raise InstallError(f'"{key}" is not a JSON object; fix the file or move it aside')
    result[key] = {**section, **wanted}
    if inputs:
        existing = result.get("inputs", [])
        if not isinstance(existing, list):
            raise InstallError('"inputs" is not a JSON array; fix the file or move it aside')
        ids = {item.get("id") for item in existing if isinstance(item, dict)}
        result["inputs"] = [*existing, *(item for item in inputs if item["id"] not in ids)]
    return result


def read(path: Path) -> tuple[str, dict[str, Any]]:
    """The file's text and its JSON object ('' and {} when it does not exist).

    Raises:
        InstallError: the file is not a JSON object.
    """
    if not path.exists():
        return "", {}
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        return text, {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InstallError(f"{path} is not valid JSON ({exc}); fix it or move it aside — nothing was written") from None
    if not isinstance(value, dict):
        raise InstallError(f"{path} is not a JSON object; fix it or move it aside — nothing was written")
    return text, value


def write(path: Path, text: str) -> Path | None:
    """Back the old file up (if any), then replace it atomically. Returns the backup's path."""
    backup = None
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        backup = path.with_name(f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}.bak")
        shutil.copy2(path, backup)
    mode = (path.stat().st_mode & 0o777) if path.exists() else 0o600
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(temporary, mode)
    os.replace(temporary, path)
    return backup


def install(args: argparse.Namespace, config: HarborConfig) -> int:
    """Plan, print, write. Returns the exit status.

    Raises:
        InstallError, UnknownServer: nothing was written.
    """
    path = args.file or target(args.client, os.environ, args.project)
    key = "servers" if args.client == "vscode" else "mcpServers"
    wanted, inputs = entries(config, args.client, args.server, args.gateway, args.container)
    old_text, current = read(path)
    new = merged(current, key, wanted, inputs)
    new_text = json.dumps(new, indent=2) + "\n"
    names = ", ".join(sorted(wanted))
    if current and new == current:
        sys.stderr.write(f"{path}: already has {names}, unchanged\n")
        return 0
    if args.dry_run:
        diff = difflib.unified_diff(
            old_text.splitlines(keepends=True), new_text.splitlines(keepends=True), str(path), f"{path} (new)"
        )
        sys.stdout.write("".join(diff))
        return 0
    backup = write(path, new_text)
    sys.stderr.write(f"{path}: wrote {names}" + (f" (previous file kept as {backup})" if backup else "") + "\n")
    if TOKEN_PLACEHOLDER in new_text:
        sys.stderr.write(f"{path}: replace the {TOKEN_VARIABLE} placeholder with your gateway token\n")
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    config = load(args.config)
    try:
        status = install(args, config)
    except (InstallError, UnknownServer) as exc:
        sys.stderr.write(f"harbor-gateway install: {exc}\n")
        sys.exit(2)
    sys.exit(status)
