"""Valid raw stack configs (as in a stack file), to change one key at a time, and the exact
expected values several test modules share (written out, never computed by the code under test).
Test modules import these from here, never from each other."""

from __future__ import annotations

import copy
from typing import Any

_HOMELAB: dict[str, Any] = {"cni": "flannel", "cluster": {"kind": "k3d"}}
_PRODUCTION: dict[str, Any] = {
    "cni": "cilium",
    "cluster": {
        "kind": "existing",
        "name": "gtt-prod",
        "openshift": True,
        "context": "gtt-prod",
        "server": "https://api.gtt-prod.internal:6443",
        "deployKubeProxy": False,
    },
    "cilium": {"k8sServiceHost": "api.gtt-prod.internal", "k8sServicePort": 6443},
}


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def homelab_config(**overrides: Any) -> dict[str, Any]:
    return _merge(_HOMELAB, overrides)


def production_config(**overrides: Any) -> dict[str, Any]:
    return _merge(_PRODUCTION, overrides)


# Cilium's Helm values for the committed production stack (ADR-013's flags plus what they imply).
HUBBLE_METRICS = [
    "dns",
    "drop",
    "tcp",
    "flow",
    "port-distribution",
    "icmp",
    "httpV2:exemplars=true;labelsContext=source_namespace,source_workload,"
    "destination_namespace,destination_workload,traffic_direction",
]

PRODUCTION_VALUES: dict[str, Any] = {
    # Upstream's upgrade procedure: the version first installed (a fresh 1.19.7 here).
    "upgradeCompatibility": "1.19",
    "kubeProxyReplacement": True,
    "k8sServiceHost": "api.gtt-prod.internal",
    "k8sServicePort": 6443,
    # Node-to-node too: the host-network router's traffic to pods on other nodes.
    "encryption": {"enabled": True, "type": "wireguard", "nodeEncryption": True},
    "hubble": {
        "enabled": True,
        "relay": {"enabled": True},
        "ui": {"enabled": True},
        "tls": {"auto": {"enabled": True, "method": "cronJob"}},
        "metrics": {"enabled": HUBBLE_METRICS, "enableOpenMetrics": True},
        # The audit trail (ADR-013 "Conformité : Audit via Hubble"): the static exporter, every
        # denial and every L7 record, rotated at 50 MB x 10 files (under `static` from 1.18).
        "export": {
            "static": {
                "fileMaxSizeMb": 50,
                "fileMaxBackups": 10,
                "enabled": True,
                "filePath": "/var/run/cilium/hubble/events.log",
                "fieldMask": [
                    "time",
                    "node_name",
                    "source",
                    "destination",
                    "IP",
                    "l4",
                    "verdict",
                    "drop_reason_desc",
                    "Type",
                    "l7",
                    "traffic_direction",
                    "policy_match_type",
                    "is_reply",
                    "Summary",
                ],
                "allowList": [
                    '{"verdict":["DROPPED","ERROR","AUDIT"]}',
                    '{"event_type":[{"type":129}]}',
                ],
            },
        },
        # The audit trail carries no secrets: URL queries, user info, credential headers and
        # Kafka API keys are redacted.
        "redact": {
            "enabled": True,
            "http": {
                "urlQuery": True,
                "userInfo": True,
                "headers": {
                    "deny": ["Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie"]
                },
            },
            "kafka": {"apiKey": True},
        },
    },
    "l7Proxy": True,
    "prometheus": {"enabled": True},
    "operator": {"prometheus": {"enabled": True}},
    "policyAuditMode": False,
    # One agent restarted at a time in a rolling upgrade (the chart's default is 2): each restart
    # resets the connections through that node's L7 proxy (Cilium upgrade.rst, "Upgrade Impact").
    "updateStrategy": {"rollingUpdate": {"maxUnavailable": 1}},
    # OpenShift: Multus stays the CNI, OpenShift's clusterNetwork default 10.128.0.0/14 with
    # hostPrefix 23 (install-config), never the chart's 10.0.0.0/8.
    "cni": {
        "binPath": "/var/lib/cni/bin",
        "confPath": "/var/run/multus/cni/net.d",
        "exclusive": False,
    },
    "securityContext": {"privileged": True},
    "ipam": {
        "mode": "cluster-pool",
        "operator": {
            "clusterPoolIPv4PodCIDRList": ["10.128.0.0/14"],
            "clusterPoolIPv4MaskSize": 23,
        },
    },
}

# What `pulumi up -s homelab` runs to create the k3d cluster (the committed homelab stack).
HOMELAB_CREATE = (
    "k3d cluster create aisp-homelab --servers 1 --agents 2 --image rancher/k3s:v1.35.8-k3s1 "
    "--api-port 127.0.0.1:6550 --kubeconfig-update-default=false "
    "--kubeconfig-switch-context=false --wait"
)
