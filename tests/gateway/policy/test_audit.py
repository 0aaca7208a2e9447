"""Audit lines: format, stable digest, redaction at depth, no file without a path, I/O errors never raise."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.config import AuditConfig
from gateway.policy import audit as audit_module
from gateway.policy.audit import REDACTED, AuditLog, Redactor, arguments_digest, canonical_json

T0 = 1_795_000_000.25  # 2026-11-18T11:06:40.25Z (date -u -d @1795000000)


RESPONSE = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "ok"}]}}
RESPONSE_BYTES = len(json.dumps(RESPONSE, separators=(",", ":")))


def _record(log: AuditLog, arguments: Any = None, **overrides: Any) -> None:
    fields: dict[str, Any] = {
        "identity": "alice",
        "server": "gh",
        "tool": "create_issue",
        "arguments": {"title": "x"} if arguments is None else arguments,
        "duration_ms": 12.3456,
        "outcome": "ok",
        "response": RESPONSE,
        "session": "s-1",
    }
    log.record(**(fields | overrides))


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_one_json_line_per_call_with_every_field_in_order(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "audit.jsonl"
    log = AuditLog(AuditConfig(path=str(path)), clock=lambda: T0)
    _record(log)
    _record(log, outcome="rate_limited", session=None, response=None)
    log.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2
    parsed = json.loads(lines[0])
    assert list(parsed) == [
        "time", "identity", "server", "tool", "arguments_sha256", "duration_ms", "outcome", "response_bytes", "session",
    ]  # fmt: skip
    assert parsed["time"] == "2026-11-18T11:06:40.250Z"
    assert parsed["arguments_sha256"] == hashlib.sha256(b'{"title":"x"}').hexdigest()
    assert "arguments" not in parsed
    assert (parsed["duration_ms"], parsed["response_bytes"], parsed["session"]) == (12.346, RESPONSE_BYTES, "s-1")
    second = json.loads(lines[1])
    assert second["outcome"] == "rate_limited" and second["session"] is None and second["response_bytes"] == 0


def test_file_is_appended_not_truncated(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"old":1}\n')
    log = AuditLog(AuditConfig(path=str(path)))
    _record(log)
    log.close()
    assert path.read_bytes().splitlines()[0] == b'{"old":1}' and len(path.read_bytes().splitlines()) == 2


def test_digest_is_stable_under_key_order_at_every_depth() -> None:
    a = {"b": 1, "a": {"y": [1, {"q": 2, "p": 3}], "x": "é"}}
    b = {"a": {"x": "é", "y": [1, {"p": 3, "q": 2}]}, "b": 1}
    assert arguments_digest(a) == arguments_digest(b)
    assert canonical_json(a) == '{"a":{"x":"é","y":[1,{"p":3,"q":2}]},"b":1}'.encode()
    assert arguments_digest(a) != arguments_digest(a | {"b": 2})
    assert arguments_digest(None) == hashlib.sha256(b"null").hexdigest()


def test_digest_handles_integers_beyond_64_bits() -> None:
    assert arguments_digest({"n": 2**70}) == hashlib.sha256(b'{"n":1180591620717411303424}').hexdigest()


def test_arguments_are_included_only_when_configured_and_redacted_at_any_depth(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(AuditConfig(path=str(path), include_arguments=True))
    arguments = {
        "query": "select 1",
        "Password": "hunter2",
        "options": {"headers": {"Authorization": "Bearer abc", "Accept": "json"}, "max_tokens": 5},
        "accounts": [{"name": "a", "apiKey": "k1"}, {"name": "b", "private_key": {"pem": "xyz"}}],
    }
    _record(log, arguments)
    _record(AuditLog(AuditConfig(path=str(path))), arguments)
    entry, plain = _lines(path)
    assert "arguments" not in plain and plain["arguments_sha256"] == entry["arguments_sha256"]
    assert entry["arguments"] == {
        "query": "select 1",
        "Password": REDACTED,
        "options": {"headers": {"Authorization": REDACTED, "Accept": "json"}, "max_tokens": 5},
        "accounts": [{"name": "a", "apiKey": REDACTED}, {"name": "b", "private_key": REDACTED}],
    }
    assert entry["arguments_sha256"] == arguments_digest(arguments)  # digest of the real arguments
    assert arguments["Password"] == "hunter2"  # the caller's data is not modified
    assert "hunter2" not in path.read_text() and "k1" not in path.read_text()


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("GITHUB_TOKEN", True), ("accessToken", True), ("X-Api-Key", True), ("APIKEY", True), ("apikey", True),
        ("client_secret", True), ("Set-Cookie", True), ("db_passwd", True), ("privateKeyPem", True),
        ("max_tokens", False), ("tokenizer", False), ("name", False), ("keyword", False),
    ],
)  # fmt: skip
def test_redaction_matches_whole_words_of_keys(key: str, secret: bool) -> None:
    assert Redactor(AuditConfig().redact_keys).matches(key) is secret


def test_entries_match_keys_written_with_or_without_separators() -> None:
    assert Redactor(["api_key"]).matches("apikey")
    assert Redactor(["apikey"]).matches("api_key")
    assert Redactor(["private_key"]).matches("PRIVATEKEY")
    assert not Redactor(["api_key"]).matches("api")


def test_no_file_is_written_when_path_is_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    log = AuditLog(AuditConfig())
    _record(log)
    log.close()
    assert not log.enabled
    assert list(tmp_path.iterdir()) == []


def test_unwritable_path_does_not_raise_on_construction_or_record(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    log = AuditLog(AuditConfig(path=str(blocker / "audit.jsonl")))
    assert log.last_error is not None and "cannot open audit log" in log.last_error
    _record(log)  # does not raise
    log.close()


class _FailingFile:
    def write(self, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    def close(self) -> None:
        pass


def test_write_error_is_logged_once_then_the_file_is_reopened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(audit_module.logger, "warning", lambda event, **_: warnings.append(event))
    path = tmp_path / "audit.jsonl"
    log = AuditLog(AuditConfig(path=str(path)))
    log._file = _FailingFile()  # type: ignore[assignment]
    _record(log, tool="lost")
    assert log.last_error is not None and "No space left" in log.last_error
    _record(log, tool="kept")
    log.close()
    assert [json.loads(line)["tool"] for line in path.read_bytes().splitlines()] == ["kept"]
    assert log.last_error is None
    assert warnings == ["audit log failing; records are not being written", "audit log recovered"]


def test_records_after_close_are_not_written(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(AuditConfig(path=str(path)))
    log.close()
    _record(log)
    assert path.read_bytes() == b""


def test_timestamps_follow_the_clock_across_a_second_boundary(tmp_path: Path) -> None:
    now = [T0 + 0.5]
    log = AuditLog(AuditConfig(path=str(tmp_path / "audit.jsonl")), clock=lambda: now[0])
    for at in (T0 + 0.5, T0 + 0.875, T0 + 86_400.0):
        now[0] = at
        _record(log)
    times = [line["time"] for line in _lines(tmp_path / "audit.jsonl")]
    # the cached date part moves on with the second, and with the day
    assert times == ["2026-11-18T11:06:40.750Z", "2026-11-18T11:06:41.125Z", "2026-11-19T11:06:40.250Z"]


class _CountingFile:
    """The audit file, with its write calls counted."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.writes = inner, 0

    def write(self, data: Any) -> int:
        self.writes += 1
        return int(self.inner.write(data))

    def close(self) -> None:
        self.inner.close()


