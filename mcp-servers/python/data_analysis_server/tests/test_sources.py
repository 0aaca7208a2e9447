"""File confinement and SSRF guard, with real files, symlinks and a real HTTP server on loopback."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from conftest import CSV
from data_analysis_server.config import Settings
from data_analysis_server.datasets import read_source
from data_analysis_server.errors import AccessDeniedError, InvalidArgumentError, LimitExceededError
from data_analysis_server.sources import fetch_url, resolve_path


def test_relative_path_under_a_root_resolves(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_bytes(CSV)
    assert resolve_path("d.csv", settings) == (tmp_path / "d.csv").resolve()


def test_sample_data_is_a_default_root(settings: Settings) -> None:
    frame, _ = read_source("sales.csv", None, None, None, settings)
    assert len(frame) == 730


@pytest.mark.parametrize("source", ["../outside.csv", "/etc/passwd", "sub/../../outside.csv"])
def test_paths_escaping_the_roots_are_refused(settings: Settings, tmp_path: Path, source: str) -> None:
    (tmp_path.parent / "outside.csv").write_bytes(CSV)
    with pytest.raises(AccessDeniedError, match="outside the allowed roots"):
        resolve_path(source, settings)


def test_symlink_pointing_outside_is_refused_after_resolution(settings: Settings, tmp_path: Path) -> None:
    target = tmp_path.parent / "secret.csv"
    target.write_bytes(CSV)
    (tmp_path / "innocent.csv").symlink_to(target)
    with pytest.raises(AccessDeniedError):
        resolve_path("innocent.csv", settings)


@pytest.mark.parametrize("source", ["file:///etc/passwd", "ftp://example.com/x.csv", "gopher://x/"])
def test_non_http_schemes_are_refused(settings: Settings, source: str) -> None:
    with pytest.raises(AccessDeniedError):
        read_source(source, None, None, None, settings)


def test_missing_file_says_where_it_looked(settings: Settings) -> None:
    with pytest.raises(InvalidArgumentError, match="not found under the allowed roots"):
        resolve_path("nope.csv", settings)


def test_loopback_url_is_refused_by_default(settings: Settings, http_base: str) -> None:
    with pytest.raises(AccessDeniedError, match="127.0.0.1"):
        fetch_url(f"{http_base}/data.csv", settings)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/x.csv",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/x.csv",
        "http://192.168.1.1/x.csv",
        "http://[::1]/x.csv",
        "http://0.0.0.0/x.csv",
        "http://224.0.0.1/x.csv",
    ],
)
def test_private_link_local_and_reserved_addresses_are_refused(settings: Settings, url: str) -> None:
    with pytest.raises(AccessDeniedError, match="refused"):
        fetch_url(url, settings)


def test_loopback_allowed_only_with_explicit_opt_in(settings: Settings, http_base: str) -> None:
    opted_in = dataclasses.replace(settings, allow_private_urls=True)
    frame, provenance = read_source(f"{http_base}/data.csv", None, None, None, opted_in)
    assert frame.to_dict("list") == {"a": [1, 3], "b": [2, 4]}
    assert provenance.endswith("/data.csv")


def test_redirects_are_followed_and_rechecked(settings: Settings, http_base: str) -> None:
    opted_in = dataclasses.replace(settings, allow_private_urls=True)
    body, _ = fetch_url(f"{http_base}/redirect", opted_in)
    assert body == CSV


def test_download_size_cap_is_enforced(settings: Settings, http_base: str) -> None:
    capped = dataclasses.replace(settings, allow_private_urls=True, max_download_bytes=1000)
    with pytest.raises(LimitExceededError, match="cap"):
        fetch_url(f"{http_base}/big.csv", capped)


def test_http_error_status_is_reported(settings: Settings, http_base: str) -> None:
    opted_in = dataclasses.replace(settings, allow_private_urls=True)
    with pytest.raises(InvalidArgumentError, match="HTTP 404"):
        fetch_url(f"{http_base}/missing", opted_in)


def test_env_switch_enables_private_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_ANALYSIS_ALLOW_PRIVATE_URLS", "1")
    assert Settings().allow_private_urls is True
    monkeypatch.delenv("DATA_ANALYSIS_ALLOW_PRIVATE_URLS")
    assert Settings().allow_private_urls is False
