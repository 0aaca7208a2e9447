"""harbor-gateway run detached as a deployment would: read-only root, a token from HARBOR_TOKEN, 0.0.0.0.

The `gateway` fixture (conftest) starts it once for the module and waits for `/readyz?strict=1`."""

from __future__ import annotations

import json
import subprocess

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.container.conftest import (
    LIMITS,
    PODMAN,
    ROOT,
    TEST_TOKEN,
    USER_ID,
    Gateway,
    config_modules,
    http_get,
    image_ref,
    podman,
)

pytestmark = pytest.mark.anyio

INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}  # fmt: skip
ACCEPT = {"accept": "application/json, text/event-stream"}
CONFIG = ROOT / "deploy" / "k8s" / "base" / "harbor.yaml"


def _client(gateway: Gateway, token: str | None, statuses: list[int] | None = None) -> Client:
    """The SDK Client over Streamable HTTP, with the bearer token if given; `statuses` records each response's."""
    headers = {"authorization": f"Bearer {token}"} if token else {}

    async def record(response: httpx2.Response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    http = httpx2.AsyncClient(headers=headers, timeout=60, event_hooks={"response": [record]})
    transport = streamable_http_client(gateway.base + "/mcp", http_client=http)
    return Client(transport, mode="legacy", read_timeout_seconds=60)


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def test_healthz_and_readyz_report_every_docked_server_ready(gateway: Gateway) -> None:
    status, body = http_get(gateway.base + "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    docked = len(config_modules(CONFIG))
    status, body = http_get(gateway.base + "/readyz?strict=1")  # a probe: no token, counts only
    assert status == 200 and json.loads(body)["servers"] == {"total": docked, "ready": docked}
    status, body = http_get(gateway.base + "/readyz?strict=1", token=TEST_TOKEN)  # harbor:admin: each server
    servers = json.loads(body)["servers"]
    assert status == 200 and docked >= 2
    assert {name: s["state"] for name, s in servers.items()} == {name: "ready" for name in servers}
    assert len(servers) == docked and {"data-analysis", "eval"} <= set(servers)


async def test_sdk_client_lists_and_calls_a_data_analysis_tool_with_the_token(gateway: Gateway) -> None:
    with anyio.fail_after(60):
        async with _client(gateway, TEST_TOKEN) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            loaded = await client.call_tool(
                "data-analysis__load_dataset", {"data": "x,y\n1,2\n3,5\n4,4\n", "format": "csv", "name": "t"}
            )
            metrics = await client.call_tool(
                "eval__compute_metrics",
                {"predictions": ["a b c"], "references": [["a b c"]], "metrics": ["exact_match"]},
            )
    assert {"data-analysis__load_dataset", "data-analysis__sql", "eval__compute_metrics"} <= names
    assert not loaded.is_error, loaded.content
    assert (loaded.structured_content["rows"], loaded.structured_content["columns"]) == (3, 2)
    assert not metrics.is_error and metrics.structured_content["metrics"]["exact_match"]["score"] == 1.0


async def test_mcp_without_the_token_or_with_a_wrong_one_is_401(gateway: Gateway) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        anonymous = await http.post(gateway.base + "/mcp", json=INITIALIZE, headers=ACCEPT)
        wrong = await http.post(
            gateway.base + "/mcp", json=INITIALIZE, headers={**ACCEPT, "authorization": "Bearer not-the-token-at-all"}
        )
        status_page = await http.get(gateway.base + "/")
    assert anonymous.status_code == wrong.status_code == status_page.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    statuses: list[int] = []
    with anyio.fail_after(30), pytest.raises(BaseExceptionGroup) as refused:
        async with _client(gateway, None, statuses) as client:
            await client.list_tools()
    assert statuses == [401]
    assert [str(e) for e in _leaves(refused.value) if isinstance(e, MCPError)] == [
        "missing credentials: send Authorization: Bearer <token>"
    ]


PROCESSES = r"""
import json, os
uids = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status if ":" in line)
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        uids[cmdline.read().replace(b"\0", b" ").decode()[:80]] = fields["Uid"].split()[0]
print(json.dumps(uids))
"""


def test_gateway_and_its_server_children_run_as_non_root(gateway: Gateway) -> None:
    assert gateway.exec("id", "-u").stdout.strip() == USER_ID
    uids = json.loads(gateway.exec("python", "-c", PROCESSES).stdout)
    assert any("harbor-gateway" in cmd for cmd in uids) and any("data_analysis_server" in cmd for cmd in uids)
    assert set(uids.values()) == {USER_ID}, uids


def test_root_filesystem_is_read_only_and_state_goes_to_the_declared_volume(gateway: Gateway) -> None:
    for path in ("/opt/harbor/x", "/etc/harbor/x", "/x"):
        denied = gateway.exec("python", "-c", f"open({path!r}, 'w')", check=False)
        assert denied.returncode != 0 and "Read-only file system" in denied.stderr, (path, denied.stderr)
    audit = gateway.exec("python", "-c", "print(open('/var/lib/harbor/audit.jsonl').read())").stdout
    assert '"tool": "load_dataset"' in audit or '"tool":"load_dataset"' in audit
    assert TEST_TOKEN not in audit


def test_image_healthcheck_passes_on_the_running_gateway(gateway: Gateway) -> None:
    done = subprocess.run([*PODMAN, "healthcheck", "run", gateway.name], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ([], "environment variable HARBOR_TOKEN is not set"),
        (["--env", "HARBOR_TOKEN=short"], "must be at least 16 characters"),
    ],
)
def test_gateway_refuses_to_start_without_a_usable_token(env: list[str], expected: str) -> None:
    done = subprocess.run(
        [*PODMAN, "run", "--rm", *LIMITS, "--network", "none", *env, image_ref("harbor-gateway")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "HARBOR_TOKEN=" not in done.stderr


def test_the_image_default_command_is_serve_with_the_image_config() -> None:
    config = json.loads(podman("image", "inspect", image_ref("harbor-gateway")))[0]["Config"]
    assert config["Entrypoint"] == ["harbor-gateway"]
    assert config["Cmd"] == ["serve", "--config", "/etc/harbor/harbor.yaml"]
    assert config["ExposedPorts"] == {"4444/tcp": {}}
