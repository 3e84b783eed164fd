"""Against a real API server (the engine branch's local control plane, INTERFACES §2): the
CiliumConfig is accepted by its own CRD, the SCC bindings by RBAC, and the targeting check reads
a real kubeconfig. Marked `engine`: needs the toolchain's etcd, kube-apiserver and kwok."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from cnistack.config import parse_stack_config
from cnistack.openshift import cilium_config, scc_manifests
from cnistack.targeting import TargetError, check_target
from tests.factories import production_config
from tests.local_cluster import LocalCluster, local_cluster  # noqa: F401 (pytest fixture)

pytestmark = pytest.mark.engine

CRD = Path(__file__).resolve().parent / "data" / "ciliumconfigs.cilium.io.json"
FIELD_MANAGER = "?fieldManager=cnistack-openshift-test&force=true"


def _apply(cluster: LocalCluster, path: str, body: dict[str, Any]) -> Any:
    return cluster.api().request(
        "PATCH", path + FIELD_MANAGER, json.dumps(body), content_type="application/apply-patch+yaml"
    )


def _ciliumconfig_crd_established(cluster: LocalCluster) -> None:
    crd = {k: v for k, v in json.loads(CRD.read_text()).items() if not k.startswith("x-")}
    name = crd["metadata"]["name"]
    _apply(cluster, f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}", crd)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = cluster.api().get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        # Right after creation the CRD may have a status without conditions yet.
        conditions = (got.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        time.sleep(0.5)
    pytest.fail(f"CRD {name} not Established within 60 s")


def test_ciliumconfig_is_served_by_its_crd_with_the_values_intact(
    local_cluster: LocalCluster,  # noqa: F811
) -> None:
    _ciliumconfig_crd_established(local_cluster)
    _apply(
        local_cluster,
        "/api/v1/namespaces/cilium",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cilium"}},
    )
    manifest = cilium_config(
        parse_stack_config(
            production_config(cilium={"installMethod": "olm", "chart": {"version": "1.15.0"}})
        )
    )
    path = "/apis/cilium.io/v1alpha1/namespaces/cilium/ciliumconfigs/cilium"
    _apply(local_cluster, path, manifest)
    stored = local_cluster.api().get(path)
    assert stored["kind"] == "CiliumConfig"
    # The values reach the API server intact (the spec keeps unknown fields): as rendered.
    assert stored["spec"] == manifest["spec"]
    assert stored["spec"]["upgradeCompatibility"] == "1.15"


def test_scc_bindings_are_accepted_by_rbac(local_cluster: LocalCluster) -> None:  # noqa: F811
    role, binding = scc_manifests(parse_stack_config(production_config()))
    base = "/apis/rbac.authorization.k8s.io/v1"
    _apply(local_cluster, f"{base}/clusterroles/{role['metadata']['name']}", role)
    _apply(local_cluster, f"{base}/clusterrolebindings/{binding['metadata']['name']}", binding)
    stored = local_cluster.api().get(f"{base}/clusterrolebindings/cilium-scc-privileged")
    assert [s["name"] for s in stored["subjects"]] == [
        "cilium",
        "cilium-operator",
        "cilium-pre-flight",
    ]
    assert stored["roleRef"]["name"] == "cilium-scc-privileged"


def test_targeting_reads_the_real_kubeconfig(local_cluster: LocalCluster) -> None:  # noqa: F811
    text = local_cluster.kubeconfig.read_text()
    context = yaml.safe_load(text)["current-context"]
    right = parse_stack_config(
        production_config(
            cluster={"context": context, "server": local_cluster.server}, kubeconfig=text
        )
    )
    assert check_target(right, env={}) == local_cluster.server
    wrong = parse_stack_config(production_config(cluster={"context": context}, kubeconfig=text))
    with pytest.raises(TargetError) as err:
        check_target(wrong, env={})
    assert str(err.value) == (
        f"refusing to deploy stack cluster 'gtt-prod': the kubeconfig's context {context!r} "
        f"points at {local_cluster.server}, but aisp-cni:cluster.server declares "
        "https://api.gtt-prod.internal:6443. Fix the kubeconfig or context; nothing was changed."
    )
