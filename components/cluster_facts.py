"""Read, before any resource, what an existing cluster runs: its Kubernetes version (`/version`)
and the Cilium Helm releases' history (Helm's storage Secrets in kube-system).

Two GETs through components/kube_reader.py, the one reader of the program's own checks (the
rollout gate reads the cluster the same way), with the kubeconfig and context that safe
targeting checked (cnistack/targeting.py). What the answers mean is decided in the pure core
(cnistack/cilium_upgrade.py).
"""

from __future__ import annotations

import urllib.error
import urllib.parse
from typing import Any

from cnistack.cilium_upgrade import (
    PREFLIGHT_RELEASE_NAME,
    RELEASE_NAME,
    ClusterFacts,
    revisions_from_secrets,
)
from cnistack.config import ExistingCluster, StackConfig
from cnistack.targeting import TargetError
from components.kube_reader import ApiError, KubeconfigError, KubeReader

NAMESPACE = "kube-system"


def read_cluster_facts(stack: StackConfig) -> ClusterFacts | None:
    """None for a k3d cluster (the stack creates it: nothing to read before its resources)."""
    if not isinstance(stack.cluster, ExistingCluster):
        return None
    kubeconfig = stack.kubeconfig.get_secret_value() if stack.kubeconfig else None
    try:
        reader = KubeReader(kubeconfig, stack.cluster.context)
    except KubeconfigError as err:
        raise TargetError(str(err)) from None
    path = "/version"
    try:
        version = str(reader.get(path)["gitVersion"])
        secrets: list[Any] = []
        for name in (RELEASE_NAME, PREFLIGHT_RELEASE_NAME):
            selector = urllib.parse.quote(f"owner=helm,name={name}")
            path = f"/api/v1/namespaces/{NAMESPACE}/secrets?labelSelector={selector}"
            secrets += reader.get(path).get("items") or []
    except (ApiError, urllib.error.URLError, OSError, ValueError, KeyError) as err:
        raise TargetError(
            f"cannot read {path} from {reader.server} before any resource (the Cilium release "
            f"deployed and the Kubernetes version decide what this run may do): {err}"
        ) from None
    return ClusterFacts(server_version=version, revisions=revisions_from_secrets(secrets))
