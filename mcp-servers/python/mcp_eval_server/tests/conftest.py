"""Shared fixtures: anyio on asyncio, temp SQLite, settings pointing judges at a fake provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_eval_server.config import Settings, load_settings
from tests.fake_provider import FakeProvider


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake


def make_settings(tmp_path: Path, provider_url: str | None = None, **env: str) -> Settings:
    """Settings from an explicit environment (never the developer's real keys)."""
    base = {"MCP_EVAL_DB": str(tmp_path / "eval.sqlite3"), "MCP_EVAL_DATA_ROOTS": str(tmp_path), "HOME": str(tmp_path)}
    if provider_url:
        base |= {
            "OPENAI_BASE_URL": provider_url + "/v1",
            "OPENAI_API_KEY": "sk-test-openai-SECRET-0123456789",
            "ANTHROPIC_BASE_URL": provider_url,
            "ANTHROPIC_API_KEY": "sk-ant-test-SECRET-0123456789",
        }
    return load_settings(base | env)
