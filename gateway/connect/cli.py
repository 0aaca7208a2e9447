"""`harbor-connect URL` (also `python -m gateway connect URL`): run a remote MCP server as a local stdio one.

    harbor-connect http://127.0.0.1:4444/mcp --header "Authorization: Bearer ${HARBOR_TOKEN}"

`${VAR}` and `${VAR:-default}` in a `--header` value are expanded here, from this process's environment, so
a client config can keep the token in its `env` block and out of the command line (and out of `ps`). An
unset variable without a default is an error that names it; header values are never logged. TLS
certificates are always verified: `--ca-file` adds a private CA. Exit status 2 is a usage error; the
process otherwise runs until the host closes stdin.
"""

from __future__ import annotations

import argparse
import os
import re
import ssl
import sys
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

import anyio
import httpx

from gateway import __version__

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
ERAS = ("auto", "legacy", "modern")


class UsageError(ValueError):
    """A flag that cannot be used as given; the message says what to change."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="harbor-connect",
        description="Speak MCP over stdio to the host and over HTTP to a remote MCP server.",
    )
    p.add_argument("url", help="the remote's Streamable HTTP endpoint (…/mcp) or legacy SSE endpoint (…/sse)")
    p.add_argument(
        "--header",
        action="append",
        default=[],
        metavar='"NAME: VALUE"',
        help="an HTTP header for every request; ${VAR} and ${VAR:-default} expand from the environment",
    )
    p.add_argument(
        "--timeout", type=_positive_float, default=300.0, metavar="S", help="per request, restarted by progress"
    )
    p.add_argument("--ca-file", default=None, metavar="PEM", help="trust this CA bundle (verification is always on)")
    p.add_argument(
        "--protocol-era",
        choices=ERAS,
        default="auto",
        help="modern: 2026-07-28 (server/discover, no session); legacy: the initialize handshake (2024-11-05 … "
        "2025-11-25); auto: modern when the remote's server/discover offers it, else legacy",
    )
    p.add_argument(
        "--transport",
        choices=("auto", "streamable-http", "sse"),
        default="auto",
        help="auto: Streamable HTTP, falling back to legacy SSE when the URL does not speak it",
    )
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    p.add_argument("--version", action="version", version=f"harbor-connect {__version__}")
    return p


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def expand(value: str, environ: Mapping[str, str]) -> str:
    """Expand `${VAR}` and `${VAR:-default}` (the default also applies to an empty variable).

    Raises:
        UsageError: a variable without a default is not set.
    """

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = environ.get(name)
        if found:
            return found
        if default is not None:
            return default
        raise UsageError(f"environment variable {name} is not set (set it, e.g. in the client's env block)")

    return _VARIABLE.sub(replace, value)


def headers(items: Sequence[str], environ: Mapping[str, str]) -> dict[str, str]:
    """`NAME: VALUE` pairs, values expanded.

    Raises:
        UsageError: an item is not `NAME: VALUE`, or names an unset variable.
    """
    result: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":")
        name = name.strip()
        if not sep or not name or not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name):
            raise UsageError(f'--header takes "NAME: VALUE", got {item.split(":")[0]!r}…')
        try:
            result[name] = expand(value.strip(), environ)
        except UsageError as exc:
            raise UsageError(f"--header {name}: {exc}") from None
    return result


def http_client(args: argparse.Namespace, environ: Mapping[str, str]) -> httpx.AsyncClient:
    """The one pooled client: headers, verification (with `--ca-file`), timeouts for long streams.

    Raises:
        UsageError: a bad URL, header or CA file.
    """
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"the URL must be http(s)://HOST[:PORT]/PATH, got {args.url!r}")
    verify: ssl.SSLContext | bool = True
    if args.ca_file:
        if not os.path.isfile(args.ca_file):
            raise UsageError(f"--ca-file {args.ca_file}: no such file")
        try:
            verify = ssl.create_default_context(cafile=args.ca_file)
        except ssl.SSLError as exc:
            raise UsageError(f"--ca-file {args.ca_file}: not a PEM CA bundle ({exc})") from None
    connect = min(10.0, args.timeout)
    timeout = httpx.Timeout(connect=connect, read=None, write=30.0, pool=connect)
    # trust_env: HTTPS_PROXY/NO_PROXY and SSL_CERT_FILE are honoured as by every httpx client (a --ca-file wins).
    return httpx.AsyncClient(headers=headers(args.header, environ), verify=verify, timeout=timeout)


async def _serve(args: argparse.Namespace, client: httpx.AsyncClient) -> None:
    import signal

    from gateway.connect.bridge import Bridge, Settings
    from gateway.connect.host import Host

    host = Host(sys.stdin.buffer, sys.stdout.buffer)
    bridge = Bridge(
        Settings(url=args.url, transport=args.transport, timeout=args.timeout, era=args.protocol_era),
        client,
        host.write,
    )
    async with client, anyio.create_task_group() as tg:
        tg.start_soon(host.run_writer)

        async def stop_on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    tg.cancel_scope.cancel()

        tg.start_soon(stop_on_signal)
        try:
            await bridge.run(host.messages())
            await host.drain()
        finally:
            await bridge.close()
            tg.cancel_scope.cancel()


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        client = http_client(args, os.environ)
    except UsageError as exc:
        sys.stderr.write(f"harbor-connect: {exc}\n")
        sys.exit(2)
    from gateway.core import logs

    logs.configure(args.log_level)
    anyio.run(_serve, args, client)


if __name__ == "__main__":
    main()
