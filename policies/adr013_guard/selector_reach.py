"""How far a selector or a set of CIDRs reaches, for the sensitive-namespace rule (not a policy).

Each answer fails closed: when the pack cannot prove a selector stays within named namespaces, it
treats it as reaching them all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from .manifests import CILIUM_NAMESPACE_LABELS, NAMESPACE_NAME_LABEL, items, mapping

# Operators that match namespaces *lacking* something: every namespace but a few.
_WIDE_OPERATORS = ("NotIn", "DoesNotExist")


def opens_all_namespaces(selector: object) -> bool:
    """A NetworkPolicy namespaceSelector matching every namespace (or all but a named few).

    `{}` does; so does `kubernetes.io/metadata.name Exists` (every namespace carries that label,
    Kubernetes 1.22+ sets it) and any NotIn/DoesNotExist expression without matchLabels.
    """
    if not isinstance(selector, Mapping):
        return False
    if mapping(selector.get("matchLabels")):
        return False
    expressions = [mapping(e) for e in items(selector.get("matchExpressions"))]
    return all(
        e.get("operator") in _WIDE_OPERATORS
        or (e.get("key") == NAMESPACE_NAME_LABEL and e.get("operator") == "Exists")
        for e in expressions
    )


def covered_everything(cidrs: Iterable[object]) -> str | None:
    """ "0.0.0.0/0" or "::/0" when these CIDRs together cover that whole address family.

    Two halves (0.0.0.0/1 and 128.0.0.0/1) open as much as 0.0.0.0/0.
    """
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for cidr in cidrs:
        if not isinstance(cidr, str):
            continue
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        (v4 if isinstance(network, ipaddress.IPv4Network) else v6).append(network)  # type: ignore[arg-type]
    if [str(n) for n in ipaddress.collapse_addresses(v4)] == ["0.0.0.0/0"]:
        return "0.0.0.0/0"
    if [str(n) for n in ipaddress.collapse_addresses(v6)] == ["::/0"]:
        return "::/0"
    return None


def clusterwide_targets(spec: Mapping[str, Any], sensitive: set[str]) -> list[str]:
    """The sensitive namespaces whose pods a CiliumClusterwideNetworkPolicy spec may select.

    A clusterwide `endpointSelector` is not limited to a namespace (cilium v1.15.0
    pkg/k8s/apis/cilium.io/utils/utils.go: the namespace match is added only for namespaced
    policies), so `{}` or `app: postgresql` selects pods in `storage` too. Only a selector that
    pins the namespace label to non-sensitive namespaces is known to stay out. A spec with a
    `nodeSelector` and no `endpointSelector` selects nodes (host policies), not pods.
    """
    if "endpointSelector" not in spec and "nodeSelector" in spec:
        return []
    selector = mapping(spec.get("endpointSelector"))
    possible = set(sensitive)
    labels = mapping(selector.get("matchLabels"))
    for key in CILIUM_NAMESPACE_LABELS:
        if key in labels:
            possible &= {labels[key]}
    for entry in items(selector.get("matchExpressions")):
        expression = mapping(entry)
        if expression.get("key") not in CILIUM_NAMESPACE_LABELS:
            continue
        values = {v for v in items(expression.get("values")) if isinstance(v, str)}
        operator = expression.get("operator")
        if operator == "In":
            possible &= values
        elif operator == "NotIn":
            possible -= values
        elif operator == "DoesNotExist":
            possible = set()
    return sorted(possible)


def any_namespace_in_clusterwide(selector: object) -> bool:
    """A clusterwide `fromEndpoints` selector that names no namespace admits every namespace.

    Cilium adds `k8s:io.kubernetes.pod.namespace Exists` to it, not the policy's own namespace
    (same utils.go, getEndpointSelector with namespace "").
    """
    selector = mapping(selector)
    if any(k in CILIUM_NAMESPACE_LABELS for k in mapping(selector.get("matchLabels"))):
        return False
    return not any(
        mapping(e).get("key") in CILIUM_NAMESPACE_LABELS
        and mapping(e).get("operator") in ("In", "DoesNotExist")
        for e in items(selector.get("matchExpressions"))
    )
