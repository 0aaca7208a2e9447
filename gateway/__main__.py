"""`python -m gateway` (also `harbor-gateway`): serve the aggregating gateway, or print client configs.

    python -m gateway serve --config config/harbor.yaml
    python -m gateway clients [--server NAME] [--format claude|vscode|cursor]

`HARBOR_ROOT` (this checkout) and `HARBOR_PYTHON` (this interpreter) are set for `${...}` expansion in the
config, so the shipped config runs the repo's own servers from its own virtualenv with no set-up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "harbor.yaml"


def _environment() -> None:
    os.environ.setdefault("HARBOR_ROOT", str(ROOT))
    os.environ.setdefault("HARBOR_PYTHON", sys.executable)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harbor-gateway", description="Harbor's aggregating MCP gateway.")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve every configured server behind one endpoint")
    serve.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    serve.add_argument("--host", default=None, help="override gateway.host")
    serve.add_argument("--port", type=int, default=None, help="override gateway.port")
    serve.add_argument("--allow-unauthenticated", action="store_true", help="allow a non-loopback bind without auth")
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    serve.add_argument("--log-format", default="console", choices=("console", "json"))
    clients = sub.add_parser("clients", help="print ready-to-paste client configuration")
    clients.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    clients.add_argument("--server", default=None, help="only this server")
    clients.add_argument("--format", default="claude", choices=("claude", "vscode", "cursor"))
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    _environment()
    from gateway.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"harbor-gateway: {exc}\n")
        sys.exit(2)
    if args.command == "clients":
        sys.stdout.write(json.dumps(client_config(config, args.server, args.format), indent=2) + "\n")
        return
    serve(config, args)


def serve(config: Any, args: argparse.Namespace) -> None:
    from gateway.addresses import is_loopback

    settings = config.gateway
    if args.host:
        settings.host = args.host
    if args.port is not None:
        settings.port = args.port
    if args.allow_unauthenticated:
        settings.allow_unauthenticated = True
    if not is_loopback(settings.host) and settings.auth is None and not settings.allow_unauthenticated:
        sys.stderr.write(
            f"harbor-gateway: refusing to serve {settings.host} without gateway.auth; "
            "configure tokens or JWT, or pass --allow-unauthenticated\n"
        )
        sys.exit(2)
    from gateway import logs

    logs.configure(args.log_level, json=args.log_format == "json")
    import structlog

    from gateway.app import PortUnavailable, build_hub_app, listen
    from gateway.app import serve as serve_app
    from gateway.hub import Hub

    try:
        sock = listen(settings.host, settings.port)
    except PortUnavailable as exc:
        sys.stderr.write(f"harbor-gateway: {exc}\n")
        sys.exit(2)
    hub = Hub(config, args.config.resolve())
    base = f"http://{settings.host}:{sock.getsockname()[1]}"  # the real port, also for --port 0
    structlog.get_logger("gateway").info(
        "serving", merged=f"{base}/mcp", sse=f"{base}/sse", status=f"{base}/", servers=sorted(config.slugs().values())
    )
    serve_app(build_hub_app(hub), sock)


def client_config(config: Any, only: str | None, fmt: str) -> dict[str, Any]:
    """Per-server stdio entries (absolute paths) plus the gateway's own HTTP entry."""
    entries: dict[str, Any] = {}
    for name, server in config.mcpServers.items():
        if only and only not in (name, config.slugs()[name]):
            continue
        if server.kind == "stdio":
            entry: dict[str, Any] = {"command": _absolute(server.command or ""), "args": list(server.args)}
            if server.env:
                entry["env"] = dict(server.env)
            if server.cwd:
                entry["cwd"] = server.cwd
            if fmt == "vscode":
                entry = {"type": "stdio", **entry}
        else:
            entry = {"type": "sse" if server.kind == "sse" else "http", "url": server.url}
        entries[config.slugs()[name]] = entry
    if not only:
        gateway = config.gateway
        entries["harbor"] = {"type": "http", "url": f"http://{gateway.host}:{gateway.port}/mcp"}
    key = "servers" if fmt == "vscode" else "mcpServers"
    return {key: entries}


def _absolute(command: str) -> str:
    import shutil

    if os.path.isabs(command):
        return command
    return shutil.which(command) or command


if __name__ == "__main__":
    main()
