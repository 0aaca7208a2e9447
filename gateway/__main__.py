"""`python -m gateway` (also `harbor-gateway`): serve the aggregating gateway, write a starter config, and the
commands around it.

    python -m gateway serve [--config config/harbor.yaml]
    python -m gateway init [--path harbor.yaml] [--force]
    python -m gateway clients [--server NAME] [--format claude|claude-code|cursor|vscode] [--container]
    python -m gateway install claude|cursor|vscode|claude-code [--server NAME] [--gateway] [--dry-run]
    python -m gateway connect URL [--header "Authorization: Bearer ${HARBOR_TOKEN}"]

`connect`, `clients` and `install` live in their own modules (gateway/connect/, clients.py, install.py) and
take their own flags; this module dispatches to them.

`HARBOR_ROOT` (this checkout) and `HARBOR_PYTHON` (this interpreter) are set for `${...}` expansion in the
config, so the shipped config runs the repo's own servers from its own virtualenv with no set-up. Without
`--config`: the checkout's `config/harbor.yaml` when there is one, else (installed from a wheel) the built-in
default of `gateway.hub.starter`, which docks the Harbor server packages installed next to the gateway.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "harbor.yaml"
COMMANDS = {
    "connect": ("gateway.connect.cli", "run a remote MCP server as a stdio one (also harbor-connect)"),
    "clients": ("gateway.clients", "print ready-to-paste client configuration"),
    "install": ("gateway.install", "write a client's MCP config file (merged, with a backup)"),
}


def _environment() -> None:
    os.environ.setdefault("HARBOR_ROOT", str(ROOT))
    os.environ.setdefault("HARBOR_PYTHON", sys.executable)


def parser() -> argparse.ArgumentParser:
    from gateway import __version__

    p = argparse.ArgumentParser(prog="harbor-gateway", description="Harbor's aggregating MCP gateway.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve every configured server behind one endpoint")
    serve.add_argument("--config", type=Path, default=None, help="default: config/harbor.yaml, else built-in")
    serve.add_argument("--host", default=None, help="override gateway.host")
    serve.add_argument("--port", type=int, default=None, help="override gateway.port")
    serve.add_argument("--allow-unauthenticated", action="store_true", help="allow a non-loopback bind without auth")
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    serve.add_argument("--log-format", default="console", choices=("console", "json"))
    init = sub.add_parser("init", help="write a starter config that docks the installed Harbor servers")
    init.add_argument("--path", type=Path, default=Path("harbor.yaml"))
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    for name, (_, summary) in COMMANDS.items():
        sub.add_parser(name, help=summary, add_help=False)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    _environment()
    if argv and argv[0] in COMMANDS:
        importlib.import_module(COMMANDS[argv[0]][0]).main(argv[1:])
        return
    args = parser().parse_args(argv)
    if args.command == "init":
        sys.exit(init(args.path, args.force))
    from gateway.config import ConfigError

    try:
        config, args.config = _load(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"harbor-gateway: {exc}\n")
        sys.exit(2)
    serve(config, args)


def serve(config: Any, args: argparse.Namespace) -> None:
    from gateway.core.addresses import is_loopback

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
    from gateway.core import logs, tracing

    logs.configure(args.log_level, json=args.log_format == "json")
    try:
        traced = tracing.configure("harbor-gateway")
    except tracing.TracingUnavailable as exc:
        sys.stderr.write(f"harbor-gateway: {exc}\n")
        sys.exit(2)
    import structlog

    from gateway.app import PortUnavailable, build_hub_app, exit_now, listen
    from gateway.app import serve as serve_app
    from gateway.hub.hub import Hub

    try:
        sock = listen(settings.host, settings.port)
    except PortUnavailable as exc:
        sys.stderr.write(f"harbor-gateway: {exc}\n")
        sys.exit(2)
    if settings.state != "memory":
        _check_state(settings.state)
    hub = Hub(config, args.config.resolve() if args.config else None)
    hub.port = sock.getsockname()[1]
    base = f"http://{settings.host}:{hub.port}"  # the real port, also for --port 0
    structlog.get_logger("gateway").info(
        "serving",
        merged=f"{base}/mcp",
        sse=f"{base}/sse",
        status=f"{base}/",
        servers=sorted(config.slugs().values()),
        traces=traced,
    )
    serve_app(build_hub_app(hub), sock, drain=hub.drain, grace=settings.shutdown_grace)
    exit_now(0)


def _check_state(value: str) -> None:
    """Exit 2, saying what to fix, when the shared state the replicas need cannot be reached at start."""
    import asyncio

    from gateway.cluster.connection import StateUnavailable, connect, parse_state_url

    url = parse_state_url(value)
    assert url is not None

    async def reach() -> None:
        redis = await connect(url)
        await redis.aclose()

    try:
        asyncio.run(reach())
    except StateUnavailable as exc:
        sys.stderr.write(f"harbor-gateway: gateway.state: {exc}\n")
        sys.exit(2)


def load(path: Path | None) -> tuple[Any, Path | None]:
    """The config `serve` would run, for the other commands (`clients`, `install`); see `_load`."""
    return _load(path)


def _load(path: Path | None) -> tuple[Any, Path | None]:
    """The config to run and its file (None for the built-in default, which has nothing to watch).

    Raises:
        ConfigError: the file (or the built-in default) does not validate.
    """
    from gateway.config import load_config, parse_config

    if path is not None or DEFAULT_CONFIG.is_file():
        chosen = path or DEFAULT_CONFIG
        return load_config(chosen), chosen
    import yaml  # type: ignore[import-untyped]

    from gateway.hub.starter import render

    return parse_config(yaml.safe_load(render()), Path.home()), None


def init(path: Path, force: bool) -> int:
    """Write the starter config; refuse to overwrite a file unless `force`."""
    from gateway.hub.starter import installed, render

    if path.exists() and not force:
        sys.stderr.write(f"harbor-gateway: {path} exists; pass --force to overwrite it, or --path another file\n")
        return 2
    path.write_text(render(), encoding="utf-8")
    names = ", ".join(s.name for s in installed()) or "none found (edit the file to add yours)"
    sys.stdout.write(f"wrote {path} (servers: {names})\nrun: harbor-gateway serve --config {path}\n")
    return 0


if __name__ == "__main__":
    main()
