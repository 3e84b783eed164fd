"""Cilium's Helm release, derived from the stack config (ADR-013 "Production : Cilium").

The values reproduce the ADR's `helm install` flags and add what they leave implicit:
the API server address that kube-proxy replacement needs, stable Hubble certificates,
Prometheus metrics, and the OpenShift and k3d specifics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnistack import cilium_versions
from cnistack.cilium_extra_values import merge_extra_values
from cnistack.cilium_versions import Version
from cnistack.config import CiliumSettings, K3dCluster, StackConfig
from cnistack.flavours import OPENSHIFT

CHART = "cilium"
NAMESPACE = "kube-system"
OLM_NAMESPACE = "cilium"
RELEASE_NAME = "cilium"
# Upstream's name for the preflight release (upgrade.rst, `helm install cilium-preflight`).
PREFLIGHT_RELEASE_NAME = "cilium-preflight"
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
# Chart 1.18's static exporter takes its rotation sizes under `hubble.export.static`.
STATIC_EXPORT_ROTATION = Version(1, 18, 0)
# Credentials that HTTP carries in headers (RFC 9110 Authorization/Proxy-Authorization, RFC 6265
# Cookie/Set-Cookie): Hubble replaces their values with "HUBBLE_REDACTED" in flows
# (`hubble.redact.http.headers.deny`, cilium-configmap.yaml hubble-redact-http-headers-deny).
REDACTED_HTTP_HEADERS = ("Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie")

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
    if hubble.redact:
        values["redact"] = {
            "enabled": True,
            "http": {
                "urlQuery": True,
                "userInfo": True,
                "headers": {"deny": list(REDACTED_HTTP_HEADERS)},
            },
            "kafka": {"apiKey": True},
        }
    return values


def _export_values(settings: CiliumSettings) -> dict[str, Any]:
    # Chart values.yaml `hubble.export`; cilium-configmap.yaml turns these into the agent's
    # hubble-export-file-path/-fieldmask/-allowlist/-denylist/-file-max-size-mb/-file-max-backups
    # flags (the static exporter, bound to the agent's lifecycle). Up to 1.17 the rotation sizes
    # are `hubble.export.fileMaxSizeMb/fileMaxBackups`; 1.18 moved them under `static`
    # (Documentation/operations/upgrade.rst of v1.18.11, "Helm Options": the old keys "will be
    # removed in Cilium 1.19"; 1.19.7's configmap still falls back to them).
    export = settings.export
    rotation = {"fileMaxSizeMb": export.file_max_size_mb, "fileMaxBackups": export.file_max_backups}
    static_rotation = Version.parse(settings.chart.version) >= STATIC_EXPORT_ROTATION
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
    if static_rotation:
        return {"static": {**static, **rotation}}
    return {**rotation, "static": static}


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


def helm_values(config: StackConfig, first_installed: str | None = None) -> dict[str, Any]:
    """The release's whole value set (never `--reuse-values`: upstream forbids it across minors).

    ``first_installed`` is the Cilium version first installed on the cluster (the stack's state
    or the Helm release's oldest revision, cnistack/cilium_upgrade.py); None on a fresh install.
    """
    settings = config.cilium_settings
    if settings is None:
        raise ValueError("helm_values needs a stack with cni: cilium")
    values: dict[str, Any] = {
        # Upstream: "set to the initial Cilium version which was installed in this cluster", so
        # a minor step keeps the datapath defaults of the first install (upgrade.rst).
        "upgradeCompatibility": cilium_versions.upgrade_compatibility(
            first_installed or settings.chart.version
        ),
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
        values["encryption"]["nodeEncryption"] = settings.node_encryption is not False
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


def preflight_values(config: StackConfig) -> dict[str, Any]:
    """Upstream's preflight check before a minor step: the new version's image pulled on every
    node and the cluster's policies validated against it, with no agent and no operator
    (Documentation/operations/upgrade.rst "Running pre-flight check"; k8sServiceHost/Port in the
    kube-proxy-free variant)."""
    settings = config.cilium_settings
    if settings is None:
        raise ValueError("preflight_values needs a stack with cni: cilium")
    values: dict[str, Any] = {
        "preflight": {"enabled": True},
        "agent": False,
        "operator": {"enabled": False},
    }
    if settings.kube_proxy_replacement:
        host, port = _api_server(config, settings)
        values["k8sServiceHost"] = host
        values["k8sServicePort"] = port
    return values


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
