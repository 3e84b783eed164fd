"""`cilium.extraValues`: Helm values the typed settings do not cover, checked, then merged last.

The escape hatch for tuning (IPAM, `operator.replicas`, `routingMode`, tolerations, resources)
without a code change. Two rules keep it from weakening the ADR:
- every key path must exist in the chart's values.yaml at the pinned version (the derived key set
  of cnistack/chart_keys.py), so a typo is an error, not a value Helm silently ignores;
- a value the program derives, for this stack, from a typed setting (ADR-013's decisions:
  kube-proxy replacement, WireGuard, Hubble relay/UI/TLS, L7 proxy, metrics, and what the cluster
  flavour dictates) is refused, naming the setting to change instead. We refuse rather than
  offer an override flag: the typed setting is already the explicit, reviewed switch, and the
  policy pack guards the values it produces, so there is exactly one way to change each decision.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from typing import Any

from cnistack import chart_keys
from cnistack.cilium_versions import Version

# Helm value path -> the stack setting that decides it.
OWNED_VALUES: Mapping[str, str] = {
    "kubeProxyReplacement": "cilium.kubeProxyReplacement",
    "k8sServiceHost": "cilium.k8sServiceHost",
    "k8sServicePort": "cilium.k8sServicePort",
    "encryption.enabled": "cilium.encryption",
    "encryption.type": "cilium.encryption",
    "hubble.enabled": "cilium.hubble.enabled",
    "hubble.relay.enabled": "cilium.hubble.relay",
    "hubble.ui.enabled": "cilium.hubble.ui",
    "hubble.tls.auto": "cilium.hubble.tlsMethod",
    "l7Proxy": "cilium.l7Proxy",
    "prometheus.enabled": "cilium.prometheus",
    "operator.prometheus.enabled": "cilium.prometheus",
    "cni.binPath": "cluster.openshift",
    "cni.confPath": "cluster.openshift",
    "cni.exclusive": "cluster.openshift",
    "securityContext.privileged": "cluster.openshift",
    "ipam.mode": "cluster.clusterNetwork (OpenShift)",
    "ipam.operator.clusterPoolIPv4PodCIDRList": (
        "cluster.podCidr (k3d) or cluster.clusterNetwork (OpenShift)"
    ),
    "ipam.operator.clusterPoolIPv4MaskSize": "cluster.clusterNetwork (OpenShift)",
    "hubble.export": "cilium.export",
    "policyAuditMode": "cilium.policyAuditMode",
    "prometheus.serviceMonitor": "cilium.serviceMonitors",
    "operator.prometheus.serviceMonitor": "cilium.serviceMonitors",
    "hubble.redact": "cilium.hubble.redact",
    "encryption.nodeEncryption": "cilium.nodeEncryption",
    "upgradeCompatibility": "the Cilium version first installed (upgrade path)",
}

# Cilium validates its cluster name from 1.16 (bypassable with upgradeCompatibility <= 1.15) and
# strictly from 1.17: "at most 32 lower case alphanumeric characters and '-', start and end with
# an alphanumeric character" (Documentation/operations/upgrade.rst of v1.16.19 and v1.17.17).
CLUSTER_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")
CLUSTER_NAME_CHECKED_FROM = Version(1, 16, 0)


def _leaves(values: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, path)
        elif not isinstance(value, Mapping):
            yield path  # an empty mapping merges to nothing


def _overlaps(path: str, other: str) -> bool:
    # The same value, a part of it, or a parent that would replace it.
    return path == other or path.startswith(other + ".") or other.startswith(path + ".")


def _owner(path: str, owned: Mapping[str, str]) -> str | None:
    return next((setting for value, setting in owned.items() if _overlaps(path, value)), None)


def extra_value_problems(
    extra: Mapping[str, Any], version: str, program_values: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """(key path under ``cilium.extraValues``, reason) for every value that is refused.

    ``program_values`` are the values the program sets for this stack: a decision is owned where
    the program makes it (the pod CIDR list on k3d, the CNI paths on OpenShift), and free to tune
    where it does not (the same keys on a plain Kubernetes cluster).
    """
    if not extra:
        return []
    if not chart_keys.has_reference(version):
        return [
            (
                "",
                f"no key set for chart {version} to check against "
                f"(cnistack/data/cilium/{version}/values-keys.json): add the version to "
                "cnistack/data/cilium-upgrade-path.yaml and run "
                "scripts/derive_cilium_versions.py, or remove extraValues",
            )
        ]
    problems = []
    for path in chart_keys.unknown_value_keys(dict(extra), version):
        hint = chart_keys.nearest_key(path, version)
        suggestion = f"; did you mean {hint!r}?" if hint else ""
        problems.append((path, f"not a value of the cilium chart {version}{suggestion}"))
    unknown = {path for path, _ in problems}
    name = (
        (extra.get("cluster") or {}).get("name")
        if isinstance(extra.get("cluster"), Mapping)
        else None
    )
    if (
        name is not None
        and Version.parse(version) >= CLUSTER_NAME_CHECKED_FROM
        and not (isinstance(name, str) and CLUSTER_NAME.match(name))
    ):
        problems.append(
            (
                "cluster.name",
                f"Cilium {version} refuses cluster name {name!r}: at most 32 lower-case "
                "alphanumerics and '-', starting and ending alphanumeric (upgrade.rst, 1.16/1.17)",
            )
        )
    set_paths = chart_keys.value_paths(dict(program_values))
    owned = {
        value: setting
        for value, setting in OWNED_VALUES.items()
        if any(_overlaps(path, value) for path in set_paths)
    }
    for path in _leaves(extra):
        setting = _owner(path, owned)
        if setting is not None and path not in unknown:
            problems.append(
                (
                    path,
                    f"decided by the program from {setting} (ADR-013); change that setting "
                    "instead, where the policy pack checks it",
                )
            )
    return problems


def merge_extra_values(values: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's own merge of a later values file: mappings merge, anything else replaces."""
    merged = copy.deepcopy(dict(values))
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_extra_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
