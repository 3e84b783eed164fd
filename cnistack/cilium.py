"""Cilium's Helm release, derived from the stack config (ADR-013 "Production : Cilium").

The values reproduce the ADR's `helm install` flags and add what they leave implicit:
the API server address that kube-proxy replacement needs, stable Hubble certificates,
Prometheus metrics, and the OpenShift and k3d specifics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnistack.config import CiliumSettings, ExistingCluster, K3dCluster, StackConfig

CHART = "cilium"
NAMESPACE = "kube-system"
RELEASE_NAME = "cilium"
HUBBLE_UI_SERVICE = "hubble-ui"
HUBBLE_UI_LOCAL_PORT = 12000

# Hubble metrics the ADR's audit requirement (C4-C5, "Conformité : Audit via Hubble")
# needs: drops and flows, and HTTP with workload context for L7 rules.
HUBBLE_METRICS = (
    "dns",
    "drop",
    "tcp",
    "flow",
    "port-distribution",
    "icmp",
    "httpV2:exemplars=true;labelsContext=source_namespace,source_workload,"
    "destination_namespace,destination_workload,traffic_direction",
)


@dataclass(frozen=True)
class ChartRef:
    """What helm.v3.Release needs to find the chart."""

    chart: str
    version: str
    repository: str | None


def chart_ref(settings: CiliumSettings) -> ChartRef:
    source = settings.chart.source
    if source.path is not None:
        return ChartRef(chart=source.path, version=settings.chart.version, repository=None)
    if source.oci is not None:
        return ChartRef(
            chart=f"{source.oci.rstrip('/')}/{CHART}",
            version=settings.chart.version,
            repository=None,
        )
    return ChartRef(chart=CHART, version=settings.chart.version, repository=source.repository)


def _api_server(config: StackConfig, settings: CiliumSettings) -> tuple[str, int]:
    cluster = config.cluster
    if settings.k8s_service_host and settings.k8s_service_port:
        return settings.k8s_service_host, settings.k8s_service_port
    if isinstance(cluster, K3dCluster):
        return cluster.api_server_node, 6443
    raise ValueError("unreachable: StackConfig checks the API server for existing clusters")


def _hubble_values(settings: CiliumSettings) -> dict[str, Any]:
    hubble = settings.hubble
    if not hubble.enabled:
        return {"enabled": False}
    auto: dict[str, Any] = {"enabled": True, "method": hubble.tls_method}
    if hubble.tls_method == "certmanager":
        auto["certManagerIssuerRef"] = {
            "group": "cert-manager.io",
            "kind": "ClusterIssuer",
            "name": hubble.cert_manager_issuer,
        }
    values: dict[str, Any] = {
        "enabled": True,
        "relay": {"enabled": hubble.relay},
        "ui": {"enabled": hubble.ui},
        "tls": {"auto": auto},
    }
    if settings.prometheus:
        values["metrics"] = {"enabled": list(HUBBLE_METRICS), "enableOpenMetrics": True}
    return values


def helm_values(config: StackConfig) -> dict[str, Any]:
    settings = config.cilium_settings
    if settings is None:
        raise ValueError("helm_values needs a stack with cni: cilium")
    values: dict[str, Any] = {
        "kubeProxyReplacement": settings.kube_proxy_replacement,
        "encryption": {"enabled": settings.encryption != "disabled"},
        "hubble": _hubble_values(settings),
        "l7Proxy": settings.l7_proxy,
        "prometheus": {"enabled": settings.prometheus},
        "operator": {"prometheus": {"enabled": settings.prometheus}},
    }
    if settings.encryption != "disabled":
        values["encryption"]["type"] = settings.encryption
    if settings.kube_proxy_replacement:
        host, port = _api_server(config, settings)
        values["k8sServiceHost"] = host
        values["k8sServicePort"] = port
    cluster = config.cluster
    if isinstance(cluster, ExistingCluster) and cluster.openshift:
        # OpenShift runs Multus in front of the CNI and keeps CNI binaries elsewhere;
        # its SCCs need the agent privileged. Ref: Cilium's OpenShift install guide.
        values["cni"] = {"binPath": "/var/lib/cni/bin", "confPath": "/var/run/multus/cni/net.d"}
        values["securityContext"] = {"privileged": True}
    if isinstance(cluster, K3dCluster):
        # Cilium's cluster-pool IPAM hands out K3s's pod CIDR (ADR-013 diagram: 10.42.x.x).
        values["ipam"] = {"operator": {"clusterPoolIPv4PodCIDRList": [cluster.pod_cidr]}}
        # The chart's operator runs 2 replicas with a required pod anti-affinity on the
        # hostname (install/kubernetes/cilium/values.yaml `operator.replicas`/`affinity`):
        # on a 1-node k3d cluster the second replica never schedules and the release's wait
        # times out (tests/test_engine_homelab.py, single node).
        values["operator"]["replicas"] = min(2, cluster.servers + cluster.agents)
    return values


def hubble_ui_access(config: StackConfig) -> dict[str, str] | None:
    settings = config.cilium_settings
    if settings is None or not settings.hubble.ui:
        return None
    return {
        "service": f"{NAMESPACE}/{HUBBLE_UI_SERVICE}",
        "portForward": (
            f"kubectl -n {NAMESPACE} port-forward svc/{HUBBLE_UI_SERVICE} {HUBBLE_UI_LOCAL_PORT}:80"
        ),
        "url": f"http://localhost:{HUBBLE_UI_LOCAL_PORT}",
    }


def value_paths(values: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every leaf the program sets, for checking against the chart."""
    if not isinstance(values, dict) or not values:
        return [prefix] if prefix else []
    paths: list[str] = []
    for key, value in values.items():
        paths += value_paths(value, f"{prefix}.{key}" if prefix else key)
    return paths
