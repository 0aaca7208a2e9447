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

I/O: the file is opened in append mode (parent folders created). Called from a running event loop, a record
is queued and the queue is written with one unbuffered `write` as soon as the loop gets to it (`call_soon`:
after the reply that caused it is on its way, so the audit costs the caller no latency, and many records of
one busy loop turn cost one system call); the queue holds at most `MAX_QUEUED` lines, past which the record
is written at once — nothing is ever dropped. Called without a loop (or after `close`), a record is written
before `record` returns. After construction no I/O error ever reaches the caller: it is logged once
(structlog, stderr), the record is still returned, and the file is reopened on the next write.
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


class AuditLog:
    """Appends audit records to a JSONL file (when `path` is set) and returns them to the caller."""

    def __init__(self, config: AuditConfig, clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._clock = clock
        self._redactor = Redactor(config.redact_keys)
        self._file: BinaryIO | None = None
        self._failing = False
        self._closed = False
        self._lock = threading.Lock()
        self._queued: list[bytes] = []
        self._flush_scheduled = False
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
        response_bytes: int,
        session: str | None = None,
        child: str | None = None,
    ) -> dict[str, Any]:
        """Build one record, append it as a JSON line when a path is configured, and return it."""
        entry: dict[str, Any] = {
            "time": self._timestamp(),
            "identity": identity,
            "server": server,
            "tool": tool,
            "arguments_sha256": arguments_digest(arguments),
        }
        if self._config.include_arguments:
            entry["arguments"] = self._redactor.redact(arguments)
        entry |= {
            "duration_ms": round(duration_ms, 3),
            "outcome": outcome,
            "response_bytes": response_bytes,
            "session": session,
        }
        if child is not None:
            entry["child"] = child
        if self._config.path is not None and not self._closed:
            self._write(entry)
        return entry

    def close(self) -> None:
        """Write what is queued and close the file; later records are still returned but no longer written."""
        self.flush()
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._close_quietly(self._file)
                self._file = None

    def _timestamp(self) -> str:
        now = self._clock()
        seconds = int(now)
        return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{int((now - seconds) * 1000):03d}Z"

    def _write(self, entry: dict[str, Any]) -> None:
        line = canonical_line(entry)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or len(self._queued) >= MAX_QUEUED:
            self._queued.append(line)
            self.flush()
            return
        self._queued.append(line)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write every queued line now, in order, with one system call."""
        self._flush_scheduled = False
        if not self._queued:
            return
        lines, self._queued = b"".join(self._queued), []
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
