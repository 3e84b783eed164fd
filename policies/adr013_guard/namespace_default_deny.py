"""namespace-default-deny: every namespace the stack manages starts from default-deny, with DNS.

ADR-013's mitigation for the differences between environments is standard NetworkPolicy, which
both kube-router and Cilium enforce. Each Namespace the stack registers therefore needs:
- a default-deny ingress and a default-deny egress NetworkPolicy (`podSelector: {}`, the policy
  type listed, no rules of that direction), in one policy or two;
- an egress allow to cluster DNS for every pod (`podSelector: {}`), because default-deny egress
  otherwise breaks name resolution. Where cluster DNS runs is the cluster flavour's: this policy's
  `dns` config property names the DNS pods' namespace, labels and ports (policies/config/*.json;
  OpenShift: openshift-dns, `dns.operator.openshift.io/daemonset-dns: default`, 5353 UDP and TCP,
  since NetworkPolicy applies to the pod port after the dns-default Service's DNAT from 53).
  Without the property: kube-dns (`k8s-app: kube-dns` in kube-system) on UDP and TCP 53, the
  DNS of K3s and kubeadm clusters (CoreDNS serves both; a client falls back to TCP for answers
  over 512 bytes, RFC 7766). tests/test_pack_config.py holds this default equal to the program's
  K3s/Kubernetes flavour without the pack importing it. The allow must
  reach that namespace (or every namespace, or any destination) and those pods (or all pods) on
  every configured port.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
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
# Kubernetes' and K3s's CoreDNS; used when the pack config names no `dns`.
DEFAULT_DNS: Mapping[str, Any] = {
    "namespace": "kube-system",
    "podLabels": {"k8s-app": "kube-dns"},
    "ports": [{"port": DNS_PORT, "protocol": "UDP"}, {"port": DNS_PORT, "protocol": "TCP"}],
}

CONFIG_SCHEMA = PolicyConfigSchema(
    properties={
        "dns": {
            "type": "object",
            "description": "Where the cluster's DNS pods run: namespace, pod labels, pod ports.",
            "properties": {
                "namespace": {"type": "string", "minLength": 1},
                "podLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                "ports": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                            "protocol": {"enum": ["TCP", "UDP"]},
                        },
                        "required": ["port", "protocol"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": ["namespace", "podLabels", "ports"],
            "additionalProperties": False,
        },
    },
)


def _denies(spec: Mapping[str, Any], policy_type: str) -> bool:
    direction = policy_type.lower()
    return (
        is_empty_selector(spec.get("podSelector"))
        and policy_type in effective_policy_types(spec)
        and not items(spec.get(direction))
    )


def _allows_port(ports: object, number: int, protocol: str) -> bool:
    if not items(ports):
        return True  # no ports: every port and protocol
    for entry in items(ports):
        port = mapping(entry)
        if port.get("protocol", "TCP") != protocol:
            continue
        start, end = port.get("port"), port.get("endPort")
        # All ports of the protocol, or CoreDNS's named ports (dns / dns-tcp on both flavours).
        if start is None or start == ("dns" if protocol == "UDP" else "dns-tcp"):
            return True
        first = port_number(start)
        last = port_number(end) if end is not None else first
        if first is not None and last is not None and first <= number <= last:
            return True
    return False


def _allows_dns_ports(ports: object, dns: Mapping[str, Any]) -> bool:
    # Config numbers arrive as floats, like resource properties (see manifests.py).
    return all(
        _allows_port(
            ports, port_number(mapping(p).get("port")) or 0, str(mapping(p).get("protocol"))
        )
        for p in items(dns.get("ports"))
    )


def _selects_dns_pods(pods: object, labels: Mapping[str, Any]) -> bool:
    if pods is None or is_empty_selector(pods):
        return True
    # Every label the selector demands must be one the DNS pods carry (matchLabels only: a
    # matchExpressions selector is not proven to select them).
    demanded = mapping(mapping(pods).get("matchLabels"))
    if items(mapping(pods).get("matchExpressions")) or not demanded:
        return False
    return all(labels.get(key) == value for key, value in demanded.items())


def _reaches_dns(peers: object, own_namespace: str, dns: Mapping[str, Any]) -> bool:
    if not items(peers):
        return True  # no `to`: any destination
    for entry in items(peers):
        peer = mapping(entry)
        if "ipBlock" in peer:
            if is_everywhere(mapping(peer["ipBlock"]).get("cidr")):
                return True
            continue
        dns_namespace = str(dns.get("namespace"))
        namespaces = peer.get("namespaceSelector")
        if namespaces is None:
            in_dns_namespace = own_namespace == dns_namespace
        else:
            in_dns_namespace = is_empty_selector(namespaces) or selector_pins(
                namespaces, NAMESPACE_NAME_LABEL, dns_namespace
            )
        to_dns_pods = _selects_dns_pods(peer.get("podSelector"), mapping(dns.get("podLabels")))
        if in_dns_namespace and to_dns_pods:
            return True
    return False


def _allows_dns(spec: Mapping[str, Any], namespace: str, dns: Mapping[str, Any]) -> bool:
    if not is_empty_selector(spec.get("podSelector")):
        return False
    if "Egress" not in effective_policy_types(spec):
        return False
    return any(
        _allows_dns_ports(mapping(rule).get("ports"), dns)
        and _reaches_dns(mapping(rule).get("to"), namespace, dns)
        for rule in items(spec.get("egress"))
    )


def _describe_dns(dns: Mapping[str, Any]) -> str:
    labels = ", ".join(f"{k}: {v}" for k, v in mapping(dns.get("podLabels")).items())
    ports = " and ".join(
        f"{mapping(p).get('protocol')} port {port_number(mapping(p).get('port'))}"
        for p in items(dns.get("ports"))
    )
    return f"on {ports} to the DNS pods ({labels} in {dns.get('namespace')})"


def namespace_violations(
    namespace: str, policies: Sequence[PolicyResource], dns: Mapping[str, Any] = DEFAULT_DNS
) -> Iterator[str]:
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
    if not any(_allows_dns(spec, namespace, dns) for spec in specs):
        yield (
            f"Add a NetworkPolicy to namespace `{namespace}` with `podSelector: {{}}` allowing "
            f"egress {_describe_dns(dns)}: default-deny egress otherwise breaks DNS."
        )


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    dns = mapping(args.get_config().get("dns")) or DEFAULT_DNS
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
        for message in judged(namespace_violations(namespace, policies, dns)):
            report_violation(message, resource.urn)


POLICY = StackValidationPolicy(
    name=NAME,
    description=(
        "Every namespace the stack manages has default-deny ingress and egress NetworkPolicies "
        "and a DNS egress allow (ADR-013: standard NetworkPolicy works on both CNIs)."
    ),
    validate=validate,
    config_schema=CONFIG_SCHEMA,
)
