"""namespace-default-deny: every namespace the stack manages starts from default-deny, with DNS.

ADR-013's mitigation for the differences between environments is standard NetworkPolicy, which
both kube-router and Cilium enforce. Each Namespace the stack registers therefore needs:
- a default-deny ingress and a default-deny egress NetworkPolicy (`podSelector: {}`, the policy
  type listed, no rules of that direction), in one policy or two;
- an egress allow to cluster DNS on UDP 53 for every pod (`podSelector: {}`), because default-deny
  egress otherwise breaks name resolution. The destination is kube-dns (`k8s-app: kube-dns` in
  kube-system), all of kube-system, or any destination.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from .manifests import (
    NAMESPACE,
    NAMESPACE_NAME_LABEL,
    NETWORK_POLICY,
    effective_policy_types,
    is_empty_selector,
    is_everywhere,
    items,
    judged,
    k8s_object,
    mapping,
    namespace_name,
    of_type,
    port_number,
    report_unknown,
    selector_pins,
)

NAME = "namespace-default-deny"
DNS_PORT = 53


def _denies(spec: Mapping[str, Any], policy_type: str) -> bool:
    direction = policy_type.lower()
    return (
        is_empty_selector(spec.get("podSelector"))
        and policy_type in effective_policy_types(spec)
        and not items(spec.get(direction))
    )


def _allows_udp_53(ports: object) -> bool:
    if not items(ports):
        return True  # no ports: every port and protocol
    for entry in items(ports):
        port = mapping(entry)
        if port.get("protocol", "TCP") != "UDP":
            continue
        start, end = port.get("port"), port.get("endPort")
        if start is None or start == "dns":  # all UDP ports, or CoreDNS's named port
            return True
        first = port_number(start)
        last = port_number(end) if end is not None else first
        if first is not None and last is not None and first <= DNS_PORT <= last:
            return True
    return False


def _reaches_dns(peers: object, own_namespace: str) -> bool:
    if not items(peers):
        return True  # no `to`: any destination
    for entry in items(peers):
        peer = mapping(entry)
        if "ipBlock" in peer:
            if is_everywhere(mapping(peer["ipBlock"]).get("cidr")):
                return True
            continue
        namespaces = peer.get("namespaceSelector")
        if namespaces is None:
            in_kube_system = own_namespace == "kube-system"
        else:
            in_kube_system = is_empty_selector(namespaces) or selector_pins(
                namespaces, NAMESPACE_NAME_LABEL, "kube-system"
            )
        pods = peer.get("podSelector")
        to_kube_dns = (
            pods is None or is_empty_selector(pods) or selector_pins(pods, "k8s-app", "kube-dns")
        )
        if in_kube_system and to_kube_dns:
            return True
    return False


def _allows_dns(spec: Mapping[str, Any], namespace: str) -> bool:
    if not is_empty_selector(spec.get("podSelector")):
        return False
    if "Egress" not in effective_policy_types(spec):
        return False
    return any(
        _allows_udp_53(mapping(rule).get("ports"))
        and _reaches_dns(mapping(rule).get("to"), namespace)
        for rule in items(spec.get("egress"))
    )


def namespace_violations(namespace: str, policies: Sequence[PolicyResource]) -> Iterator[str]:
    specs = [
        mapping(p.props.get("spec"))
        for p in policies
        if k8s_object(p.props, "NetworkPolicy").namespace == namespace
    ]
    for policy_type in ("Ingress", "Egress"):
        if not any(_denies(spec, policy_type) for spec in specs):
            yield (
                f"Add a NetworkPolicy to namespace `{namespace}` with `podSelector: {{}}`, "
                f"policyTypes [{policy_type}] and no {policy_type.lower()} rules: every managed "
                f"namespace starts from default-deny {policy_type.lower()}."
            )
    if not any(_allows_dns(spec, namespace) for spec in specs):
        yield (
            f"Add a NetworkPolicy to namespace `{namespace}` with `podSelector: {{}}` allowing "
            "egress on UDP port 53 to kube-dns (k8s-app: kube-dns in kube-system): default-deny "
            "egress otherwise breaks DNS."
        )


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    policies = list(of_type(args.resources, NETWORK_POLICY))
    for resource in of_type(args.resources, NAMESPACE):
        try:
            namespace = namespace_name(resource.props)
        except UnknownValueError as error:
            report_unknown(error, report_violation, resource.urn)
            continue
        if namespace is None:
            continue
        # A namespace whose policies are not all known yet is not judged (see manifests.judged).
        for message in judged(namespace_violations(namespace, policies)):
            report_violation(message, resource.urn)


POLICY = StackValidationPolicy(
    name=NAME,
    description=(
        "Every namespace the stack manages has default-deny ingress and egress NetworkPolicies "
        "and a DNS egress allow (ADR-013: standard NetworkPolicy works on both CNIs)."
    ),
    validate=validate,
)
