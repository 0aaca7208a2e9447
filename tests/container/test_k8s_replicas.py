"""deploy/k8s with N gateway replicas and Redis (issue 11), checked on what `kubectl kustomize` renders for
the base and the example overlay: the replicas and how they roll, drain and spread; the PodDisruptionBudget
and the HorizontalPodAutoscaler and what they select; Redis (the official Debian image, non-root, read-only,
no persistence) and how the gateway reaches it — the password only ever from the Secret `harbor-redis` —
and the NetworkPolicies, evaluated for who may reach whom. The schema and checkov tests of test_k8s.py
cover these objects too; test_kube_play.py plays them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.container.test_k8s import FOLDERS, GATEWAY, K8S, REDIS, by_kind, render

CONFIG = K8S / "base" / "harbor.yaml"
Docs = list[dict[str, Any]]


@pytest.fixture(scope="module", params=list(FOLDERS))
def docs(request: pytest.FixtureRequest) -> Docs:
    return render(FOLDERS[request.param])


def pod_of(docs: Docs, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = by_kind(docs, "Deployment", name)["spec"]["template"]["spec"]
    return spec


def labels_of(docs: Docs, name: str) -> dict[str, str]:
    labels: dict[str, str] = by_kind(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector as Kubernetes reads it; these manifests use matchLabels only."""
    assert set(selector) <= {"matchLabels"}, selector
    return selector.get("matchLabels", {}).items() <= labels.items()


K8S_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand_reference(value: str, defined: dict[str, str]) -> str:
    """Kubernetes' $(NAME) in an env value: a variable defined earlier, $$ a literal $, else left as written."""

    def replace(match: re.Match[str]) -> str:
        return "$" if match.group(0) == "$$" else defined.get(match.group(1), match.group(0))

    return K8S_REFERENCE.sub(replace, value)


def resolve_env(env: list[dict[str, Any]], secrets: dict[str, dict[str, str]], pod_ip: str) -> dict[str, str]:
    """A container's environment as the kubelet makes it, in order: secretKeyRef and status.podIP values,
    and $(NAME) references to the variables before."""
    result: dict[str, str] = {}
    for entry in env:
        source = entry.get("valueFrom")
        if source is None:
            result[entry["name"]] = expand_reference(entry["value"], result)
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            result[entry["name"]] = secrets[ref["name"]][ref["key"]]
        else:
            assert source == {"fieldRef": {"fieldPath": "status.podIP"}}, source
            result[entry["name"]] = pod_ip
    return result


