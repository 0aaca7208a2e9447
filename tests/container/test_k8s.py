"""deploy/k8s: kustomize renders it, the Kubernetes OpenAPI schemas accept it (kubernetes-validate, strict, its
schemas vendored in the package), and checkov finds nothing it has not been told why to skip.

The checkers come from tests/container/lint-tools.txt (`make container-test` installs them into .container/lint)
and run in a network namespace of their own (`unshare --net`), so nothing is fetched at test time. Each
checker is also shown a manifest it must reject, so that a checker that silently accepts everything fails here.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.container.conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
LINT_BIN = Path(os.environ.get("HARBOR_LINT_BIN", ROOT / ".container" / "lint" / "bin"))
# the oldest release the big clouds still run and the newest the validator knows
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]
OFFLINE = ["unshare", "--net"] if os.geteuid() == 0 and shutil.which("unshare") else []


def render(folder: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render deploy/k8s (it carries kustomize); install it and re-run"
    done = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one document of that kind (and name, when the render has several of the kind)."""
    [found] = [doc for doc in docs if doc["kind"] == kind and name in (None, doc["metadata"]["name"])]
    return found


GATEWAY, REDIS = "harbor-gateway", "harbor-redis"


def _write(docs: list[dict[str, Any]], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def validate(path: Path, version: str = KUBERNETES_VERSIONS[-1]) -> subprocess.CompletedProcess[str]:
    argv = [str(LINT_BIN / "kubernetes-validate"), "--strict", "--kubernetes-version", version, str(path)]
    return subprocess.run([*OFFLINE, *argv], capture_output=True, text=True, timeout=120)


def checkov(folder: Path, framework: str = "kubernetes") -> dict[str, Any]:
    argv = [str(LINT_BIN / "checkov"), "-d", str(folder), "--framework", framework, "--skip-download", "-o", "json"]
    done = subprocess.run([*OFFLINE, *argv], capture_output=True, text=True, timeout=180)
    assert done.stdout.strip(), done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout)
    return report


FOLDERS = {"base": K8S, "example": K8S / "overlays" / "example"}