@pytest.mark.anyio
async def test_a_record_is_written_on_the_next_turn_and_one_turns_records_share_one_write(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(AuditConfig(path=str(path)))
    counting = log._file = _CountingFile(log._file)
    _record(log)
    assert not path.read_bytes() and counting.writes == 0  # not on the caller's path
    await asyncio.sleep(0)
    assert len(path.read_bytes().splitlines()) == 1 and counting.writes == 1
    for _ in range(3):  # calls in a row, one turn apart: each line is there before the next call
        _record(log)
        await asyncio.sleep(0)
    assert len(path.read_bytes().splitlines()) == 4 and counting.writes == 4
    for _ in range(50):  # a burst finished in one turn: one write
        _record(log)
    await asyncio.sleep(0)
    assert len(path.read_bytes().splitlines()) == 54
    assert counting.writes == 5
    log.close()
    assert len(path.read_bytes().splitlines()) == 54


@pytest.mark.anyio
async def test_queued_records_are_written_by_close_and_a_full_queue_is_written_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(AuditConfig(path=str(path)))
    _record(log)
    await asyncio.sleep(0)  # written on the next turn
    monkeypatch.setattr(audit_module, "MAX_QUEUED", 5)
    for index in range(6):
        _record(log, tool=f"t{index}")
    assert [line["tool"] for line in _lines(path)][1:] == [f"t{i}" for i in range(6)]  # past 5: written now
    _record(log, tool="last", response={"id": 1, "result": {"big": 2**70}})  # beyond 64 bits: still measured
    log.close()
    last = _lines(path)[-1]
    assert last["tool"] == "last" and last["response_bytes"] == len('{"id":1,"result":{"big":1180591620717411303424}}')