def test_the_gateway_runs_two_replicas_or_more_and_rolls_without_dropping_a_ready_one(docs: Docs) -> None:
    deployment = by_kind(docs, "Deployment", GATEWAY)
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    [container] = pod_of(docs, GATEWAY)["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"  # 503 while Redis or a child is not ready
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_replicas_prefer_different_nodes_and_zones_but_never_wait_for_them(docs: Docs) -> None:
    pod, labels = pod_of(docs, GATEWAY), labels_of(docs, GATEWAY)
    anti = pod["affinity"]["podAntiAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti  # a one-node cluster still runs both
    [preferred] = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert selects(preferred["podAffinityTerm"]["labelSelector"], labels)
    [spread] = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway" and selects(spread["labelSelector"], labels)


def test_prestop_gives_the_service_time_and_the_grace_period_covers_the_drain(docs: Docs) -> None:
    pod = pod_of(docs, GATEWAY)
    [container] = pod["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and len(command) == 2
    pause = float(command[1])
    shutdown_grace = yaml.safe_load(CONFIG.read_text())["gateway"]["shutdown_grace"]
    assert pause >= 1 and shutdown_grace > 0
    assert pod["terminationGracePeriodSeconds"] > pause + shutdown_grace


def test_the_disruption_budget_keeps_one_gateway_replica_and_selects_only_the_gateway(docs: Docs) -> None:
    budget = by_kind(docs, "PodDisruptionBudget")
    assert budget["apiVersion"] == "policy/v1" and budget["metadata"]["name"] == GATEWAY
    spec = budget["spec"]
    assert spec["minAvailable"] == 1 and "maxUnavailable" not in spec
    assert spec["minAvailable"] < by_kind(docs, "Deployment", GATEWAY)["spec"]["replicas"]  # a drain can proceed
    assert selects(spec["selector"], labels_of(docs, GATEWAY))
    assert not selects(spec["selector"], labels_of(docs, REDIS))
    assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"  # a crash-looping replica never blocks a drain


def test_the_autoscaler_scales_the_gateway_deployment_on_cpu_which_it_requests(docs: Docs) -> None:
    autoscaler = by_kind(docs, "HorizontalPodAutoscaler")
    assert autoscaler["apiVersion"] == "autoscaling/v2"
    spec = autoscaler["spec"]
    deployment = by_kind(docs, "Deployment", GATEWAY)
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": GATEWAY}
    assert spec["minReplicas"] == deployment["spec"]["replicas"] >= 2
    assert spec["maxReplicas"] >= 2 * spec["minReplicas"]
    [metric] = spec["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100
    # utilisation is measured against requests: without one on every container the autoscaler does nothing
    assert all(c["resources"]["requests"]["cpu"] for c in pod_of(docs, GATEWAY)["containers"])
    scale_down = spec["behavior"]["scaleDown"]["policies"]
    assert scale_down == [{"type": "Pods", "value": 1, "periodSeconds": 60}]  # one draining replica at a time


def test_the_gateway_reaches_the_redis_service_with_the_secret_password_and_advertises_its_pod_ip(
    docs: Docs,
) -> None:
    [container] = pod_of(docs, GATEWAY)["containers"]
    secrets = {"harbor-tokens": {"HARBOR_TOKEN": "t" * 32}, "harbor-redis": {"password": "0f" * 16}}
    environ = resolve_env(container["env"], secrets, pod_ip="10.1.2.3")
    service = by_kind(docs, "Service", REDIS)
    [port] = service["spec"]["ports"]
    assert environ["HARBOR_STATE"] == f"redis://:{'0f' * 16}@{service['metadata']['name']}:{port['port']}/0"
    # the Service's selector and target port are the Redis container's
    assert service["spec"]["type"] == "ClusterIP" and selects(
        {"matchLabels": service["spec"]["selector"]}, labels_of(docs, REDIS)
    )
    assert not selects({"matchLabels": service["spec"]["selector"]}, labels_of(docs, GATEWAY))
    [redis] = pod_of(docs, REDIS)["containers"]
    [redis_port] = [p for p in redis["ports"] if p["name"] == port["targetPort"]]
    redis_env = resolve_env(redis["env"], secrets, pod_ip="10.1.2.4")
    assert redis_port["containerPort"] == port["port"] == int(redis_env["REDIS_PORT"]) == 6379
    assert redis_env["REDIS_PASSWORD"] == environ["HARBOR_REDIS_PASSWORD"]  # one Secret key for both ends

    gateway = yaml.safe_load(CONFIG.read_text())["gateway"]
    assert gateway["state"] == "${HARBOR_STATE:-memory}"  # `docker run` of the image: memory
    assert gateway["advertise"] == "http://${POD_IP:-127.0.0.1}:${HARBOR_PORT:-4444}"
    [http] = container["ports"]
    assert http["containerPort"] == 4444  # what advertise names when HARBOR_PORT is not set (Kubernetes)
    assert "HARBOR_PORT" not in environ

    from gateway.config import load_config

    environ["HARBOR_PYTHON"] = "/opt/harbor/bin/python"
    loaded = load_config(CONFIG, environ).gateway  # the Deployment's environment makes a config the gateway takes
    assert loaded.state == environ["HARBOR_STATE"]
    assert loaded.advertise == "http://10.1.2.3:4444"


SECRET_NAMES = re.compile(r"PASSWORD|TOKEN|SECRET", re.IGNORECASE)


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [value] if isinstance(value, str) else []


def test_the_redis_password_is_never_inline(docs: Docs) -> None:
    assert not [doc for doc in docs if doc["kind"] == "Secret"]  # created by the operator (docs/deploy.md)
    references = []
    for name in (GATEWAY, REDIS):
        [container] = pod_of(docs, name)["containers"]
        for entry in container["env"]:
            if SECRET_NAMES.search(entry["name"]):
                assert set(entry) == {"name", "valueFrom"}, entry
                references.append(entry["valueFrom"]["secretKeyRef"])
    assert references.count({"name": "harbor-redis", "key": "password"}) == 2  # the gateway and Redis
    # every Redis URL's userinfo is the reference to the variable defined from the Secret, never a value
    urls = [s for s in _strings(docs) if "redis://" in s or "rediss://" in s]
    assert {m for s in urls for m in re.findall(r"rediss?://([^@\s]*)@", s)} == {":$(HARBOR_REDIS_PASSWORD)"}
    [gateway] = pod_of(docs, GATEWAY)["containers"]
    names = [e["name"] for e in gateway["env"]]
    assert names.index("HARBOR_REDIS_PASSWORD") < names.index("HARBOR_STATE")  # $(VAR) sees earlier ones only
    # Redis takes it from its environment too, through the shell, as --requirepass
    [redis] = pod_of(docs, REDIS)["containers"]
    assert '--requirepass "$REDIS_PASSWORD"' in redis["command"][2]
    assert all("requirepass" not in arg for arg in redis["args"])
    config = yaml.safe_load(CONFIG.read_text())
    assert not [s for s in _strings(config) if "redis://" in s]  # the ConfigMap names no Redis, so no password


def test_redis_is_one_non_root_read_only_pod_of_the_official_debian_image_without_persistence(docs: Docs) -> None:
    deployment = by_kind(docs, "Deployment", REDIS)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # never two Redis behind one Service
    pod = pod_of(docs, REDIS)
    [container] = pod["containers"]
    assert re.fullmatch(r"docker\.io/library/redis:7\.\d+-bookworm", container["image"]), container["image"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] >= 10000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == REDIS
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    assert "emptyDir" in mounts["/data"] and "emptyDir" in mounts["/tmp"]
    args = container["args"]
    assert args[args.index("--save") + 1] == "" and args[args.index("--appendonly") + 1] == "no"
    assert args[args.index("--dir") + 1] == "/data"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    maxmemory = int(args[args.index("--maxmemory") + 1].removesuffix("mb")) * 2**20
    assert set(container["resources"]) == {"requests", "limits"}
    assert maxmemory < int(container["resources"]["limits"]["memory"].removesuffix("Mi")) * 2**20
    for probe in ("readinessProbe", "livenessProbe"):
        script = container[probe]["exec"]["command"]
        assert script[:2] == ["sh", "-c"] and "redis-cli" in script[2] and "ping)" in script[2]
        assert script[2].endswith("= PONG")  # redis-cli exits 0 on an error reply: the probe reads the reply
    # the shell only substitutes the password and execs: redis-server is PID 1 and gets the SIGTERM
    assert container["command"][:2] == ["sh", "-c"] and container["command"][2].startswith("exec redis-server ")


# NetworkPolicy semantics for the peers these manifests use (podSelector, namespaceSelector, both, or no `to`)
NAMESPACE = "harbor"


def _peer_allows(
    peer: dict[str, Any], labels: dict[str, str], namespace: str, namespace_labels: dict[str, str]
) -> bool:
    assert set(peer) <= {"podSelector", "namespaceSelector"}, peer
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], namespace_labels):
            return False
    elif namespace != NAMESPACE:
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], labels)


