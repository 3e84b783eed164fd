"""Cilium's Helm release, derived from the stack config (ADR-013 "Production : Cilium").

The values reproduce the ADR's `helm install` flags and add what they leave implicit:
the API server address that kube-proxy replacement needs, stable Hubble certificates,
Prometheus metrics, and the OpenShift and k3d specifics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnistack.cilium_extra_values import merge_extra_values
from cnistack.config import CiliumSettings, K3dCluster, StackConfig
from cnistack.flavours import OPENSHIFT

CHART = "cilium"
NAMESPACE = "kube-system"
OLM_NAMESPACE = "cilium"
RELEASE_NAME = "cilium"
HUBBLE_UI_SERVICE = "hubble-ui"
HUBBLE_UI_LOCAL_PORT = 12000
# The agent DaemonSet's rolling update: one node at a time (chart 1.15 default: 2). Upgrading
# Cilium restarts the agent and with it the L7 proxy (Envoy) that runs inside it: connections
# through the proxy on that node are reset, and new policy waits until the agent is back
# (Cilium 1.15 Documentation/operations/upgrade.rst, "Upgrade Impact"). One node at a time bounds
# that outage to one node, for a rollout twice as long (cnistack/cni_rollout.py's timeout).
AGENT_MAX_UNAVAILABLE = 1

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
        if settings.service_monitors:
            values["metrics"]["serviceMonitor"] = {"enabled": True}
    if settings.export.enabled:
        values["export"] = _export_values(settings)
    return values


def _export_values(settings: CiliumSettings) -> dict[str, Any]:
    # Chart 1.15.0 values.yaml `hubble.export`; cilium-configmap.yaml turns these into the
    # agent's hubble-export-file-path/-fieldmask/-allowlist/-denylist/-file-max-size-mb/
    # -file-max-backups flags (the static exporter, bound to the agent's lifecycle).
    export = settings.export
    static: dict[str, Any] = {
        "enabled": True,
        "filePath": export.file_path,
        "fieldMask": list(export.field_mask),
        "allowList": list(export.allow_list),
        "denyList": list(export.deny_list),
    }
    # An empty list is not in Helm's own record of the release after a real `up` (Pulumi's
    # Release drops it; tests/test_engine.py compares with that record): leave it out, so that
    # `render`'s cilium-values.yaml is exactly what Helm gets. The chart's default is [] anyway.
    static = {key: value for key, value in static.items() if value != []}
    return {
        "fileMaxSizeMb": export.file_max_size_mb,
        "fileMaxBackups": export.file_max_backups,
        "static": static,
    }


def _openshift_values(config: StackConfig) -> dict[str, Any]:
    """What OpenShift needs, whether Helm or the OLM operator renders the chart."""
    flavour = config.flavour
    network = config.cluster_network
    assert network is not None  # OpenShift always has a clusterNetwork (default 10.128.0.0/14)
    return {
        # Multus stays the cluster's CNI and keeps CNI binaries and config elsewhere; with
        # exclusive: true Cilium renames every non-Cilium CNI config, Multus's included, to
        # *.cilium_bak (chart 1.15.0 values.yaml cni.exclusive).
        "cni": {
            "binPath": flavour.cni_bin_path,
            "confPath": flavour.cni_conf_path,
            "exclusive": not flavour.cni_chained_behind_multus,
        },
        # The agent's privileged pods are admitted by the SCC bound in cnistack/openshift.py.
        "securityContext": {"privileged": True},
        # The chart's default pool 10.0.0.0/8 collides with most on-prem networks: hand out the
        # cluster's clusterNetwork, one /hostPrefix per node (olm-for-cilium
        # Documentation/k8s-install-openshift-okd.rst; ciliumconfig.conformance.v1.15.yaml).
        "ipam": {
            "mode": "cluster-pool",
            "operator": {
                "clusterPoolIPv4PodCIDRList": [network.cidr],
                "clusterPoolIPv4MaskSize": network.host_prefix,
            },
        },
    }


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
        "policyAuditMode": settings.policy_audit_mode,
        "updateStrategy": {"rollingUpdate": {"maxUnavailable": AGENT_MAX_UNAVAILABLE}},
    }
    if settings.prometheus and settings.service_monitors:
        values["prometheus"]["serviceMonitor"] = {"enabled": True}
        values["operator"]["prometheus"]["serviceMonitor"] = {"enabled": True}
    if settings.encryption != "disabled":
        values["encryption"]["type"] = settings.encryption
    if settings.kube_proxy_replacement:
        host, port = _api_server(config, settings)
        values["k8sServiceHost"] = host
        values["k8sServicePort"] = port
    cluster = config.cluster
    if config.flavour is OPENSHIFT:
        values.update(_openshift_values(config))
    if isinstance(cluster, K3dCluster):
        # Cilium's cluster-pool IPAM hands out K3s's pod CIDR (ADR-013 diagram: 10.42.x.x).
        values["ipam"] = {"operator": {"clusterPoolIPv4PodCIDRList": [cluster.pod_cidr]}}
        # The chart's operator runs 2 replicas with a required pod anti-affinity on the
        # hostname (install/kubernetes/cilium/values.yaml `operator.replicas`/`affinity`):
        # on a 1-node k3d cluster the second replica never schedules and the release's wait
        # times out (tests/test_engine_homelab.py, single node).
        values["operator"]["replicas"] = min(2, cluster.servers + cluster.agents)
    # Last, so the stack's escape hatch wins over every default above; the values the ADR
    # decides were refused when the config was read (cnistack/cilium_extra_values.py).
    return merge_extra_values(values, settings.extra_values)


def cilium_namespace(config: StackConfig) -> str:
    """kube-system for Helm (the ADR's `helm install --namespace kube-system`); `cilium` for the
    OLM operator, whose CiliumConfig and operands live there (olm-for-cilium manifests)."""
    settings = config.cilium_settings
    return OLM_NAMESPACE if settings and settings.install_method == "olm" else NAMESPACE


def hubble_ui_access(config: StackConfig) -> dict[str, str] | None:
    settings = config.cilium_settings
    if settings is None or not settings.hubble.ui:
        return None
    namespace = cilium_namespace(config)
    return {
        "service": f"{namespace}/{HUBBLE_UI_SERVICE}",
        "portForward": (
            f"kubectl -n {namespace} port-forward svc/{HUBBLE_UI_SERVICE} {HUBBLE_UI_LOCAL_PORT}:80"
        ),
        "url": f"http://localhost:{HUBBLE_UI_LOCAL_PORT}",
    }
