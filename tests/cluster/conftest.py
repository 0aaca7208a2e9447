"""Fixtures over `harness.py`: real redis-server, nginx and replica processes, stopped after use.

- `redis_server` (module): one running `RedisServer` shared by a module's tests (each test takes its own
  `namespace`, so they never see each other's keys).
- `start_redis(password=None) -> RedisServer` (function): a fresh server per call, for tests that kill,
  stop or pause it; all are stopped at the end of the test.
- `redis_client` (function, async): a `gateway.cluster.connection.connect`ed client on `redis_server`, closed after.
- `namespace` (function): a unique cluster namespace.
- `start_nginx(upstreams, **kwargs) -> Nginx` (function): nginx with the shipped example in front of
  `upstreams` (`["127.0.0.1:PORT", …]`).
- `start_replicas(argv, count, env=None, health_path="/healthz") -> Replicas` (function): see harness.

When a test fails, the logs of every process it started are printed with the failure.
When redis-server or nginx is missing, the fixtures install them with `make services` (root) or skip saying so.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateway.cluster.connection import connect
from tests.cluster.harness import ROOT, Nginx, RedisServer, Replicas, find_binary

_checked: dict[str, str | None] = {}
_FAILED = pytest.StashKey[bool]()


def _require(binary: str) -> str:
    """The binary's path; installs Debian's redis-server and nginx with `make services` once if missing."""
    if binary not in _checked:
        if find_binary(binary) is None:
            done = subprocess.run(["make", "-s", "services"], cwd=ROOT, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                sys.stderr.write(done.stdout + done.stderr)
        _checked[binary] = find_binary(binary)
    path = _checked[binary]
    if path is None:
        pytest.skip(f"{binary} is not installed and `make services` could not install it (needs apt-get as root)")
    return path


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash.setdefault(_FAILED, False)
        if report.failed:
            item.stash[_FAILED] = True


def _dump_if_failed(request: pytest.FixtureRequest, logs: Callable[[], str]) -> None:
    if request.node.stash.get(_FAILED, False):
        sys.stderr.write(logs() + "\n")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"), binary=_require("redis-server")).start()
    yield server
    server.stop()


@pytest.fixture
def start_redis(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., RedisServer]]:
    started: list[RedisServer] = []

    def start(password: str | None = None) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(started)}", password=password, binary=_require("redis-server"))
        started.append(server)
        return server.start()

    yield start
    _dump_if_failed(request, lambda: "\n".join(s.log() for s in started))
    for server in started:
        server.stop()


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = await connect(redis_server.url)
    yield client
    async with asyncio.timeout(5):
        await client.aclose()


@pytest.fixture
def start_nginx(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Nginx]]:
    started: list[Nginx] = []

    def start(upstreams: list[str], **kwargs: Any) -> Nginx:
        proxy = Nginx(tmp_path / f"nginx-{len(started)}", upstreams, **kwargs)
        started.append(proxy)
        return proxy

    _require("nginx")
    yield start
    _dump_if_failed(request, lambda: "\n".join(p.log() for p in started))
    for proxy in started:
        proxy.stop()


@pytest.fixture
def start_replicas(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Replicas]]:
    started: list[Replicas] = []

    def start(argv: list[str], count: int, **kwargs: Any) -> Replicas:
        group = Replicas(argv, count, tmp_path / f"replicas-{len(started)}", start=False, **kwargs)
        started.append(group)
        try:
            group.start()
        except RuntimeError:
            group.stop()
            raise
        return group

    yield start
    _dump_if_failed(request, lambda: "\n".join(g.logs() for g in started))
    for group in started:
        group.stop()
