"""Entry point: `python -m mcp_eval_server` and the `mcp-eval-server` console script run the server over stdio.

Logging goes to stderr: stdout carries the MCP wire.
"""

from __future__ import annotations

import argparse
import logging
import sys


def main() -> None:
    """Configure stderr logging and serve MCP over stdio until the client closes the pipe."""
    from mcp_eval_server import __version__

    parser = argparse.ArgumentParser(prog="mcp-eval-server", description="Evaluation MCP server over stdio.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.parse_args()
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    from mcp_eval_server.server import build_server

    build_server().run()


if __name__ == "__main__":
    main()
