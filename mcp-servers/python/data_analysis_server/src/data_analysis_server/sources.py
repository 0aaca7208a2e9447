"""Where data may come from: confined file paths and SSRF-guarded http(s) downloads.

Contract:
- `resolve_path` accepts a path only if, after resolving symlinks and `..`, it lies under one of the
  configured roots. `file://` and every other non-http scheme are refused.
- `fetch_url` accepts only http/https, resolves the host itself, refuses private, loopback,
  link-local, multicast, reserved and unspecified addresses (unless the operator opted in with
  DATA_ANALYSIS_ALLOW_PRIVATE_URLS=1), then connects to the address it checked (no second DNS lookup
  that a rebinding attacker could answer differently), re-checks every redirect hop, and stops at
  the size cap and the time limit.
It must never read a file or open a connection before these checks pass.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from .config import Settings
from .errors import AccessDeniedError, InvalidArgumentError, LimitExceededError

MAX_REDIRECTS = 5
_CHUNK = 1 << 16


def is_url(source: str) -> bool:
    """True when `source` carries a URL scheme (anything with '://')."""
    return "://" in source[:16]


def resolve_path(source: str, settings: Settings) -> Path:
    """Resolve `source` to a real file under an allowed root.

    Raises:
        AccessDeniedError: non-http scheme, or the resolved path is outside every root.
        InvalidArgumentError: the file does not exist.
    """
    if is_url(source):
        raise AccessDeniedError(f"Only http(s) URLs and plain paths are accepted, not {source.split(':', 1)[0]!r}.")
    if not settings.roots:
        raise AccessDeniedError(
            "No directories are open for reading files: set DATA_ANALYSIS_ROOTS to a ':'-separated list of "
            "directories, or pass inline `data` or an http(s) URL."
        )
    raw = Path(source).expanduser()
    candidates = [raw] if raw.is_absolute() else [root / raw for root in settings.roots]
    roots_text = ", ".join(str(r) for r in settings.roots)
    for candidate in candidates:
        try:
            real = candidate.resolve()
        except (RuntimeError, OSError) as exc:  # a symlink loop (RuntimeError before Python 3.13), ELOOP, EACCES
            raise AccessDeniedError(
                f"Path {source!r} cannot be resolved ({type(exc).__name__}: a symlink loop or an unreadable "
                "directory); use a regular file under the allowed roots."
            ) from None
        if not any(real.is_relative_to(root) for root in settings.roots):
            raise AccessDeniedError(
                f"Path {source!r} resolves outside the allowed roots ({roots_text}); "
                "use a file under one of them or set DATA_ANALYSIS_ROOTS."
            )
        try:
            if real.is_file():
                return real
        except OSError:
            continue
    raise InvalidArgumentError(f"File {source!r} not found under the allowed roots ({roots_text}).")


def _check_address(host: str, address: str, settings: Settings) -> None:
    ip = ipaddress.ip_address(address)
    if settings.allow_private_urls:
        return
    if not ip.is_global or ip.is_multicast:
        raise AccessDeniedError(
            f"URL host {host!r} resolves to {address}, a private/loopback/reserved address; refused. "
            "Only public addresses are allowed (operators may set DATA_ANALYSIS_ALLOW_PRIVATE_URLS=1)."
        )


def _resolve_host(host: str, port: int, settings: Settings) -> str:
    """Resolve `host` and check every address it maps to; return the one to connect to."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InvalidArgumentError(f"Cannot resolve URL host {host!r}: {exc.strerror}") from None
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        _check_address(host, address, settings)
    return addresses[0]


def _pinned_request(client: httpx.Client, url: str, settings: Settings) -> httpx.Response:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AccessDeniedError(f"Only http and https URLs are allowed, got {url[:80]!r}.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = _resolve_host(parts.hostname, port, settings)
    netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    pinned = parts._replace(netloc=netloc).geturl()
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    request = client.build_request(
        "GET", pinned, headers={"Host": host_header}, extensions={"sni_hostname": parts.hostname}
    )
    return client.send(request, stream=True)


def _read_capped(response: httpx.Response, settings: Settings, deadline: float) -> bytes:
    declared = response.headers.get("content-length")
    cap = settings.max_download_bytes
    if declared and declared.isdigit() and int(declared) > cap:
        raise LimitExceededError(
            f"Download is {int(declared)} bytes, over the {cap}-byte cap (DATA_ANALYSIS_MAX_DOWNLOAD_BYTES)."
        )
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes(_CHUNK):
        size += len(chunk)
        if size > cap:
            raise LimitExceededError(f"Download exceeded the {cap}-byte cap (DATA_ANALYSIS_MAX_DOWNLOAD_BYTES).")
        if time.monotonic() > deadline:
            raise LimitExceededError(
                f"Download took longer than {settings.url_timeout_s:g} s (DATA_ANALYSIS_URL_TIMEOUT)."
            )
        chunks.append(chunk)
    return b"".join(chunks)


def fetch_url(url: str, settings: Settings) -> tuple[bytes, str]:
    """Download `url` within the safety rules; returns (body, content-type).

    Raises:
        AccessDeniedError: scheme not http(s), or any hop resolves to a non-public address.
        LimitExceededError: body larger than the cap or slower than the time limit.
        InvalidArgumentError: unresolvable host, HTTP error status, too many redirects, network failure.
    """
    deadline = time.monotonic() + settings.url_timeout_s
    timeout = httpx.Timeout(settings.url_timeout_s)
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = _pinned_request(client, current, settings)
            except httpx.HTTPError as exc:
                raise InvalidArgumentError(f"Could not fetch {url[:120]!r}: {type(exc).__name__}") from None
            try:
                if response.is_redirect:
                    current = urljoin(current, response.headers.get("location", ""))
                    continue
                if response.status_code >= 400:
                    raise InvalidArgumentError(f"Fetching {url[:120]!r} returned HTTP {response.status_code}.")
                try:
                    body = _read_capped(response, settings, deadline)
                except httpx.HTTPError as exc:
                    raise InvalidArgumentError(f"Download of {url[:120]!r} failed: {type(exc).__name__}") from None
                return body, response.headers.get("content-type", "")
            finally:
                response.close()
    raise InvalidArgumentError(f"Too many redirects (>{MAX_REDIRECTS}) fetching {url[:120]!r}.")
