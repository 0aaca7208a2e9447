"""Reaching Redis: the `gateway.state` URL, a client that never hangs, and a health watch.

`parse_state_url` turns the configured value into a `StateURL` (None for `memory`): `redis://[[user]:pass@]
host[:port][/db]`, `rediss://…` (TLS; `?ssl_ca_certs=PATH`, `?ssl_cert_reqs=none|optional|required`), or
`unix://[[user]:pass@]/path/to/redis.sock[?db=N]`. Anything else is a `ValueError` that says what to write.
The password is kept out of every `repr`/`str` and message: `StateURL.redacted` shows `***` in its place.

`client` builds a `redis.asyncio.Redis` whose every socket has a timeout and that retries a command at most
once, and only when the connection broke (a pooled connection left over from before a Redis restart);
redis-py's default retries timeouts ten times with back-off, which is how a frozen Redis would hang a
request for a minute. Replies are decoded to `str`. `connect` does that and proves the server answers (PING,
then `INFO server` for the version: 6.2 or newer is needed), raising `StateUnavailable` with a message that
says what to fix. `dedicated` gives a second client on the same server with its own connections, for the
blocking reads of the event reader and the bus.

`Health` PINGs every `interval` with a short timeout and reports `ok`, `reason` and `since`; registered
callbacks run on every change, and it recovers by itself when Redis answers again. It never raises.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import redis.asyncio as aioredis
import redis.exceptions as rexc
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

logger = structlog.get_logger(__name__)

DEFAULT_PORT = 6379
MINIMUM_VERSION = (6, 2)  # exclusive XRANGE bounds, used by events.py, came with 6.2
_SCHEMES = ("redis", "rediss", "unix")
_CERT_REQS = {"none": "none", "optional": "optional", "required": "required"}
_EXAMPLES = "redis://host:6379/0, rediss://:PASSWORD@host:6380/0 or unix:///run/redis/redis.sock?db=0"


class StateUnavailable(Exception):
    """Redis cannot be used; `str(error)` says why and what to fix (never the password)."""


@dataclass(frozen=True, repr=False)
class StateURL:
    """Where the shared state lives. `password` never shows in `repr`, `str` or `redacted`."""

    scheme: str
    host: str | None
    port: int | None
    path: str | None
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, compare=False)
    options: tuple[tuple[str, str], ...] = ()

    @property
    def where(self) -> str:
        """`host:port` or the socket path: what a message names as the server."""
        if self.scheme == "unix":
            return self.path or ""
        return f"{self.host}:{self.port}"

    @property
    def redacted(self) -> str:
        """The URL with `***` for the password."""
        auth = ""
        if self.username or self.password:
            auth = quote(self.username or "", safe="") + (":***" if self.password else "") + "@"
        query = "&".join(f"{k}={quote(v, safe='/')}" for k, v in self.options)
        if self.scheme == "unix":
            query = "&".join(filter(None, [f"db={self.db}", query]))
            return f"unix://{auth}{self.path}?{query}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{self.scheme}://{auth}{host}:{self.port}/{self.db}" + (f"?{query}" if query else "")

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"StateURL({self.redacted!r})"


def parse_state_url(value: str) -> StateURL | None:
    """`memory` → None; a Redis URL → `StateURL`.

    Raises:
        ValueError: the value is neither; the message says what to write (and never repeats a password).
    """
    text = value.strip()
    if text == "memory":
        return None
    scheme = text.partition("://")[0].lower() if "://" in text else ""
    if scheme not in _SCHEMES:
        shown = f"a {scheme}:// URL" if scheme else repr(text) if "@" not in text else "that value"
        raise ValueError(f"gateway.state must be `memory` or a Redis URL ({_EXAMPLES}); got {shown}")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise ValueError(f"gateway.state is not a valid {scheme}:// URL ({error}); write e.g. {_EXAMPLES}") from None
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if username and password is None:
        raise ValueError(
            "gateway.state names a user but no password: write redis://:PASSWORD@host (password only) or "
            "redis://USER:PASSWORD@host (ACL user), e.g. with the password from ${REDIS_PASSWORD}"
        )
    options = parse_qsl(parts.query, keep_blank_values=True)
    db, options = _db(parts.path, options, scheme)
    kept = _options(options, scheme)
    if scheme == "unix":
        if not parts.path or parts.path == "/":
            raise ValueError("gateway.state unix:// needs the socket's path, e.g. unix:///run/redis/redis.sock?db=0")
        return StateURL(scheme, None, None, parts.path, db, username, password or None, kept)
    if not parts.hostname:
        raise ValueError(f"gateway.state {scheme}:// needs a host, e.g. {scheme}://127.0.0.1:6379/0")
    return StateURL(scheme, parts.hostname, port or DEFAULT_PORT, None, db, username, password or None, kept)


def _db(path: str, options: list[tuple[str, str]], scheme: str) -> tuple[int, list[tuple[str, str]]]:
    given = [v for k, v in options if k == "db"]
    rest = [(k, v) for k, v in options if k != "db"]
    text = given[-1] if given else ("" if scheme == "unix" else path.strip("/"))
    if text == "":
        return 0, rest
    if not text.isdigit():
        raise ValueError(f"gateway.state database must be a number (…/0, …/1, ?db=2); got {text!r}")
    return int(text), rest


def _options(options: list[tuple[str, str]], scheme: str) -> tuple[tuple[str, str], ...]:
    known = ("ssl_ca_certs", "ssl_cert_reqs") if scheme == "rediss" else ()
    for key, val in options:
        if key not in known:
            allowed = ", ".join(("db", *known))
            raise ValueError(f"gateway.state option {key!r} is not understood; the options are: {allowed}")
        if key == "ssl_cert_reqs" and val not in _CERT_REQS:
            raise ValueError(f"gateway.state ssl_cert_reqs must be none, optional or required; got {val!r}")
    return tuple(options)


def client(url: StateURL | str, *, timeout: float = 2.0, socket_timeout: float | None = None) -> aioredis.Redis:
    """A client (no I/O yet) whose connects and reads time out after `timeout` (`socket_timeout` for reads).

    Raises:
        ValueError: `url` is a string that is not a Redis URL, or is `memory`.
    """
    parsed = _parsed(url)
    common: dict[str, Any] = {
        "db": parsed.db,
        "username": parsed.username,
        "password": parsed.password,
        "socket_timeout": socket_timeout if socket_timeout is not None else timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), retries=1, supported_errors=(rexc.ConnectionError,)),
        "decode_responses": True,
        "client_name": "harbor",
    }
    if parsed.scheme == "unix":
        return aioredis.Redis(unix_socket_path=parsed.path, **common)
    extra: dict[str, Any] = {}
    if parsed.scheme == "rediss":
        options = dict(parsed.options)
        extra = {"ssl": True, "ssl_cert_reqs": options.get("ssl_cert_reqs", "required")}
        if "ssl_ca_certs" in options:
            extra["ssl_ca_certs"] = options["ssl_ca_certs"]
    return aioredis.Redis(host=parsed.host or "", port=parsed.port or DEFAULT_PORT, **common, **extra)


def _parsed(url: StateURL | str) -> StateURL:
    parsed = parse_state_url(url) if isinstance(url, str) else url
    if parsed is None:
        raise ValueError("gateway.state is `memory`: there is no Redis to connect to")
    return parsed


async def connect(url: StateURL | str, *, timeout: float = 2.0) -> aioredis.Redis:
    """A client proven to answer: PING, then a version check.

    Raises:
        ValueError: `url` is not a Redis URL.
        StateUnavailable: Redis is unreachable, refuses the credentials, lacks the database, is older than
            6.2, or does not answer within `timeout`; the message says what to fix.
    """
    parsed = _parsed(url)
    redis = client(parsed, timeout=timeout)
    try:
        async with asyncio.timeout(timeout * 2):
            await redis.ping()
            version = str((await redis.info("server")).get("redis_version", "0"))
    except (rexc.RedisError, OSError, TimeoutError) as error:
        await redis.aclose()
        raise StateUnavailable(describe(error, parsed.where, timeout)) from None
    if _version(version) < MINIMUM_VERSION:
        await redis.aclose()
        raise StateUnavailable(f"Redis {version} at {parsed.where} is too old: Harbor needs Redis 6.2 or newer")
    return redis


def _version(text: str) -> tuple[int, ...]:
    numbers = []
    for part in text.split(".")[:2]:
        numbers.append(int(part) if part.isdigit() else 0)
    return tuple(numbers)


def dedicated(redis: aioredis.Redis, *, socket_timeout: float | None = None) -> aioredis.Redis:
    """A second client on the same server and credentials with a pool of its own (for blocking reads)."""
    pool = redis.connection_pool
    kwargs = dict(pool.connection_kwargs)
    if socket_timeout is not None:
        kwargs["socket_timeout"] = socket_timeout
    return aioredis.Redis(connection_pool=aioredis.ConnectionPool(connection_class=pool.connection_class, **kwargs))


def where(redis: aioredis.Redis) -> str:
    """`host:port` or socket path of a client, for messages."""
    kwargs = redis.connection_pool.connection_kwargs
    return str(kwargs["path"]) if "path" in kwargs else f"{kwargs.get('host')}:{kwargs.get('port')}"


def describe(error: BaseException, at: str, timeout: float | None = None) -> str:
    """What went wrong reaching Redis at `at`, and what to fix, in one sentence (no secret)."""
    text = str(error)
    fix = "start it or fix gateway.state"
    if isinstance(error, rexc.AuthenticationError) or "WRONGPASS" in text or "NOAUTH" in text:
        if "NOAUTH" in text or "Authentication required" in text or "already authenticated" in text:
            return f"Redis at {at} requires a password: put it in gateway.state (redis://:PASSWORD@host:port/db)"
        if "no password is set" in text or "without any password configured" in text:
            return f"Redis at {at} has no password set: remove the password from gateway.state"
        return f"Redis at {at} refused the credentials (wrong password or user): fix the password in gateway.state"
    if isinstance(error, rexc.ResponseError) and "DB index is out of range" in text:
        return f"Redis at {at} has no such database number: use one below its `databases` setting in gateway.state"
    if isinstance(error, rexc.BusyLoadingError):
        return f"Redis at {at} is loading its dataset: wait until it has"
    if isinstance(error, rexc.NoPermissionError):
        return f"Redis at {at} denies the user a command Harbor needs ({text}): grant it in the ACL"
    if isinstance(error, TimeoutError | asyncio.TimeoutError | rexc.TimeoutError):
        within = f" within {timeout:g} s" if timeout else ""
        return f"Redis at {at} did not answer{within} (frozen or overloaded?): {fix}"
    cause = _root(error)
    if isinstance(cause, ConnectionRefusedError) or "Connect call failed" in text or "refused" in text.lower():
        return f"cannot reach Redis at {at} (connection refused): {fix}"
    if isinstance(cause, FileNotFoundError) or "No such file" in text:
        return f"cannot reach Redis at {at} (no such socket): {fix}"
    if isinstance(cause, ssl.SSLError) or "SSL" in text:
        return f"TLS with Redis at {at} failed ({text}): check rediss:// and ssl_ca_certs in gateway.state"
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return f"cannot resolve the Redis host of {at}: fix gateway.state"
    if isinstance(error, rexc.ConnectionError | OSError):
        return f"lost the connection to Redis at {at} ({text or type(error).__name__}): {fix}"
    return f"Redis at {at} failed: {text or type(error).__name__}"


def _root(error: BaseException) -> BaseException:
    seen = error
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    return seen


async def cancel_and_wait(task: asyncio.Task[Any], *, timeout: float = 5.0) -> None:
    """Cancel `task` and wait until it has ended, cancelling again while it has not (at most `timeout` s).

    Once is not enough on Python 3.11: redis-py wraps socket writes in `asyncio.wait_for`, which there
    swallows a cancellation that lands as the write completes (3.12's `wait_for` does not), and the
    task then carries on into its next blocking read.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not task.done():
        if loop.time() > deadline:
            logger.warning("task_would_not_stop", task=task.get_name())
            return
        task.cancel()
        await asyncio.wait({task}, timeout=0.05)
    if not task.cancelled() and task.exception() is not None:
        logger.warning("task_ended_with_error", task=task.get_name(), error=repr(task.exception()))


class Health:
    """Is Redis answering? PINGs every `interval` s, each bounded by `timeout` s (0.3 s by default).

    A dead Redis is seen at the next PING, a frozen one when that PING times out: within `interval +
    timeout` (0.8 s by default). A PING that a healthy Redis needs more than 0.3 s for is an outage too.

    Starts `ok` (a client from `connect` has just answered); `reason` is None while ok, else what
    `describe` says; `since` is the `time.time()` of the last change. Callbacks get the Health itself.
    """

    def __init__(self, redis: aioredis.Redis, *, interval: float = 0.5, timeout: float = 0.3) -> None:
        self._redis = redis
        self.interval = interval
        self.timeout = timeout
        self.ok = True
        self.reason: str | None = None
        self.since = time.time()
        self._callbacks: list[Callable[[Health], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    def on_change(self, callback: Callable[[Health], None]) -> None:
        """Call `callback(health)` after every change of `ok`."""
        self._callbacks.append(callback)

    def start(self) -> None:
        """Begin watching (in the running loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="harbor-redis-health")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def check(self) -> bool:
        """One PING now; updates the state and returns `ok`."""
        try:
            async with asyncio.timeout(self.timeout):
                await self._redis.ping()
        except (rexc.RedisError, OSError, TimeoutError) as error:
            self._set(False, describe(error, where(self._redis), self.timeout))
        else:
            self._set(True, None)
        return self.ok

    async def wait(self, ok: bool, timeout: float) -> None:
        """Return once `self.ok == ok`.

        Raises:
            TimeoutError: it did not happen within `timeout` s.
        """
        async with asyncio.timeout(timeout):
            while self.ok != ok:
                self._changed.clear()
                await self._changed.wait()

    async def _watch(self) -> None:
        while True:
            started = time.monotonic()
            await self.check()
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def _set(self, ok: bool, reason: str | None) -> None:
        if ok == self.ok and reason == self.reason:
            return
        changed = ok != self.ok
        self.ok, self.reason = ok, reason
        if not changed:
            return
        self.since = time.time()
        if ok:
            logger.info("redis_back", at=where(self._redis))
        else:
            logger.warning("redis_unavailable", reason=reason)
        self._changed.set()
        for callback in list(self._callbacks):
            try:
                callback(self)
            except Exception:
                logger.exception("redis_health_callback_failed")
