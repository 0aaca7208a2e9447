from __future__ import annotations

import pytest

from gateway.core.addresses import is_loopback
from gateway.translate.cli import settings


def test_defaults_serve_both_transports_on_loopback_in_shared_mode() -> None:
    server, options, _ = settings(["--stdio", "python -m srv --flag 'a b'"])
    assert server.argv == ["python", "-m", "srv", "--flag", "a b"]
    assert server.session_mode == "shared"
    assert options.expose_sse and options.expose_streamable_http
    assert options.check_host
    assert server.request_timeout == 300 and server.max_message_bytes == 16 * 1024 * 1024


def test_one_expose_flag_serves_only_that_transport() -> None:
    _, options, _ = settings(["--stdio", "srv", "--expose-sse"])
    assert options.expose_sse and not options.expose_streamable_http


def test_non_loopback_bind_without_token_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        settings(["--stdio", "srv", "--host", "0.0.0.0"])
    assert info.value.code == 2
    assert "--auth-token" in capsys.readouterr().err


def test_non_loopback_bind_with_token_or_explicit_opt_out_is_allowed() -> None:
    _, options, _ = settings(["--stdio", "srv", "--host", "0.0.0.0", "--auth-token", "s3cret"])
    assert options.auth_token == "s3cret" and not options.check_host
    settings(["--stdio", "srv", "--host", "0.0.0.0", "--allow-unauthenticated"])


def test_header_to_env_requires_per_session_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        settings(["--stdio", "srv", "--header-to-env", "X-Token=TOKEN"])
    assert "per-session" in capsys.readouterr().err
    server, _, _ = settings(["--stdio", "srv", "--session-mode", "per-session", "--header-to-env", "X-Token=TOKEN"])
    assert server.header_to_env == {"x-token": "TOKEN"}


@pytest.mark.parametrize(
    "bad",
    [
        ["--stdio", ""],
        ["--stdio", "'unclosed"],
        ["--stdio", "s", "--env", "NOEQUALS"],
        ["--stdio", "s", "--max-sessions", "0"],
    ],
)
def test_bad_flags_exit_with_usage_error(bad: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        settings(bad)
    assert info.value.code == 2


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("10.0.0.2", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
