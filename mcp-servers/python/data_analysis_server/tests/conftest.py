"""Shared fixtures: an isolated service per test, an in-process MCP client, reference data paths."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest
import scipy
from mcp import Client
from mcp.types import CallToolResult

from data_analysis_server import server
from data_analysis_server.config import Settings
from data_analysis_server.service import AnalysisService

PACKAGE_DIR = Path(__file__).resolve().parent.parent
CALL_TIMEOUT = 60  # seconds; no in-process tool call in this suite should take more than ~2
SCIPY_DATA = Path(os.path.dirname(scipy.__file__)) / "stats" / "tests" / "data"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Roots = a fresh temp dir and sample_data; private URLs refused (the production default)."""
    return Settings(roots=[tmp_path.resolve(), (PACKAGE_DIR / "sample_data").resolve()], allow_private_urls=False)


@pytest.fixture
def service(settings: Settings) -> AnalysisService:
    return AnalysisService(settings)


@pytest.fixture
def mcp_service(service: AnalysisService, monkeypatch: pytest.MonkeyPatch) -> Iterator[AnalysisService]:
    """Point the MCP tools at the isolated service."""
    monkeypatch.setattr(server, "service", service)
    yield service


@pytest.fixture
async def client(mcp_service: AnalysisService) -> AsyncIterator[Client]:
    async with Client(server.mcp) as c:
        yield c


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; return its structuredContent."""
    with anyio.fail_after(CALL_TIMEOUT):
        result: CallToolResult = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
    assert result.structured_content is not None
    return result.structured_content


async def call_error(client: Client, tool: str, **arguments: Any) -> str:
    """Call a tool that must fail; return the error text."""
    with anyio.fail_after(CALL_TIMEOUT):
        result: CallToolResult = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool} unexpectedly succeeded: {result.structured_content}"
    return result.content[0].text  # type: ignore[union-attr]


def nist_sections(path: Path) -> tuple[list[str], list[list[str]]]:
    """(header lines, data rows) of a NIST StRD .dat file: data follows the last line starting 'Data:'."""
    lines = path.read_text().splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("Data:")) + 1
    return lines[:start], [line.split() for line in lines[start:] if line.strip()]


CSV = b"a,b\n1,2\n3,4\n"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server API
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/data.csv")
            self.end_headers()
            return
        body = CSV * (10_000 if self.path == "/big.csv" else 1)
        self.send_response(200 if self.path != "/missing" else 404)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_base() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
