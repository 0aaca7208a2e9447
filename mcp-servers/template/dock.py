"""`make new-server NAME=… DOCK=1`: dock a generated server in the gateway config, keeping the file as written.

    python mcp-servers/template/dock.py mcp-servers/python/weather_server config/harbor.yaml

Reads the server's slug and package from its `.copier-answers.yml` and adds, at the end of the config's
`mcpServers:` block, the entry every repo server has (`${HARBOR_PYTHON} -m <package>`), as text, so comments
and layout stay. Idempotent: a server already docked under that name is left alone. The result is parsed
again before it is written; a config it cannot place the entry in is refused (exit 2) and left unchanged.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml


def entry(slug: str, package: str) -> str:
    return f'  {slug}:\n    command: ${{HARBOR_PYTHON}}\n    args: ["-m", "{package}"]\n'


def docked(text: str, slug: str, package: str) -> str:
    """`text` with the entry added at the end of `mcpServers:`.

    Raises:
        ValueError: there is no top-level `mcpServers:` block to add it to.
    """
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(r"mcpServers:\s*(#.*)?$", line)), None)
    if start is None:
        raise ValueError("no top-level `mcpServers:` block (an inline `mcpServers: {...}` cannot be extended)")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() and not lines[i][0].isspace()), len(lines))
    last = end
    while last > start + 1 and not lines[last - 1].strip():
        last -= 1
    block = ["\n", entry(slug, package)] if last > start + 1 else [entry(slug, package)]
    tail = ["\n"] if end < len(lines) else []
    if lines[last - 1 : last] and not lines[last - 1].endswith("\n"):
        lines[last - 1] += "\n"
    return "".join(lines[:last] + block + tail + lines[end:])


def main(argv: list[str]) -> int:
    server, config = Path(argv[0]), Path(argv[1])
    answers = yaml.safe_load((server / ".copier-answers.yml").read_text())
    slug, package = answers["slug"], answers["package"]
    text = config.read_text()
    servers = (yaml.safe_load(text) or {}).get("mcpServers") or {}
    if slug in servers:
        sys.stderr.write(f"{config}: {slug} is already docked; left as it is\n")
        return 0
    try:
        new = docked(text, slug, package)
    except ValueError as exc:
        sys.stderr.write(f"{config}: cannot dock {slug}: {exc}; add it by hand:\n{entry(slug, package)}")
        return 2
    if slug not in ((yaml.safe_load(new) or {}).get("mcpServers") or {}):
        sys.stderr.write(f"{config}: cannot dock {slug} safely; add it by hand:\n{entry(slug, package)}")
        return 2
    config.write_text(new)
    sys.stderr.write(f"{config}: docked {slug} (python -m {package}); the gateway reloads it when running\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