def _rule_allows(rule: dict[str, Any], side: str, peer: tuple[dict[str, str], str, dict[str, str]], port: int) -> bool:
    ports = rule.get("ports")
    if ports is not None and not any(p.get("port") == port and p.get("protocol", "TCP") == "TCP" for p in ports):
        return False
    peers = rule.get(side)
    return peers is None or any(_peer_allows(p, *peer) for p in peers)


def allowed(docs: Docs, source: tuple[dict[str, str], str], target: tuple[dict[str, str], str], port: int) -> bool:
    """Whether TCP from pod `source` to pod `target` on `port` passes every NetworkPolicy: the target's
    ingress and the source's egress (each side is open unless a policy selects its pod for that direction)."""
    policies = [doc for doc in docs if doc["kind"] == "NetworkPolicy"]

    def side_allows(pod: tuple[dict[str, str], str], other: tuple[dict[str, str], str], kind: str) -> bool:
        selecting = [
            p["spec"] for p in policies
            if p["metadata"]["namespace"] == pod[1] and kind in p["spec"]["policyTypes"]
            and selects(p["spec"]["podSelector"], pod[0])
        ]  # fmt: skip
        if not selecting:
            return True
        side, key = ("from", "ingress") if kind == "Ingress" else ("to", "egress")
        other_peer = (other[0], other[1], {"kubernetes.io/metadata.name": other[1]})
        return any(_rule_allows(rule, side, other_peer, port) for spec in selecting for rule in spec.get(key, []))

    return side_allows(target, source, "Ingress") and side_allows(source, target, "Egress")


def test_only_the_gateway_pods_reach_redis_and_the_replicas_reach_each_other(docs: Docs) -> None:
    gateway, redis = (labels_of(docs, GATEWAY), NAMESPACE), (labels_of(docs, REDIS), NAMESPACE)
    other = ({"app.kubernetes.io/name": "something-else"}, NAMESPACE)
    elsewhere = (labels_of(docs, GATEWAY), "another-namespace")  # same labels, another namespace
    assert allowed(docs, gateway, redis, 6379)
    assert not allowed(docs, other, redis, 6379)
    assert not allowed(docs, elsewhere, redis, 6379)
    assert not allowed(docs, gateway, redis, 6380)
    assert not allowed(docs, redis, gateway, 4444)  # Redis sends nothing anywhere
    assert not allowed(docs, redis, ({"k8s-app": "kube-dns"}, "kube-system"), 53)
    assert allowed(docs, gateway, gateway, 4444)  # forwarding to the replica that holds a stream or child
    assert allowed(docs, gateway, ({"k8s-app": "kube-dns"}, "kube-system"), 53)


def test_the_policy_evaluator_sees_the_example_overlay_narrow_the_clients(tmp_path: Path) -> None:
    """The evaluator is not vacuous: the base lets clients in from any namespace, the example only from the
    ingress controller's, and both let the replicas reach each other."""
    client = ({"app": "client"}, "some-team")
    ingress = ({"app.kubernetes.io/name": "ingress-nginx"}, "ingress-nginx")
    base, example = render(FOLDERS["base"]), render(FOLDERS["example"])
    gateway = (labels_of(base, GATEWAY), NAMESPACE)
    assert allowed(base, client, gateway, 4444) and allowed(base, ingress, gateway, 4444)
    assert not allowed(example, client, gateway, 4444) and allowed(example, ingress, gateway, 4444)
    assert not allowed(base, client, gateway, 4445)
