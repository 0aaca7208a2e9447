"""The audit trail: one JSON line per tool call, with an argument digest and never a secret.

Each record holds `time` (ISO-8601 UTC, milliseconds, `Z`), `identity`, `server`, `tool`,
`arguments_sha256` (SHA-256 of the canonical JSON of the arguments: sorted keys, no spaces, so the digest
does not depend on key order), `arguments` only when `include_arguments` is set, `duration_ms`, `outcome`
("ok", "tool_error", "error:<code>", "denied", "rate_limited", ...), `response_bytes` and `session`.

Redaction: with `include_arguments`, the value of every key that matches a `redact_keys` entry, at any
depth (inside lists too), becomes "[redacted]". Keys and entries are compared as lower-case words (split
on `_`, `-`, `.`, spaces and camelCase): a key matches when the entry's words appear in it consecutively,
or when both are equal with separators removed. So `token` matches `GITHUB_TOKEN` and `accessToken` but
not `max_tokens`; `api_key` matches `X-Api-Key` and `apiKey`; `apikey` matches `APIKEY`.

Cost: `record` runs once per call on the event loop, so it only queues the call's fields (a tuple); the
records are built — time formatted, argument digest, response size, JSON line — in one batch when the queue
is written. Batching is what makes the audit cheap: done one call at a time between everything else the
loop does, the same work cost about twice as much CPU (cold caches), plus one system call per call.

I/O: the file is opened in append mode (parent folders created). Called from a running event loop, the
queue is written with one unbuffered `write` on the loop's next turn (`call_soon`: after the reply that caused
it is on its way, so the audit costs the caller no latency): the records of one turn — under load, every call
finished in it — share one batch, and a record is on disk as soon as the callbacks already queued have run, so a
client that reads the file after its reply finds the line (records still queued when the process is killed
with SIGKILL are lost; `close` and a normal stop write them). A minimum interval between writes (5 ms, tried)
made batches larger but left a sequential caller's line unwritten for up to 5 ms, and measured no faster (6
interleaved rounds).
The queue holds at most `MAX_QUEUED` records, past which it is written at once — nothing is ever dropped.
Called without a loop (or after `close`), a record is written
before `record` returns. After construction no I/O error ever reaches the caller: it is logged once
(structlog, stderr), and the file is reopened on the next write.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import structlog

from gateway.config import AuditConfig

logger = structlog.get_logger(__name__)

REDACTED = "[redacted]"
MAX_QUEUED = 10_000  # lines waiting for the next write; past that a record is written at once
_MILLIS = [f"{ms:03d}Z" for ms in range(1000)]  # the end of a timestamp, by millisecond
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _words(key: str) -> tuple[str, ...]:
    return tuple(word.lower() for word in _WORD.findall(key))


def canonical_json(value: Any) -> bytes:
    """Compact JSON with sorted keys at every depth: the bytes the argument digest is taken over."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:  # integers beyond 64 bits or other values orjson refuses
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        return text.encode("utf-8", "surrogatepass")


