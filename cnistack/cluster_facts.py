"""Read, before any resource, what an existing cluster runs: its Kubernetes version (`/version`)
and the Cilium Helm releases' history (Helm's storage Secrets in kube-system).

The kubeconfig and context are the ones safe targeting checked (cnistack/targeting.py); reading
uses the Kubernetes Python client with no retry, so an unreachable server fails at once.
"""

from __future__ import annotations

from typing import Any

import yaml
from kubernetes import client, config

from cnistack.cilium_upgrade import (
    PREFLIGHT_RELEASE_NAME,
    RELEASE_NAME,
    ClusterFacts,
    revisions_from_secrets,
)
from cnistack.config import ExistingCluster, StackConfig

NAMESPACE = "kube-system"
TIMEOUT_S = (5.0, 30.0)


def _api(stack: StackConfig) -> client.ApiClient:
    cluster = stack.cluster
    assert isinstance(cluster, ExistingCluster)
    configuration = client.Configuration()
    if stack.kubeconfig is not None:
        config.load_kube_config_from_dict(
            yaml.safe_load(stack.kubeconfig.get_secret_value()),
            context=cluster.context,
            client_configuration=configuration,
        )
    else:
        config.load_kube_config(context=cluster.context, client_configuration=configuration)
    configuration.retries = 0
    return client.ApiClient(configuration)


def read_cluster_facts(stack: StackConfig) -> ClusterFacts | None:
    """None for a k3d cluster (the stack creates it: nothing to read before its resources)."""
    if not isinstance(stack.cluster, ExistingCluster):
        return None
    with _api(stack) as api:
        version = client.VersionApi(api).get_code(_request_timeout=TIMEOUT_S).git_version
        secrets: list[Any] = []
        for name in (RELEASE_NAME, PREFLIGHT_RELEASE_NAME):
            listed = client.CoreV1Api(api).list_namespaced_secret(
                NAMESPACE,
                label_selector=f"owner=helm,name={name}",
                _request_timeout=TIMEOUT_S,
                _preload_content=False,
            )
            secrets += yaml.safe_load(listed.data)["items"]
    return ClusterFacts(server_version=version, revisions=revisions_from_secrets(secrets))
