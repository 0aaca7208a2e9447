"""Shared fixtures: async tests run under anyio on asyncio; PACKAGE_DIR is this package's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
