"""`harbor-connect` flags: header expansion from the environment, and usage errors that say what to fix."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.connect.cli import UsageError, expand, headers


def test_headers_expand_variables_inside_the_process() -> None:
    environ = {"HARBOR_TOKEN": "s3cret"}
    assert headers(["Authorization: Bearer ${HARBOR_TOKEN}", "X-Team: ${TEAM:-core}"], environ) == {
        "Authorization": "Bearer s3cret",
        "X-Team": "core",
    }
    assert expand("a${EMPTY:-b}c", {"EMPTY": ""}) == "abc"


def test_an_unset_variable_names_itself_and_never_the_value() -> None:
    with pytest.raises(UsageError, match="--header Authorization: environment variable HARBOR_TOKEN is not set"):
        headers(["Authorization: Bearer ${HARBOR_TOKEN}"], {})


@pytest.mark.parametrize("item", ["no colon here", ": value", "Bad Name: v"])
def test_a_header_that_is_not_name_colon_value_is_refused(item: str) -> None:
    with pytest.raises(UsageError, match="NAME: VALUE"):
        headers([item], {})


def _connect(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "gateway", "connect", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, input="", env={"PATH": "/usr/bin"})


def test_version_and_usage_errors_exit_at_once() -> None:
    done = _connect("--version")
    assert done.returncode == 0 and done.stdout.startswith("harbor-connect ")
    unset = _connect("http://127.0.0.1:1/mcp", "--header", "Authorization: Bearer ${HARBOR_TOKEN}")
    assert unset.returncode == 2 and "HARBOR_TOKEN is not set" in unset.stderr and unset.stdout == ""
    bad_url = _connect("ftp://example.com/mcp")
    assert bad_url.returncode == 2 and "http(s)://" in bad_url.stderr
    no_ca = _connect("https://example.com/mcp", "--ca-file", "/nonexistent.pem")
    assert no_ca.returncode == 2 and "--ca-file /nonexistent.pem: no such file" in no_ca.stderr


def test_stdin_closed_at_once_exits_cleanly_with_nothing_on_stdout() -> None:
    done = _connect("http://127.0.0.1:1/mcp")
    assert done.returncode == 0 and done.stdout == ""


def test_sigterm_with_the_host_still_attached_exits_at_once() -> None:
    import signal
    import time

    argv = [sys.executable, "-m", "gateway", "connect", "http://127.0.0.1:1/mcp"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert proc.stdout is not None and proc.stdout.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
