"""`podman kube play` of the rendered deploy/k8s/overlays/podman-test (whose every change test_k8s.py lists):
Redis and the gateway's replicas with their ConfigMap and Secrets; the probes, a token-authenticated
initialize + tools/list + tool call against every replica, Redis's password and security context, then
`podman kube down`.

podman plays a Deployment's replicas as pods on the one host network, where they would all bind one port:
the test plays replica i of the gateway as its own one-replica Deployment `harbor-gateway-<i>` on port
14444 + i (`replica()`, the only change made here), as distinct pod IPs are in a cluster. podman 4.3 plays
Deployments and ConfigMaps but not kind Secret: a `secretKeyRef` there reads the podman secret of that
name, holding the Secret's `data` as JSON, so the test stores each rendered Secret that way. podman 4.3 makes
an emptyDir a named volume shared by every pod that names it alike, and keeps a ConfigMap's volume after
`kube down`: the test names each pod's emptyDirs after its Deployment (Kubernetes gives every pod its own)
and removes the ConfigMap's volume. The pods get runc and the rlimits this host allows from a
CONTAINERS_CONF file (kube play takes no --ulimit).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.container.conftest import USER_ID, Container, http_get, podman, wait_ready
from tests.container.test_k8s import GATEWAY, K8S, REDIS, by_kind, render

PORT = 14444  # replica i listens on PORT + i
REDIS_PORT = 16379
OVERLAY = K8S / "overlays" / "podman-test"
CONTAINERS_CONF = """\
[engine]
runtime = "runc"
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
"""
REDIS_UID = "10002"


class Replica(Container):
    """One played gateway replica: the pod podman made of its Deployment (`<name>-pod-0`), its container."""

    def __init__(self, deployment: dict[str, Any], port: int) -> None:
        self.pod = deployment["metadata"]["name"] + "-pod-0"
        super().__init__(f"{self.pod}-{deployment['spec']['template']['spec']['containers'][0]['name']}")
        self.port = port
        self.base = f"http://127.0.0.1:{port}"


class Played:
    def __init__(self, replicas: list[Replica], redis: Container, token: str, redis_password: str) -> None:
        self.replicas, self.redis, self.token, self.redis_password = replicas, redis, token, redis_password


def replica(deployment: dict[str, Any], index: int) -> dict[str, Any]:
    """Replica `index` of the gateway Deployment as a Deployment of its own, on port PORT + index."""
    played = copy.deepcopy(deployment)
    played["metadata"]["name"] = f"{deployment['metadata']['name']}-{index}"
    played["spec"]["replicas"] = 1
    [container] = played["spec"]["template"]["spec"]["containers"]
    [port] = [e for e in container["env"] if e["name"] == "HARBOR_PORT"]
    assert port["value"] == str(PORT)
    port["value"] = str(PORT + index)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == PORT
        container[probe]["httpGet"]["port"] = PORT + index
    return played


def own_volumes(deployment: dict[str, Any]) -> dict[str, Any]:
    """The Deployment with its emptyDir volumes named after it, so that no other played pod shares them."""
    pod = deployment["spec"]["template"]["spec"]
    names = {v["name"]: f"{deployment['metadata']['name']}-{v['name']}" for v in pod["volumes"] if "emptyDir" in v}
    for volume in pod["volumes"]:
        volume["name"] = names.get(volume["name"], volume["name"])
    for container in pod["containers"]:
        for mount in container["volumeMounts"]:
            mount["name"] = names.get(mount["name"], mount["name"])
    return deployment


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def redis_cli(redis: Container, *command: str, password: str | None = None) -> str:
    auth = f"REDISCLI_AUTH='{password}' " if password else ""
    done = redis.exec("sh", "-c", f"{auth}redis-cli -p {REDIS_PORT} {' '.join(command)}", check=False)
    return (done.stdout + done.stderr).strip()


def redis_config(redis: Container, key: str, password: str) -> str:
    """One CONFIG GET value, asked alone: `redis-cli` prints the key, then the value (nothing when it is empty).

    (`CONFIG GET *` in one go comes in hash order, and an empty value last is lost to the output's trimming.)
    """
    lines = redis_cli(redis, "config", "get", key, password=password).splitlines()
    assert lines and lines[0] == key, lines
    return lines[1] if len(lines) > 1 else ""


def wait_redis(redis: Container, password: str, deadline_s: float = 60) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if redis_cli(redis, "ping", password=password) == "PONG":
            return
        time.sleep(0.5)
    raise AssertionError(f"Redis not ready in {deadline_s}s:\n{redis.logs()}")


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Played]:
    docs = render(OVERLAY)
    config, redis, gateway = (
        by_kind(docs, "ConfigMap"),
        by_kind(docs, "Deployment", REDIS),
        by_kind(docs, "Deployment", GATEWAY),
    )
    secrets = [doc for doc in docs if doc["kind"] == "Secret"]
    count = gateway["spec"]["replicas"]
    assert count >= 2
    replicas = [own_volumes(replica(gateway, index)) for index in range(count)]
    redis = own_volumes(copy.deepcopy(redis))
    ports = [PORT + index for index in range(count)] + [REDIS_PORT]
    assert not [port for port in ports if listening(port)], "a port the pods need is taken"
    folder = tmp_path_factory.mktemp("kube")
    play = folder / "play.yaml"
    play.write_text("\n---\n".join(json.dumps(doc) for doc in [config, redis, *replicas]))
    (folder / "containers.conf").write_text(CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(folder / "containers.conf")}
    values = {s["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in s["data"].items()} for s in secrets}
    state = Played(
        [Replica(deployment, PORT + index) for index, deployment in enumerate(replicas)],
        Container(f"{redis['metadata']['name']}-pod-0-{redis['spec']['template']['spec']['containers'][0]['name']}"),
        values["harbor-tokens"]["HARBOR_TOKEN"],
        values["harbor-redis"]["password"],
    )
    for secret in secrets:
        (folder / "secret.json").write_text(json.dumps(secret["data"]))
        podman("secret", "create", secret["metadata"]["name"], str(folder / "secret.json"))
    try:
        try:
            podman("kube", "play", str(play), env=env, timeout=240)
            wait_redis(state.redis, state.redis_password)
            for gateway_replica in state.replicas:
                wait_ready(gateway_replica.base, deadline_s=150, logs=gateway_replica.logs)
            yield state
        finally:  # also after a failed play: what it brought up must not block the next run
            podman("kube", "down", str(play), env=env, timeout=180, check=False)
            podman("volume", "rm", config["metadata"]["name"], check=False)
    finally:
        for secret in secrets:
            podman("secret", "rm", secret["metadata"]["name"], check=False)
    pods = {r.pod for r in state.replicas} | {f"{redis['metadata']['name']}-pod-0"}
    assert not pods & set(podman("pod", "ps", "--format", "{{.Name}}", timeout=30).split())
    assert not [port for port in ports if listening(port)]


pytestmark = pytest.mark.anyio


def test_every_replica_answers_both_probes_with_every_server_ready(played: Played) -> None:
    for gateway in played.replicas:
        assert http_get(gateway.base + "/healthz")[0] == 200
        status, body = http_get(gateway.base + "/readyz", token=played.token)
        assert status == 200, body
        assert {s["state"] for s in json.loads(body)["servers"].values()} == {"ready"}


async def test_every_replica_initializes_lists_and_calls_with_the_secret_token(played: Played) -> None:
    for gateway in played.replicas:
        http = httpx2.AsyncClient(headers={"authorization": f"Bearer {played.token}"}, timeout=60)
        with anyio.fail_after(90):
            async with Client(streamable_http_client(gateway.base + "/mcp", http_client=http), mode="legacy") as client:
                tools = {tool.name for tool in (await client.list_tools()).tools}
                result = await client.call_tool("data-analysis__load_dataset", {"data": "a,b\n1,2\n2,4\n", "name": "k"})
        assert {"data-analysis__load_dataset", "eval__compute_metrics"} <= tools, gateway.base
        assert not result.is_error, result.content
        assert result.structured_content["rows"] == 2


def test_every_replica_refuses_a_request_without_the_token(played: Played) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    for gateway in played.replicas:
        answer = httpx.post(gateway.base + "/mcp", json=initialize, timeout=10)
        assert answer.status_code == 401, (gateway.base, answer.text)


def test_redis_requires_the_secret_password_and_keeps_nothing_on_disk(played: Played) -> None:
    assert redis_cli(played.redis, "ping").startswith("NOAUTH")
    assert redis_cli(played.redis, "ping", password="not-the-password").startswith(("WRONGPASS", "NOAUTH"))
    assert redis_cli(played.redis, "ping", password=played.redis_password) == "PONG"
    config = {
        key: redis_config(played.redis, key, played.redis_password)
        for key in ("save", "appendonly", "dir", "maxmemory-policy", "maxmemory", "bind")
    }
    assert config["save"] == "" and config["appendonly"] == "no" and config["dir"] == "/data"
    assert config["maxmemory-policy"] == "noeviction" and int(config["maxmemory"]) == 384 * 2**20
    assert config["bind"] == "127.0.0.1"  # the overlay's host network; in the cluster, the pod's interfaces
    assert played.redis.exec("ls", "-A", "/data").stdout == ""  # nothing saved


PROCESSES = """
import json, os
found = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
        environ = open(f"/proc/{pid}/environ", "rb").read()
    except OSError:
        continue
    found.append({"argv": [a.decode() for a in argv if a], "environ": environ.decode(errors="replace")})
print(json.dumps(found))
"""


def test_the_redis_password_is_on_no_command_line_and_reaches_no_docked_server(played: Played) -> None:
    # Redis's process title replaces its argv once it has started, --requirepass included
    cmdline = played.redis.exec("cat", "/proc/1/cmdline").stdout
    assert cmdline.startswith("redis-server ") and played.redis_password not in cmdline
    for gateway in played.replicas:
        # every process but this probe (`python -c`, started by `podman exec` with the container's environment)
        processes = [p for p in json.loads(gateway.exec("python", "-c", PROCESSES).stdout) if p["argv"][1:2] != ["-c"]]
        assert not [p["argv"] for p in processes if played.redis_password in " ".join(p["argv"])]
        holders = [p["argv"] for p in processes if played.redis_password in p["environ"]]
        children = [p["argv"] for p in processes if p["argv"][1:2] == ["-m"]]  # the docked servers
        assert len(children) >= 3, processes  # data-analysis and eval (per identity, started above) and sql
        [gateway_argv] = holders
        assert gateway_argv[1].endswith("/harbor-gateway") and gateway_argv[2] == "serve"


CAPABILITIES = """
fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(fields["CapEff"].strip(), fields["CapBnd"].strip())
"""


def test_played_pods_keep_the_manifest_security_context(played: Played) -> None:
    for gateway in played.replicas:
        assert gateway.exec("id", "-u").stdout.strip() == USER_ID
        denied = gateway.exec("python", "-c", "open('/opt/harbor/x', 'w')", check=False)
        assert denied.returncode != 0 and "Read-only file system" in denied.stderr
        config = gateway.exec("python", "-c", "print(open('/etc/harbor/harbor.yaml').read(), end='')").stdout
        assert config == by_kind(render(OVERLAY), "ConfigMap")["data"]["harbor.yaml"]  # mounted over the image's
        capabilities = gateway.exec("python", "-c", CAPABILITIES).stdout
        assert capabilities.split() == ["0000000000000000", "0000000000000000"]  # effective and bounding: none
    redis = played.redis
    assert redis.exec("id", "-u").stdout.strip() == REDIS_UID
    denied = redis.exec("sh", "-c", "echo x > /etc/x", check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    assert (
        redis.exec("sh", "-c", "echo x > /data/probe && echo x > /tmp/probe && rm /data/probe /tmp/probe").returncode
        == 0
    )
    status = dict(line.split(":", 1) for line in redis.exec("cat", "/proc/1/status").stdout.splitlines())
    assert [status["CapEff"].strip(), status["CapBnd"].strip()] == ["0000000000000000", "0000000000000000"]


def test_config_and_writable_paths_are_the_manifest_volumes(played: Played) -> None:
    gateway = played.replicas[0]
    mounts = gateway.exec("python", "-c", "print(open('/proc/self/mounts').read())").stdout
    targets = {line.split()[1]: line.split()[3].split(",") for line in mounts.splitlines() if line.strip()}
    assert "ro" in targets["/"] and "ro" in targets["/etc/harbor"]  # the ConfigMap volume, read-only
    assert "rw" in targets["/var/lib/harbor"] and "rw" in targets["/tmp"]  # the two emptyDirs
    assert gateway.exec("python", "-c", WRITE_STATE).stdout.split() == ["ok", "ok"]


WRITE_STATE = """
for path in ("/var/lib/harbor/probe", "/tmp/probe"):
    open(path, "w").write("x")
    print("ok")
"""


def test_the_prestop_command_runs_in_the_gateway_image_for_its_pause(played: Played) -> None:
    """podman runs no lifecycle hooks; the hook's own command, run in the played container, must exist there
    and take the pause the grace period is computed from."""
    [container] = by_kind(render(OVERLAY), "Deployment", GATEWAY)["spec"]["template"]["spec"]["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    started = time.monotonic()
    played.replicas[0].exec(*command)
    assert time.monotonic() - started >= float(command[1])


def _post(base: str, token: str, message: dict[str, Any], session: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}", "accept": "application/json, text/event-stream"}
    if session:
        headers["mcp-session-id"] = session
    return httpx.post(base + "/mcp", json=message, headers=headers, timeout=30)


def _result(answer: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC response in a JSON or an SSE answer."""
    assert answer.status_code == 200, answer.text
    if answer.headers["content-type"].startswith("application/json"):
        message: dict[str, Any] = answer.json()
        return message
    [data] = [line[5:] for line in answer.text.splitlines() if line.startswith("data:") and '"id"' in line]
    message = json.loads(data)
    return message


def test_a_session_started_on_one_replica_continues_on_every_other(played: Played) -> None:
    first, *others = played.replicas
    initialize = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }  # fmt: skip
    answer = _post(first.base, played.token, initialize)
    assert "result" in _result(answer)
    session = answer.headers["mcp-session-id"]
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert _post(first.base, played.token, initialized, session).status_code == 202
    for index, gateway in enumerate(others, start=2):
        listed = _result(
            _post(gateway.base, played.token, {"jsonrpc": "2.0", "id": index, "method": "tools/list"}, session)
        )
        assert "data-analysis__load_dataset" in {tool["name"] for tool in listed["result"]["tools"]}


def _wait_status(bases: list[str], status: int, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    last: list[int] = []
    while time.monotonic() < end:
        last = [http_get(base + "/readyz", timeout=3)[0] for base in bases]
        if set(last) == {status}:
            return
        time.sleep(0.5)
    raise AssertionError(f"/readyz of {bases} is {last}, not {status}, after {deadline_s}s")


def test_readiness_follows_redis_away_and_back(played: Played) -> None:
    """Last in this module: it stops the played Redis, then starts it again (empty: no persistence)."""
    bases = [gateway.base for gateway in played.replicas]
    podman("stop", "--time", "5", played.redis.name, timeout=60)
    try:
        _wait_status(bases, 503, deadline_s=20)
        assert all(http_get(base + "/healthz")[0] == 200 for base in bases)  # alive: no restart for this
    finally:
        podman("start", played.redis.name, timeout=60)
    wait_redis(played.redis, played.redis_password)
    _wait_status(bases, 200, deadline_s=30)
