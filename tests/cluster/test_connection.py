"""gateway.cluster.connection against a real redis-server: URLs, errors that say what to fix, health."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from gateway.cluster.connection import Health, StateUnavailable, client, connect, parse_state_url
from tests.cluster.harness import RedisServer, free_port

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


def test_memory_means_no_redis() -> None:
    assert parse_state_url("memory") is None
    assert parse_state_url("  memory ") is None


@pytest.mark.parametrize(
    ("value", "scheme", "where", "db"),
    [
        ("redis://127.0.0.1:6390/3", "redis", "127.0.0.1:6390", 3),
        ("redis://redis.internal", "redis", "redis.internal:6379", 0),
        ("rediss://:pw@cache:6380/1?ssl_cert_reqs=none", "rediss", "cache:6380", 1),
        ("unix:///run/redis/redis.sock?db=2", "unix", "/run/redis/redis.sock", 2),
        ("redis://[::1]:7000/0", "redis", "::1:7000", 0),
    ],
)
def test_redis_urls_are_understood(value: str, scheme: str, where: str, db: int) -> None:
    url = parse_state_url(value)
    assert url is not None
    assert (url.scheme, url.where, url.db) == (scheme, where, db)


def test_the_password_never_shows() -> None:
    url = parse_state_url("redis://app:s%40cret-pw@10.0.0.5:6379/4")
    assert url is not None
    assert url.password == "s@cret-pw" and url.username == "app"
    for shown in (repr(url), str(url), url.redacted, f"{url}", repr([url])):
        assert "cret" not in shown
    assert url.redacted == "redis://app:***@10.0.0.5:6379/4"
    unix = parse_state_url("unix://:hunter2@/tmp/r.sock")
    assert unix is not None and "hunter2" not in repr(unix) and unix.password == "hunter2"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("postgres://db/1", "must be `memory` or a Redis URL"),
        ("memroy", "must be `memory` or a Redis URL"),
        ("", "must be `memory` or a Redis URL"),
        ("redis://:pw@host:notaport/0", "not a valid redis:// URL"),
        ("redis://host:6379/zero", "database must be a number"),
        ("redis://host:6379/0?timeout=3", "option 'timeout' is not understood"),
        ("redis:///0", "needs a host"),
        ("unix://", "needs the socket's path"),
        ("redis://user@host", "names a user but no password"),
        ("rediss://h?ssl_cert_reqs=maybe", "ssl_cert_reqs must be none, optional or required"),
    ],
)
def test_bad_urls_say_what_to_fix(value: str, says: str) -> None:
    with pytest.raises(ValueError, match=r".*") as caught:
        parse_state_url(value)
    assert says in str(caught.value)
    assert "pw@" not in str(caught.value)


def test_a_malformed_url_with_a_password_does_not_repeat_it() -> None:
    with pytest.raises(ValueError) as caught:
        parse_state_url("http://:topsecret@host")
    assert "topsecret" not in str(caught.value)


async def test_connect_answers_and_checks_the_version(redis_server: RedisServer) -> None:
    redis = await connect(redis_server.url)
    try:
        assert await redis.ping() is True
        await redis.set("harbor:test:k", "v")
        assert await redis.get("harbor:test:k") == "v"  # replies are str
    finally:
        await redis.aclose()


async def test_connect_over_the_unix_socket(redis_server: RedisServer) -> None:
    redis = await connect(redis_server.unix_url)
    try:
        assert await redis.ping() is True
    finally:
        await redis.aclose()


async def test_connection_refused_says_start_it_or_fix_the_setting() -> None:
    port = free_port()
    with pytest.raises(StateUnavailable) as caught:
        await connect(f"redis://127.0.0.1:{port}/0", timeout=1.0)
    assert str(caught.value) == (
        f"cannot reach Redis at 127.0.0.1:{port} (connection refused): start it or fix gateway.state"
    )


async def test_a_missing_socket_is_named(tmp_path: object) -> None:
    with pytest.raises(StateUnavailable, match="no such socket"):
        await connect(f"unix://{tmp_path}/absent.sock", timeout=1.0)


async def test_wrong_and_missing_passwords_are_told_apart(start_redis: Callable[..., RedisServer]) -> None:
    server = start_redis(password="right-one")
    with pytest.raises(StateUnavailable) as wrong:
        await connect(f"redis://:wrong-one@127.0.0.1:{server.port}/0")
    assert "wrong password" in str(wrong.value) and "wrong-one" not in str(wrong.value)
    with pytest.raises(StateUnavailable, match="requires a password"):
        await connect(f"redis://127.0.0.1:{server.port}/0")
    redis = await connect(server.url)
    assert await redis.ping() is True
    await redis.aclose()


async def test_a_database_out_of_range_is_told(redis_server: RedisServer) -> None:
    with pytest.raises(StateUnavailable, match="no such database number"):
        await connect(f"redis://127.0.0.1:{redis_server.port}/999")


async def test_a_frozen_redis_times_out_instead_of_hanging(start_redis: Callable[..., RedisServer]) -> None:
    server = start_redis()
    server.pause()
    started = time.monotonic()
    try:
        with pytest.raises(StateUnavailable, match=r"did not answer within 0\.5 s"):
            await connect(server.url, timeout=0.5)
        assert time.monotonic() - started < 2.0
        redis = client(server.url, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(Exception, match="Timeout"):
            await redis.get("x")  # a command on a frozen server fails within the socket timeout, no retries
        assert time.monotonic() - started < 1.5
        await redis.aclose()
    finally:
        server.resume()


async def test_health_goes_bad_within_a_second_and_comes_back_by_itself(
    start_redis: Callable[..., RedisServer],
) -> None:
    server = start_redis()
    redis = await connect(server.url, timeout=0.5)
    health = Health(redis)  # the defaults: a PING every 0.5 s, each given 0.3 s
    changes: list[tuple[bool, str | None]] = []
    health.on_change(lambda h: changes.append((h.ok, h.reason)))
    health.start()
    try:
        server.kill()
        killed = time.monotonic()
        await health.wait(False, timeout=3)
        assert time.monotonic() - killed < 1.0
        assert health.reason is not None and f"127.0.0.1:{server.port}" in health.reason
        server.start()
        await health.wait(True, timeout=3)
        assert health.reason is None
        server.pause()
        paused = time.monotonic()
        await health.wait(False, timeout=3)
        assert time.monotonic() - paused < 1.0
        assert "did not answer within 0.3 s" in (health.reason or "")
        server.resume()
        await health.wait(True, timeout=3)
        assert [ok for ok, _ in changes] == [False, True, False, True]
        assert health.since <= time.time()
    finally:
        server.resume()
        await health.stop()
        await redis.aclose()


async def test_a_client_survives_a_redis_restart(start_redis: Callable[..., RedisServer]) -> None:
    server = start_redis()
    redis = await connect(server.url, timeout=0.5)
    await redis.set("a", "1")
    server.kill()
    server.start()
    # the pooled connection is dead; the one retry on a broken connection makes the next command work
    assert await redis.ping() is True
    assert await redis.get("a") is None  # no persistence: state is gone, which the callers must handle
    await redis.aclose()
    await asyncio.sleep(0)


async def _fake_redis(version: str) -> tuple[asyncio.AbstractServer, int]:
    """A socket that speaks just enough RESP to pass for a Redis of `version`."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            if not line.startswith(b"*"):
                continue
            parts = []
            for _ in range(int(line[1:])):
                await reader.readline()
                parts.append((await reader.readline()).strip().upper())
            if parts[0] == b"PING":
                writer.write(b"+PONG\r\n")
            elif parts[0] == b"INFO":
                body = f"# Server\r\nredis_version:{version}\r\n".encode()
                writer.write(b"$%d\r\n%s\r\n" % (len(body), body))
            else:
                writer.write(b"+OK\r\n")
            await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_a_redis_older_than_6_2_is_refused() -> None:
    server, port = await _fake_redis("6.0.16")
    try:
        with pytest.raises(StateUnavailable, match=r"Redis 6\.0\.16 at 127\.0\.0\.1:\d+ is too old: .*6\.2 or newer"):
            await connect(f"redis://127.0.0.1:{port}/0")
    finally:
        server.close()
    server, port = await _fake_redis("6.2.14")
    try:
        redis = await connect(f"redis://127.0.0.1:{port}/0")
        await redis.aclose()
    finally:
        server.close()
