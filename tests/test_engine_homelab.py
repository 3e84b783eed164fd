"""homelab with the real Command plugin, a k3d TEST DOUBLE and a real API server.

Docker (hence k3d) cannot run here. The real Command plugin runs the program's real k3d
command lines; the first `k3d` on PATH is tests/engine_doubles/k3d, a test double that
records its argv and creates / deletes simulated nodes in a local control plane
(tests/local_cluster.py) named as k3d names them, and prints that cluster's kubeconfig.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cnistack.cli.render_command import render_stack
from tests.engine_harness import Engine, steps_by_name
from tests.local_cluster import (
    LocalCluster,
    apply_cilium_crds,
    cilium_dir,
    script,
    start_cluster,
)

pytestmark = pytest.mark.engine

DOUBLES = Path(__file__).resolve().parent / "engine_doubles"
# The ADR's homelab (1 server + 2 agents) as k3d is asked to create it, flag by flag.
CREATE_FLANNEL = [
    "cluster", "create", "aisp-homelab", "--servers", "1", "--agents", "2",
    "--image", "rancher/k3s:v1.35.8-k3s1", "--api-port", "127.0.0.1:6550",
    "--kubeconfig-update-default=false", "--kubeconfig-switch-context=false", "--wait",
]  # fmt: skip
CILIUM_FLAGS = [
    "--k3s-arg", "--flannel-backend=none@server:*",
    "--k3s-arg", "--disable-network-policy@server:*",
    "--k3s-arg", "--cluster-cidr=10.42.0.0/16@server:*",
    "--k3s-arg", "--service-cidr=10.43.0.0/16@server:*",
    "--k3s-arg", "--disable-kube-proxy@server:*",
    "--volume", "/sys/fs/bpf:/sys/fs/bpf:shared@all",
    "--env", "K3D_FIX_MOUNTS=1@all",
]  # fmt: skip
KUBECONFIG_GET = ["kubeconfig", "get", "aisp-homelab"]
DELETE = ["cluster", "delete", "aisp-homelab"]
NODES = ["k3d-aisp-homelab-server-0", "k3d-aisp-homelab-agent-0", "k3d-aisp-homelab-agent-1"]


@pytest.fixture
def homelab(tmp_path: Path) -> Iterator[tuple[Engine, LocalCluster, Path]]:
    """An empty control plane (no nodes: k3d 'creates' them) and an engine with the double."""
    cluster = start_cluster(tmp_path / "cluster", 0)
    try:
        apply_cilium_crds(cluster)  # the operator's part, as in tests/local_cluster.py
        engine = Engine(tmp_path / "engine", path_prefix=(DOUBLES,))
        log = tmp_path / "k3d-argv.jsonl"
        engine.env.update(K3D_STANDIN_LOG=str(log), K3D_STANDIN_CLUSTER_DIR=str(cluster.workdir))
        engine.new_stack("homelab")
        yield engine, cluster, log
    finally:
        script.stop(cluster.workdir)


def use_module_chart(engine: Engine) -> None:
    """helm.cilium.io is unreachable here: the same chart from the Go module."""
    chart = str(cilium_dir() / "install/kubernetes/cilium")
    engine.config("homelab", "cilium.chart.source.path", chart, path=True)


def k3d_calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def node_names(cluster: LocalCluster) -> list[str]:
    return sorted(n["metadata"]["name"] for n in cluster.api().get("/api/v1/nodes")["items"])


def policies(cluster: LocalCluster, plural: str, group: str = "networking.k8s.io/v1") -> list[str]:
    items: list[dict[str, Any]] = cluster.api().get(f"/apis/{group}/{plural}")["items"]
    return sorted(f"{i['metadata']['namespace']}/{i['metadata']['name']}" for i in items)


def test_up_then_switch_to_cilium_replaces_the_cluster(
    homelab: tuple[Engine, LocalCluster, Path],
) -> None:
    engine, cluster, log = homelab
    # -v=9 engine logs, not --logflow (plugin logs print their inputs: docs/real-engine.md).
    up = engine.up("homelab", "--logtostderr", "-v=9")
    assert up.returncode == 0, up.output[-5000:]
    assert k3d_calls(log) == [CREATE_FLANNEL, KUBECONFIG_GET]
    # Secrets: the kubeconfig k3d printed is in no log and not in the state in plain text
    # (a kubeconfig's token is the cluster's admin credential).
    token = yaml.safe_load(cluster.kubeconfig.read_text())["users"][0]["user"]["token"]
    export = engine.pulumi("stack", "export", "-s", "homelab", check=True).stdout
    assert token not in up.output
    assert token not in export
    assert "ciphertext" in export
    assert node_names(cluster) == sorted(NODES)
    flannel_policies = policies(cluster, "networkpolicies")
    assert len(flannel_policies) == len(
        [m for m in render_stack("homelab").manifests if m["kind"] == "NetworkPolicy"]
    )
    namespaces = {n["metadata"]["name"] for n in cluster.api().get("/api/v1/namespaces")["items"]}

    engine.config("homelab", "cni", "cilium")
    use_module_chart(engine)
    preview = engine.preview("homelab", "--json")
    assert preview.returncode == 0, preview.output
    steps = steps_by_name(preview.json())
    ops = {s["op"] for s in steps["cluster-k3d"]}
    assert "replace" in ops or ops >= {"delete-replaced", "create-replacement"}, ops
    assert steps["cni-cilium"][0]["op"] == "create"
    # No false alarm over inputs the pack cannot see while the provider is replaced.
    assert "cilium-network-policy-needs-cilium" not in preview.output, preview.output

    up = engine.up("homelab")
    assert up.returncode == 0, up.output
    calls = k3d_calls(log)
    assert calls[2:] == [DELETE, [*CREATE_FLANNEL[:-1], "--wait", *CILIUM_FLAGS], KUBECONFIG_GET]
    assert "grpc: the client connection is closing" not in up.output
    # The new cluster got every Namespace and policy again, and Cilium with the k3d values.
    assert node_names(cluster) == sorted(NODES)
    after = {n["metadata"]["name"] for n in cluster.api().get("/api/v1/namespaces")["items"]}
    # Chart 1.19 adds the namespace of its TLS/ingress secrets
    # (templates/cilium-secrets-namespace.yaml of v1.19.7).
    assert after == {*namespaces, "cilium-secrets"}
    assert policies(cluster, "networkpolicies")
    assert len(policies(cluster, "ciliumnetworkpolicies", "cilium.io/v2")) == 2
    api = cluster.api()
    # `up` returned after the rollout gate's receipt: agents ready is what it guarantees.
    assert api.exists("/api/v1/namespaces/kube-system/configmaps/cnistack-cni-rollout")
    ds = api.get("/apis/apps/v1/namespaces/kube-system/daemonsets/cilium")
    assert ds["status"]["numberReady"] == 3
    env = {
        e["name"]: e.get("value") for e in ds["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["KUBERNETES_SERVICE_HOST"] == "k3d-aisp-homelab-server-0"
    assert env["KUBERNETES_SERVICE_PORT"] == "6443"
    config = api.get("/api/v1/namespaces/kube-system/configmaps/cilium-config")["data"]
    assert config["cluster-pool-ipv4-cidr"] == "10.42.0.0/16"

    again = engine.preview("homelab", "--expect-no-changes")
    assert again.returncode == 0, again.output


def test_single_node_cilium_homelab_finishes_the_release_wait(
    homelab: tuple[Engine, LocalCluster, Path],
) -> None:
    engine, cluster, _ = homelab
    engine.config("homelab", "cni", "cilium")
    use_module_chart(engine)
    engine.config("homelab", "cluster.agents", "0", path=True)
    up = engine.up("homelab")
    assert up.returncode == 0, up.output
    assert node_names(cluster) == ["k3d-aisp-homelab-server-0"]
    # Guaranteed once `up` returns: the rollout gate's receipt is written after the operator is
    # ready (components/cni_rollout.py).
    assert cluster.api().exists("/api/v1/namespaces/kube-system/configmaps/cnistack-cni-rollout")
    operator = cluster.api().get("/apis/apps/v1/namespaces/kube-system/deployments/cilium-operator")
    assert operator["spec"]["replicas"] == 1
    assert operator["status"]["readyReplicas"] == 1


def test_a_failed_up_shows_its_cause_once(homelab: tuple[Engine, LocalCluster, Path]) -> None:
    engine, _, log = homelab
    cause = "Failed to create cluster: Docker is not running (k3d test double)"
    engine.env["K3D_STANDIN_FAIL"] = cause
    up = engine.up("homelab")
    assert up.returncode != 0
    assert k3d_calls(log) == [CREATE_FLANNEL]
    # The engine shows it live and once more under Diagnostics, and nothing else around it.
    diagnostics = up.output.split("Diagnostics:", 1)[1]
    assert diagnostics.count(cause) == 1, up.output
    # Not buried in the program's own shutdown noise (docs/real-engine.md).
    assert "Traceback" not in up.output, up.output
    assert "KeyboardInterrupt" not in up.output, up.output
