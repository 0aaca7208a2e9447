"""The shipped nginx example (deploy/nginx/harbor.conf), run for real in front of tiny real upstreams.

Round robin with no affinity, the client's Host passed on, SSE streamed event by event (and, as a control,
buffered when `proxy_buffering` is turned on), a dead upstream's new requests moved to the next one.
Also the `Replicas` helper that the gateway's own cluster tests start replicas with.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.cluster.harness import SHIPPED_NGINX, Nginx, Replicas, render_nginx

pytestmark = pytest.mark.timeout(60)

UPSTREAM = [sys.executable, str(Path(__file__).with_name("upstream_app.py")), "--port", "{port}", "--name", "u{index}"]
REQUIRED = [
    "proxy_http_version 1.1;",
    'proxy_set_header Connection "";',
    "proxy_set_header Host $http_host;",
    "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "proxy_set_header X-Forwarded-Proto $scheme;",
    "proxy_buffering off;",
    "proxy_request_buffering off;",
    "proxy_cache off;",
    "proxy_read_timeout 1h;",
    "proxy_next_upstream error timeout;",
]


def _sse_arrivals(url: str) -> list[float]:
    """Seconds after the request was sent at which each SSE event arrived."""
    arrivals: list[float] = []
    opened = time.monotonic()
    with httpx.Client(timeout=10) as client, client.stream("GET", url + "/sse?n=4&every=0.4") as response:
        assert response.status_code == 200
        buffer = ""
        for chunk in response.iter_text():
            buffer += chunk
            while "\n\n" in buffer:
                _, buffer = buffer.split("\n\n", 1)
                arrivals.append(time.monotonic() - opened)
    return arrivals


def test_the_example_has_every_line_a_proxied_gateway_needs() -> None:
    text = SHIPPED_NGINX.read_text()
    for line in REQUIRED:
        assert line in text, line
    upstream = text.split("upstream harbor_replicas")[1].split("}")[0]
    directives = [line.split("#")[0].strip() for line in upstream.splitlines() if line.split("#")[0].strip()]
    assert not [d for d in directives if d.split()[0] in ("ip_hash", "hash", "sticky", "least_conn", "random")]
    rendered = render_nginx(text, ["127.0.0.1:1", "127.0.0.1:2"], "127.0.0.1:3")
    assert "server 127.0.0.1:1 max_fails=1 fail_timeout=2s;" in rendered and "harbor-0" not in rendered
    assert "listen 127.0.0.1:3;" in rendered


def test_round_robin_with_no_affinity_and_the_clients_host(
    start_replicas: Callable[..., Replicas], start_nginx: Callable[..., Nginx]
) -> None:
    upstreams = start_replicas(UPSTREAM, 3)
    proxy = start_nginx(upstreams.addresses)
    seen: Counter[str] = Counter()
    with httpx.Client(timeout=5, cookies={"session": "same"}) as client:  # one client, one keep-alive connection
        for _ in range(30):
            reply = client.get(proxy.url + "/whoami", headers={"Mcp-Session-Id": "s1"})
            assert reply.status_code == 200
            seen[reply.json()["name"]] += 1
        headers = reply.json()["headers"]
    assert seen == {"u0": 10, "u1": 10, "u2": 10}  # strict rotation: nothing pins a client or a session
    assert headers["host"] == f"127.0.0.1:{proxy.port}"  # what the client sent, not "harbor_replicas"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers.get("connection", "") != "close"


GZIP = "gzip on; gzip_types text/event-stream;"  # what many sites' http blocks have (Debian's has `gzip on;`)


@pytest.mark.parametrize("http", ["", GZIP], ids=["plain", "gzip-in-the-http-block"])
def test_sse_events_arrive_one_by_one_through_nginx(
    http: str, start_replicas: Callable[..., Replicas], start_nginx: Callable[..., Nginx]
) -> None:
    upstreams = start_replicas(UPSTREAM, 1)
    proxy = start_nginx(upstreams.addresses, http=http)
    arrivals = _sse_arrivals(proxy.url)
    assert len(arrivals) == 4
    assert arrivals[0] < 0.35  # the first event did not wait for the others
    assert arrivals[-1] - arrivals[0] > 0.9  # spread as the upstream wrote them (0.4 s apart)


def test_control_with_proxy_buffering_on_nginx_holds_the_events(
    start_replicas: Callable[..., Replicas], start_nginx: Callable[..., Nginx]
) -> None:
    """Why the example turns buffering off: on, a compressing http block gets every event at the end."""
    upstreams = start_replicas(UPSTREAM, 1)
    proxy = start_nginx(upstreams.addresses, http=GZIP, replace={"proxy_buffering off;": "proxy_buffering on;"})
    arrivals = _sse_arrivals(proxy.url)
    assert len(arrivals) == 4
    assert arrivals[-1] - arrivals[0] < 0.2
    assert arrivals[0] > 1.0  # nothing came until the stream ended


def test_a_dead_upstreams_new_requests_go_to_the_next(
    start_replicas: Callable[..., Replicas], start_nginx: Callable[..., Nginx]
) -> None:
    upstreams = start_replicas(UPSTREAM, 2)
    proxy = start_nginx(upstreams.addresses)
    upstreams.kill(0)
    with httpx.Client(timeout=5) as client:
        names = [client.get(proxy.url + "/whoami").json()["name"] for _ in range(10)]
        assert names == ["u1"] * 10  # no error reached a client
        big = client.post(proxy.url + "/echo", content=b"x" * (2 * 1024 * 1024))
        assert big.status_code == 200 and big.json()["bytes"] == 2 * 1024 * 1024  # past nginx's 1 MiB default
    upstreams.restart(0)
    deadline = time.monotonic() + 6  # fail_timeout is 2 s: then nginx tries the replica again by itself
    names = []
    with httpx.Client(timeout=5) as client:
        while "u0" not in names[-4:] and time.monotonic() < deadline:
            names.append(client.get(proxy.url + "/whoami").json()["name"])
            time.sleep(0.1)
    assert "u0" in names[-4:]


def test_the_replicas_helper_kills_restarts_and_keeps_logs(start_replicas: Callable[..., Replicas]) -> None:
    group = start_replicas(UPSTREAM, 2)
    assert len(group) == 2 and group.urls == [f"http://127.0.0.1:{p}" for p in group.ports]
    assert httpx.get(group.urls[1] + "/whoami").json()["name"] == "u1"
    group.kill(1)
    assert not group.alive(1)
    with pytest.raises(httpx.ConnectError):
        httpx.get(group.urls[1] + "/healthz", timeout=1)
    group.restart(1)
    assert group.alive(1) and httpx.get(group.urls[1] + "/whoami").json()["name"] == "u1"  # same port
    group.terminate(0)
    assert not group.alive(0)
    assert "replica 0" in group.logs()


def test_a_replica_that_never_gets_ready_fails_with_its_log(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; sys.stderr.write('boom: bad config\\n'); sys.exit(2)"]
    with pytest.raises(RuntimeError, match="boom: bad config"):
        Replicas(argv, 1, tmp_path, ready_timeout=5)
