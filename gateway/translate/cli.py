"""`python -m gateway.translate`: serve any stdio MCP server over Streamable HTTP and legacy HTTP+SSE.

    python -m gateway.translate --stdio "uvx mcp-server-git" --port 9000

The command is split with `shlex` and run without a shell, in a clean environment: the child sees PATH,
HOME, USER, LOGNAME, SHELL, TERM, LANG, LC_*, TZ and TMPDIR of translate's own, the `--env K=V` it is given
and the names `--env-passthrough NAME` forwards — never the rest (secrets stay with translate). Binding a
non-loopback address needs
`--auth-token` (or GATEWAY_AUTH_TOKEN), or an explicit `--allow-unauthenticated`. Flag names are a
contract (docs and scripts use them); uvicorn is imported only when serving.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence

from gateway import __version__
from gateway.app import HTTPOptions, PortUnavailable, build_app, exit_now, listen, serve
from gateway.core.addresses import is_loopback
from gateway.translate.manager import SessionManager, StdioServer


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gateway-translate", description="Serve a stdio MCP server over HTTP.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument(
        "--stdio",
        required=True,
        metavar="CMD",
        help='the server command, e.g. "npx -y @modelcontextprotocol/server-everything"',
    )
    p.add_argument("--port", type=int, default=9000)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--expose-sse", action="store_true", help="serve legacy HTTP+SSE (with neither expose flag: both)")
    p.add_argument("--expose-streamable-http", action="store_true", help="serve Streamable HTTP (with neither: both)")
    p.add_argument("--ssePath", default="/sse")
    p.add_argument("--messagePath", default="/message")
    p.add_argument("--streamablePath", default="/mcp")
    p.add_argument("--session-mode", choices=("shared", "per-session"), default="shared")
    p.add_argument("--max-sessions", type=_positive_int, default=None, help="default: 10000 shared, 32 per-session")
    p.add_argument("--session-idle-timeout", type=_positive_float, default=600.0, metavar="S")
    p.add_argument(
        "--request-timeout",
        type=_positive_float,
        default=300.0,
        metavar="S",
        help="extended by each progress notification",
    )
    p.add_argument("--max-message-bytes", type=_positive_int, default=16 * 1024 * 1024, metavar="N")
    p.add_argument(
        "--keep-alive", type=_positive_float, default=15.0, metavar="S", help="SSE keep-alive comment interval"
    )
    p.add_argument(
        "--auth-token", default=os.environ.get("GATEWAY_AUTH_TOKEN"), help="bearer token (or env GATEWAY_AUTH_TOKEN)"
    )
    p.add_argument("--allow-unauthenticated", action="store_true", help="allow a non-loopback bind without a token")
    p.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="browser Origin to accept (loopback origins always are)",
    )
    p.add_argument("--cors", action="append", default=[], metavar="ORIGIN", help="enable CORS for this origin")
    p.add_argument(
        "--header-to-env",
        action="append",
        default=[],
        metavar="HEADER=ENV",
        help="per-session: pass a request header to the child's env",
    )
    p.add_argument("--cwd", default=None, help="working directory of the child")
    p.add_argument("--env", action="append", default=[], metavar="K=V", help="extra environment variable for the child")
    p.add_argument(
        "--env-passthrough",
        action="append",
        default=[],
        metavar="NAME",
        help="forward this variable of translate's environment to the child (it sees only PATH, HOME, locale… else)",
    )
    p.add_argument(
        "--shutdown-grace",
        type=_positive_float,
        default=3.0,
        metavar="S",
        help="on SIGINT/SIGTERM, seconds calls in flight may take to finish (a second Ctrl-C skips it)",
    )
    p.add_argument(
        "--startup-timeout",
        type=_positive_float,
        default=30.0,
        metavar="S",
        help="seconds for the child to answer initialize before it is killed and restarted",
    )
    p.add_argument("--name", default=None, help="server name in logs (default: the command's basename)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.add_argument("--log-format", default="console", choices=("console", "json"))
    return p


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _pairs(items: Sequence[str], flag: str, p: argparse.ArgumentParser) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            p.error(f"{flag} takes KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


def settings(argv: Sequence[str] | None = None) -> tuple[StdioServer, HTTPOptions, argparse.Namespace]:
    p = parser()
    args = p.parse_args(argv)
    try:
        command = shlex.split(args.stdio)
    except ValueError as exc:
        p.error(f"--stdio: {exc}")
    if not command:
        p.error("--stdio is empty: give the command that starts the MCP server")
    loopback = is_loopback(args.host)
    if not loopback and not args.auth_token and not args.allow_unauthenticated:
        p.error(
            f"refusing to serve {args.host} without --auth-token (or GATEWAY_AUTH_TOKEN); "
            "pass --allow-unauthenticated to do it anyway"
        )
    header_to_env = {k.lower(): v for k, v in _pairs(args.header_to_env, "--header-to-env", p).items()}
    if header_to_env and args.session_mode != "per-session":
        p.error("--header-to-env needs --session-mode per-session: each session's child gets its own env")
    server = StdioServer(
        name=args.name or os.path.basename(command[0]),
        argv=command,
        env=_pairs(args.env, "--env", p),
        cwd=args.cwd,
        session_mode=args.session_mode,
        max_sessions=args.max_sessions,
        idle_timeout=args.session_idle_timeout,
        request_timeout=args.request_timeout,
        max_message_bytes=args.max_message_bytes,
        header_to_env=header_to_env,
        env_passthrough=tuple(args.env_passthrough),
        startup_timeout=args.startup_timeout,
    )
    both = not (args.expose_sse or args.expose_streamable_http)
    options = HTTPOptions(
        expose_sse=both or args.expose_sse,
        expose_streamable_http=both or args.expose_streamable_http,
        sse_path=args.ssePath,
        message_path=args.messagePath,
        streamable_path=args.streamablePath,
        keep_alive=args.keep_alive,
        max_message_bytes=args.max_message_bytes,
        auth_token=args.auth_token,
        allow_origins=tuple(args.allow_origin),
        cors_origins=tuple(args.cors),
        check_host=loopback,
    )
    return server, options, args


def main(argv: Sequence[str] | None = None) -> None:
    server, options, args = settings(argv)
    from gateway.core import logs, tracing

    logs.configure(args.log_level, json=args.log_format == "json")
    try:
        traced = tracing.configure("gateway-translate")
    except tracing.TracingUnavailable as exc:
        sys.stderr.write(f"gateway-translate: {exc}\n")
        sys.exit(2)
    import structlog

    try:
        sock = listen(args.host, args.port)
    except PortUnavailable as exc:
        sys.stderr.write(f"gateway-translate: {exc}\n")
        sys.exit(2)
    manager = SessionManager(server)
    app = build_app(manager, options)
    base = f"http://{args.host}:{sock.getsockname()[1]}"  # the real port, also for --port 0
    endpoints = []
    if options.expose_streamable_http:
        endpoints.append(f"{base}{options.streamable_path}")
    if options.expose_sse:
        endpoints.append(f"{base}{options.sse_path}")
    structlog.get_logger("gateway.translate").info(
        "serving", server=server.name, mode=server.session_mode, endpoints=endpoints, traces=traced
    )
    serve(app, sock, drain=manager.drain, grace=args.shutdown_grace)
    exit_now(0)