def arguments_digest(arguments: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of the arguments."""
    return hashlib.sha256(canonical_json(arguments)).hexdigest()


class Redactor:
    """Replaces the values of secret-looking keys, at any depth, with "[redacted]"."""

    def __init__(self, keys: list[str]) -> None:
        self._patterns = [_words(key) for key in keys if _words(key)]

    def matches(self, key: str) -> bool:
        """True when `key` names a secret according to the configured entries."""
        words = _words(key)
        joined = "".join(words)
        return any(joined == "".join(pattern) or _contains(words, pattern) for pattern in self._patterns)

    def redact(self, value: Any) -> Any:
        """A copy of `value` with secret-looking keys' values redacted."""
        if isinstance(value, dict):
            return {
                key: REDACTED if isinstance(key, str) and self.matches(key) else self.redact(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.redact(item) for item in value]
        return value


def _contains(words: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    size = len(pattern)
    return any(words[start : start + size] == pattern for start in range(len(words) - size + 1))


_Fields = tuple[float, str, str, str, Any, float, str, Any, "str | None", "str | None"]


class AuditLog:
    """Appends audit records to a JSONL file (when `path` is set); see the module docstring."""

    def __init__(self, config: AuditConfig, clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._clock = clock
        self._redactor = Redactor(config.redact_keys) if config.include_arguments else None
        self._file: BinaryIO | None = None
        self._failing = False
        self._closed = False
        self._lock = threading.Lock()
        self._queued: list[_Fields] = []
        self._flush_scheduled = False
        self._second, self._second_text = -1, ""
        self.last_error: str | None = None
        if config.path is not None:
            self._open()

    @property
    def enabled(self) -> bool:
        """Whether records are written anywhere (a path is configured)."""
        return self._config.path is not None

    def record(
        self,
        *,
        identity: str,
        server: str,
        tool: str,
        arguments: Any,
        duration_ms: float,
        outcome: str,
        response: Any = None,
        session: str | None = None,
        child: str | None = None,
    ) -> None:
        """Queue one call's record; `response` is the reply message whose encoded size is recorded (None for a
        call refused before it reached a server). Nothing happens without a path or after `close`."""
        if self._config.path is None or self._closed:
            return
        queued = self._queued
        now = self._clock()
        queued.append((now, identity, server, tool, arguments, duration_ms, outcome, response, session, child))
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or len(queued) > MAX_QUEUED:
            self.flush()
        elif not self._flush_scheduled:  # the first record of this turn: the turn's records share one write
            self._flush_scheduled = True
            loop.call_soon(self.flush)

    def close(self) -> None:
        """Write what is queued and close the file; later records are not written."""
        self.flush()
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._close_quietly(self._file)
                self._file = None

    def flush(self) -> None:
        """Build every queued record and write them now, in order, with one system call."""
        self._flush_scheduled = False
        if not self._queued:
            return
        batch, self._queued = self._queued, []
        lines = b"".join([canonical_line(self._entry(fields)) for fields in batch])
        with self._lock:
            if self._file is None and not self._open():
                return
            assert self._file is not None
            try:
                view = memoryview(lines)
                while view:  # a raw write may be partial
                    view = view[self._file.write(view) or 0 :]
            except (OSError, ValueError) as exc:
                self._fail("write", exc)
                self._close_quietly(self._file)
                self._file = None
                return
            self._recovered()

    def _entry(self, fields: _Fields) -> dict[str, Any]:
        """One record, fields in the documented order."""
        now, identity, server, tool, arguments, duration_ms, outcome, response, session, child = fields
        seconds = int(now)
        if seconds != self._second:  # the date part is formatted once a second
            self._second, self._second_text = seconds, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds))
        entry: dict[str, Any] = {
            "time": self._second_text + _MILLIS[int((now - seconds) * 1000)],
            "identity": identity,
            "server": server,
            "tool": tool,
            "arguments_sha256": arguments_digest(arguments),
        }
        if self._redactor is not None:
            entry["arguments"] = self._redactor.redact(arguments)
        entry["duration_ms"] = round(duration_ms, 3)
        entry["outcome"] = outcome
        entry["response_bytes"] = len(canonical_json(response)) if response is not None else 0
        entry["session"] = session
        if child is not None:
            entry["child"] = child
        return entry

    def _open(self) -> bool:
        path = Path(str(self._config.path))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("ab", buffering=0)
        except OSError as exc:
            self._fail("open", exc)
            return False
        return True

    def _fail(self, action: str, exc: Exception) -> None:
        self.last_error = f"cannot {action} audit log {self._config.path}: {exc}"
        if not self._failing:
            logger.warning("audit log failing; records are not being written", action=action, error=str(exc))
        self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            logger.warning("audit log recovered", path=self._config.path)
        self._failing = False
        self.last_error = None

    @staticmethod
    def _close_quietly(file: BinaryIO) -> None:
        try:
            file.close()
        except OSError as exc:
            logger.warning("audit log close failed", error=str(exc))


def canonical_line(entry: dict[str, Any]) -> bytes:
    """One audit line: the record as compact JSON plus a newline (field order kept)."""
    try:
        return orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return (json.dumps(entry, ensure_ascii=False, default=str) + "\n").encode("utf-8", "surrogatepass")