def test_base_renders_the_gateway_with_probes_limits_and_a_locked_down_security_context() -> None:
    docs = render(K8S)
    # the generated ConfigMap's name ends with a hash of its content
    names = sorted(
        (doc["kind"], re.sub(r"^harbor-config-[a-z0-9]+$", "harbor-config", doc["metadata"]["name"])) for doc in docs
    )
    assert names == sorted(
        [("Namespace", "harbor"), ("ConfigMap", "harbor-config")]
        + [(kind, GATEWAY) for kind in ("ServiceAccount", "Deployment", "Service", "NetworkPolicy")]
        + [(kind, REDIS) for kind in ("ServiceAccount", "Deployment", "Service", "NetworkPolicy")]
        + [("PodDisruptionBudget", GATEWAY), ("HorizontalPodAutoscaler", GATEWAY)]
    )
    assert {doc["metadata"].get("namespace") for doc in docs if doc["kind"] != "Namespace"} == {"harbor"}
    deployment = by_kind(docs, "Deployment", GATEWAY)
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert set(container["resources"]) == {"requests", "limits"}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    token = next(e for e in container["env"] if e["name"] == "HARBOR_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "harbor-tokens", "key": "HARBOR_TOKEN"}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert {"/etc/harbor", "/var/lib/harbor", "/tmp"} <= set(mounts)
    config = by_kind(docs, "ConfigMap")
    assert config["data"] == {"harbor.yaml": (K8S / "base" / "harbor.yaml").read_text()}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/etc/harbor"]]["configMap"]["name"] == config["metadata"]["name"]
    service, policy = by_kind(docs, "Service", GATEWAY), by_kind(docs, "NetworkPolicy", GATEWAY)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("folder", ["base", "example"])
def test_rendered_manifests_pass_strict_schema_validation(folder: str, version: str, tmp_path: Path) -> None:
    done = validate(_write(render(FOLDERS[folder]), tmp_path), version)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("passed for resource") == len(render(FOLDERS[folder]))


MISSPELT = {  # a misspelt field in each kind the validator must know, PodDisruptionBudget and HPA included
    "Deployment": ("livenesProbe", lambda doc: doc["spec"]["template"]["spec"]["containers"][0]),
    "PodDisruptionBudget": ("minAvailble", lambda doc: doc["spec"]),
    "HorizontalPodAutoscaler": ("minReplica", lambda doc: doc["spec"]),
}


@pytest.mark.parametrize("kind", list(MISSPELT))
def test_schema_validation_rejects_an_unknown_field(kind: str, tmp_path: Path) -> None:
    docs = render(K8S)
    field, where = MISSPELT[kind]
    where(next(doc for doc in docs if doc["kind"] == kind))[field] = 1
    done = validate(_write(docs, tmp_path))
    assert done.returncode != 0 and field in done.stdout + done.stderr


def test_checkov_fails_no_check_and_every_skip_is_justified(tmp_path: Path) -> None:
    for name, folder in FOLDERS.items():  # one checkov run over both renders
        _write(render(folder), tmp_path / name)
    report = checkov(tmp_path)
    results = report["results"]
    failed = [(c["check_id"], c["resource"]) for c in results["failed_checks"]]
    assert failed == [] and report["summary"]["parsing_errors"] == 0
    assert {Path(c["file_path"]).parts[1] for c in results["passed_checks"]} == set(FOLDERS)
    assert report["summary"]["passed"] > 100
    checked = {c["resource"] for c in results["passed_checks"]}
    assert {f"Deployment.harbor.{name}" for name in (GATEWAY, REDIS)} <= checked
    skips = {(c["check_id"], c["check_result"].get("suppress_comment", "")) for c in results["skipped_checks"]}
    assert {check for check, _ in skips} == {"CKV_K8S_43", "CKV_K8S_35"}
    assert all(len(reason) > 40 for _, reason in skips), skips


def test_checkov_fails_a_deployment_without_the_security_context(tmp_path: Path) -> None:
    docs = render(K8S)
    pod = by_kind(docs, "Deployment", GATEWAY)["spec"]["template"]["spec"]
    del pod["securityContext"], pod["containers"][0]["securityContext"]
    failed = {c["check_id"] for c in checkov(_write(docs, tmp_path).parent)["results"]["failed_checks"]}
    assert {"CKV_K8S_22", "CKV_K8S_20", "CKV_K8S_31"} <= failed  # read-only root, no escalation, seccomp


PODMAN_TEST = K8S / "overlays" / "podman-test"


def _strip_config_hash(pod: dict[str, Any]) -> None:
    """The generated ConfigMap's hash suffix differs with its content; the volume is the same one."""
    for volume in pod["volumes"]:
        if "configMap" in volume:
            volume["configMap"]["name"] = "harbor-config"


def test_podman_test_overlay_changes_only_what_a_lone_podman_host_needs() -> None:
    base_docs, played_docs = render(K8S), render(PODMAN_TEST)
    secrets = {doc["metadata"]["name"]: doc for doc in played_docs if doc["kind"] == "Secret"}
    assert set(secrets) == {"harbor-tokens", "harbor-redis"}  # test-only values, which no base render has
    assert not [doc for doc in base_docs if doc["kind"] == "Secret"]
    password = base64.b64decode(secrets["harbor-redis"]["data"]["password"]).decode()

    base, played = by_kind(base_docs, "Deployment", GATEWAY), by_kind(played_docs, "Deployment", GATEWAY)
    base_pod, played_pod = base["spec"]["template"]["spec"], played["spec"]["template"]["spec"]
    assert played_pod.pop("hostNetwork") is True
    base_container, played_container = base_pod["containers"][0], played_pod["containers"][0]
    assert played_container.pop("image") == "localhost/harbor-gateway:latest"
    assert played_container.pop("imagePullPolicy") == "Never"
    assert played_container["env"].pop() == {"name": "HARBOR_PORT", "value": "14444"}
    # what Kubernetes would give the gateway, with podman's address of Redis: $(VAR) substituted, no DNS
    base_env, played_env = (
        {e["name"]: e for e in base_container["env"]},
        {e["name"]: e for e in played_container["env"]},
    )
    expected_state = base_env["HARBOR_STATE"]["value"].replace("$(HARBOR_REDIS_PASSWORD)", password)
    assert played_env["HARBOR_STATE"]["value"] == expected_state.replace("@harbor-redis:6379/", "@127.0.0.1:16379/")
    assert base_env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert played_env["POD_IP"] == {"name": "POD_IP", "value": "127.0.0.1"}
    for name in ("HARBOR_STATE", "POD_IP"):
        played_env[name] = base_env[name]
    played_container["env"] = list(played_env.values())
    assert "ports" not in played_container
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert played_container[probe]["httpGet"].pop("port") == 14444
        del base_container[probe]["httpGet"]["port"]
    for key in ("image", "imagePullPolicy", "ports"):
        del base_container[key]
    _strip_config_hash(base_pod)
    _strip_config_hash(played_pod)
    assert played == base

    base, played = by_kind(base_docs, "Deployment", REDIS), by_kind(played_docs, "Deployment", REDIS)
    base_pod, played_pod = base["spec"]["template"]["spec"], played["spec"]["template"]["spec"]
    assert played_pod.pop("hostNetwork") is True
    base_container, played_container = base_pod["containers"][0], played_pod["containers"][0]
    assert base_container.pop("image") == "docker.io/library/redis:7.4-bookworm"
    assert played_container.pop("image") == "localhost/harbor-redis-test:latest"
    assert played_container.pop("imagePullPolicy") == "Never"
    assert played_container["env"][0] == {"name": "REDIS_PORT", "value": "16379"}
    assert base_container["env"][0] == {"name": "REDIS_PORT", "value": "6379"}
    played_container["env"][0] = base_container["env"][0]
    assert played_container["args"][-2:] == ["--bind", "127.0.0.1"]
    del played_container["args"][-2:]
    for key in ("imagePullPolicy", "ports"):
        del base_container[key]
    assert played == base

    def others(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [doc for doc in docs if doc["kind"] not in ("Deployment", "Secret", "ConfigMap")]

    assert others(played_docs) == others(base_docs)
    assert by_kind(played_docs, "ConfigMap")["data"] == by_kind(base_docs, "ConfigMap")["data"]
