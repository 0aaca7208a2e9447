"""The config a gateway runs with when it is given none, and the starter file `harbor-gateway init` writes.

Installed from a wheel there is no `config/harbor.yaml` beside the package, so `harbor-gateway serve` docks the
Harbor server packages installed in the same environment (`KNOWN_SERVERS`, each only if its module can be
imported), with the session mode each one needs: per-identity for servers that keep per-user state. Every
server runs from this interpreter (`sys.executable -m <module>`), so the entries work without PATH tweaks.
`render` writes the same thing as a commented YAML file to edit. Pure: no I/O besides `find_spec`.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class KnownServer:
    name: str
    module: str
    session_mode: str
    why: str
    env: tuple[tuple[str, str], ...] = ()


KNOWN_SERVERS = (
    KnownServer("data-analysis", "data_analysis_server", "per-identity", "loaded datasets are per-user state"),
    KnownServer(
        "eval",
        "mcp_eval_server",
        "per-identity",
        "stored runs are per-user state (one SQLite file per identity)",
        (
            ("MCP_EVAL_DB", "${HOME}/.local/share/harbor/eval-{identity}.sqlite3"),
            ("MCP_EVAL_DATA_ROOTS", "${HOME}/.local/share/harbor/eval-data"),  # never the working directory
        ),
    ),
    KnownServer("sql", "sql_server", "shared", "read-only queries keep no per-user state"),
)


def installed() -> list[KnownServer]:
    """The known server packages importable from this interpreter."""
    return [server for server in KNOWN_SERVERS if importlib.util.find_spec(server.module) is not None]


def render(servers: list[KnownServer] | None = None, python: str | None = None) -> str:
    """A starter config as YAML text: the installed servers (or `servers`), loopback, no auth, an audit file."""
    python = python or sys.executable
    found = installed() if servers is None else servers
    lines = [
        "# Harbor gateway config (`harbor-gateway serve --config THIS_FILE`). Claude-Desktop-style `mcpServers`",
        "# entries paste in as they are. `${VAR}` expands from the environment; secrets belong there, never here.",
        "# A child sees only PATH, HOME, USER, LOGNAME, SHELL, TERM, LANG, LC_*, TZ and TMPDIR of the gateway's",
        "# environment, plus its own `env` and the names in its `env_passthrough`.",
        "",
        "mcpServers:",
    ]
    for server in found:
        lines += [
            f"  {server.name}:",
            f"    command: {python}",
            f'    args: ["-m", "{server.module}"]',
            f"    session_mode: {server.session_mode}   # {server.why}",
        ]
        if server.env:
            lines.append("    env:")
            lines += [f'      {key}: "{value}"' for key, value in server.env]
    if not found:
        lines += [
            "  # no Harbor server package is installed next to the gateway; add your own, e.g.:",
            "  everything:",
            "    command: npx",
            '    args: ["-y", "@modelcontextprotocol/server-everything"]',
        ]
    lines += [
        "  # github:                                   # a third-party server, as Claude Desktop runs it",
        "  #   command: npx",
        '  #   args: ["-y", "@modelcontextprotocol/server-github"]',
        '  #   env: {GITHUB_PERSONAL_ACCESS_TOKEN: "${GITHUB_TOKEN}"}',
        "",
        "gateway:",
        "  host: 127.0.0.1   # loopback only; a public bind needs auth",
        "  port: ${HARBOR_PORT:-4444}",
        "  # auth:",
        "  #   tokens:",
        '  #     - {token: "${HARBOR_TOKEN}", identity: me, scopes: ["harbor:admin"]}',
        "  audit:",
        "    path: ~/.local/state/harbor/audit.jsonl",
        "",
    ]
    return "\n".join(lines)
