"""`cilium.extraValues`: Helm values the typed settings do not cover, checked, then merged last.

The escape hatch for tuning (IPAM, `operator.replicas`, `routingMode`, tolerations, resources)
without a code change. Two rules keep it from weakening the ADR:
- every key path must exist in the chart's values.yaml at the pinned version (the derived key set
  of cnistack/chart_keys.py), so a typo is an error, not a value Helm silently ignores;
- a value the program derives from a typed setting (ADR-013's decisions: kube-proxy replacement,
  WireGuard, Hubble relay/UI/TLS, L7 proxy, metrics, and what the cluster flavour dictates) is
  refused, naming the setting to change instead. We refuse rather than allow an override flag:
  the typed setting is already the explicit, reviewed switch, and the policy pack guards the
  values it produces, so there is exactly one way to change each decision.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from cnistack import chart_keys

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
    "cni.binPath": "cluster (the OpenShift flavour)",
    "cni.confPath": "cluster (the OpenShift flavour)",
    "securityContext.privileged": "cluster (the OpenShift flavour)",
    "ipam.operator.clusterPoolIPv4PodCIDRList": "cluster.podCidr",
}


def _leaves(values: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, path)
        elif not isinstance(value, Mapping):
            yield path  # an empty mapping merges to nothing


def _owner(path: str) -> str | None:
    for owned, setting in OWNED_VALUES.items():
        # The same value, a part of it, or a parent that would replace it.
        if path == owned or path.startswith(owned + ".") or owned.startswith(path + "."):
            return setting
    return None


def extra_value_problems(extra: Mapping[str, Any], version: str) -> list[tuple[str, str]]:
    """(key path under ``cilium.extraValues``, reason) for every value that is refused."""
    if not extra:
        return []
    if not chart_keys.has_reference(version):
        return [
            (
                "",
                f"no key set for chart {version} to check against "
                f"(cnistack/data/cilium-{version}-values-keys.json): derive it with "
                "scripts/derive_chart_keys.py, or remove extraValues",
            )
        ]
    problems = []
    for path in chart_keys.unknown_value_keys(dict(extra), version):
        hint = chart_keys.nearest_key(path, version)
        suggestion = f"; did you mean {hint!r}?" if hint else ""
        problems.append((path, f"not a value of the cilium chart {version}{suggestion}"))
    unknown = {path for path, _ in problems}
    for path in _leaves(extra):
        setting = _owner(path)
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
