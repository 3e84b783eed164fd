"""Render the policy model into plain Kubernetes/Cilium manifests for one capability profile.

Decisions follow the profile, never the CNI's name:
- every managed namespace is isolated (default-deny ingress and egress) and may resolve DNS
  through the cluster flavour's DNS pods (cnistack/flavours.py: kube-dns on K3s and Kubernetes,
  openshift-dns on 5353 on OpenShift);
- only the flows of the stack's cluster flavour are rendered (`flavours:` in the model);
- a host-network source (`{hostNetwork: NS}`) is admitted as the `host`/`remote-node` entities
  where the profile has them (Cilium), else through the flavour's namespace label (OpenShift's
  `policy-group.network.openshift.io/ingress`); a stack with neither refuses to render it;
- every flow opens both sides, since egress is default-deny too: an egress allow in the source
  namespace and an ingress allow in the destination namespace (only in managed namespaces);
- with `l7_policy`, an L7 flow's ingress side is a CiliumNetworkPolicy with `rules.http` and no
  NetworkPolicy on that port (allow rules are additive: a whole-port NetworkPolicy would silently
  defeat the L7 rule); without it, the flow is enforced on its whole port and a `FidelityGap` says
  which rules were lost (ADR-013, "Conséquences": no L7 NetworkPolicy in the home lab).

Manifest names (per namespace, stable across renders):
- `default-deny` and `allow-dns` in every managed namespace;
- `<flow>-egress` (source namespace) and `<flow>-ingress` (destination namespace), whatever the
  kind; flow names are DNS labels, so these never collide with the two fixed names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cnistack.capabilities import CapabilityProfile
from cnistack.flavours import ClusterDns, ClusterFlavour
from cnistack.netpol.policy_model import (
    Flow,
    FlowPort,
    HostNetworkRef,
    Namespace,
    PolicyModel,
    Workload,
    WorkloadRef,
)
from reachability.k8s_names import NAMESPACE_NAME_LABEL

Manifest = dict[str, Any]

MANAGED_BY = ("app.kubernetes.io/managed-by", "cnistack")
# Read by the CrossGuard pack (policies/) to find namespaces holding C4-C5 data; present with
# value "true" only on sensitive namespaces.
SENSITIVE_LABEL = "cnistack.io/sensitive"
# Which flow of the model a manifest implements; lets reviewers and the pack trace it back.
FLOW_LABEL = "cnistack.io/flow"
DEFAULT_DENY_NAME = "default-deny"
# Not "allow-kube-dns": on OpenShift the DNS pods are dns-default in openshift-dns.
DNS_ALLOW_NAME = "allow-dns"
# Cilium's label for an endpoint's namespace in endpoint selectors.
CILIUM_NAMESPACE_LABEL = "k8s:io.kubernetes.pod.namespace"
# Cilium's reserved identities of the local node and of the other nodes, host-network pods
# included (Cilium 1.15 Documentation/security/policy/language.rst, "Entities Based").
HOST_NETWORK_ENTITIES = ("host", "remote-node")

_KIND_ORDER = {"Namespace": 0, "NetworkPolicy": 1, "CiliumNetworkPolicy": 2}
# Metacharacters of POSIX extended regular expressions (and Go's RE2, which Cilium uses).
_ERE_SPECIAL = frozenset("\\.^$|?*+()[]{}")


@dataclass(frozen=True)
class FidelityGap:
    """An L7 flow this stack enforces only at L4."""

    flow: str
    namespace: str
    workload: str
    port: int
    protocol: str
    lost_rules: tuple[str, ...]
    enforced_as: str

    @property
    def message(self) -> str:
        return (
            f"flow {self.flow!r}: {self.namespace}/{self.workload} enforced as "
            f"{self.enforced_as}; L7 rules not enforced: {', '.join(self.lost_rules)}"
        )

    def as_output(self) -> dict[str, object]:
        return {
            "flow": self.flow,
            "namespace": self.namespace,
            "workload": self.workload,
            "port": self.port,
            "protocol": self.protocol,
            "lost_rules": list(self.lost_rules),
            "enforced_as": self.enforced_as,
            "message": self.message,
        }


@dataclass(frozen=True)
class RenderedPolicies:
    manifests: tuple[Manifest, ...]
    fidelity: tuple[FidelityGap, ...]


def ere_escape(literal: str) -> str:
    return "".join(f"\\{ch}" if ch in _ERE_SPECIAL else ch for ch in literal)


def anchored(literal: str) -> str:
    """Cilium matches HTTP method and path as regexes on the whole value; match exactly."""
    return f"^{ere_escape(literal)}$"


def render_policies(
    model: PolicyModel, profile: CapabilityProfile, flavour: ClusterFlavour
) -> RenderedPolicies:
    if not profile.l3_l4_network_policy:
        raise ValueError(
            f"profile {profile.policy_enforcer!r} enforces no NetworkPolicy; refusing to render "
            "isolation that would not be enforced"
        )
    manifests: list[Manifest] = []
    gaps: list[FidelityGap] = []
    for ns in model.managed_namespaces:
        manifests += [
            namespace_manifest(ns),
            default_deny(ns.name),
            dns_allow(ns.name, flavour.dns),
        ]
    for flow in model.flows:
        if not flow.exists_on(flavour.name):
            continue
        destination = model.workload(flow.destination)
        if isinstance(flow.source, HostNetworkRef):
            # NetworkPolicy does not apply to host-network pods: no egress side exists.
            if model.is_managed(destination.namespace):
                manifests.append(_host_network_ingress(flow, destination, profile, flavour))
                if flow.needs_l7_policy and not (profile.host_entities and profile.l7_policy):
                    gaps += [_gap(flow, destination, port) for port in flow.ports]
            continue
        if model.is_managed(flow.source.namespace):
            manifests.append(_egress_policy(model, flow, destination))
        if not model.is_managed(destination.namespace):
            continue
        if flow.needs_l7_policy and profile.l7_policy:
            manifests.append(_l7_ingress_policy(model, flow, destination))
        else:
            manifests.append(_ingress_policy(model, flow, destination))
            if flow.needs_l7_policy:
                gaps += [_gap(flow, destination, port) for port in flow.ports]
    manifests.sort(key=_manifest_order)
    return RenderedPolicies(manifests=tuple(manifests), fidelity=tuple(gaps))


def _manifest_order(manifest: Manifest) -> tuple[int, str, str]:
    meta = manifest["metadata"]
    return (_KIND_ORDER[manifest["kind"]], meta.get("namespace", ""), meta["name"])


def _labels(*extra: tuple[str, str]) -> dict[str, str]:
    return dict([MANAGED_BY, *extra])


def _meta(name: str, namespace: str, flow: Flow | None = None) -> dict[str, Any]:
    extra = [(FLOW_LABEL, flow.name)] if flow else []
    return {"name": name, "namespace": namespace, "labels": _labels(*extra)}


def namespace_manifest(ns: Namespace) -> Manifest:
    labels = {**ns.labels, NAMESPACE_NAME_LABEL: ns.name, **_labels()}
    if ns.sensitive:
        labels[SENSITIVE_LABEL] = "true"
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": ns.name, "labels": labels},
    }


def default_deny(namespace: str) -> Manifest:
    return _network_policy(
        _meta(DEFAULT_DENY_NAME, namespace),
        {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    )


def dns_allow(namespace: str, dns: ClusterDns) -> Manifest:
    kube_dns = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: dns.namespace}},
        "podSelector": {"matchLabels": dict(dns.pod_labels)},
    }
    # The DNS pods' own ports: NetworkPolicy applies after the Service's DNAT (53 -> 5353 on
    # OpenShift's dns-default).
    ports = [{"port": p.port, "protocol": p.protocol} for p in dns.ports]
    return _network_policy(
        _meta(DNS_ALLOW_NAME, namespace),
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [kube_dns], "ports": ports}],
        },
    )


def _network_policy(metadata: dict[str, Any], spec: dict[str, Any]) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": spec,
    }


def _selector(labels: Mapping[str, str]) -> dict[str, Any]:
    return {"matchLabels": dict(labels)}


def _peer(
    namespace: str, labels: Mapping[str, str] | None, policy_namespace: str
) -> dict[str, Any]:
    """A NetworkPolicy peer; namespaceSelector and podSelector in one peer are ANDed."""
    peer: dict[str, Any] = {}
    if namespace != policy_namespace:
        peer["namespaceSelector"] = _selector({NAMESPACE_NAME_LABEL: namespace})
    if labels is not None:
        peer["podSelector"] = _selector(labels)
    elif namespace == policy_namespace:
        peer["podSelector"] = {}
    return peer


def _np_ports(ports: tuple[FlowPort, ...]) -> list[dict[str, Any]]:
    return [{"port": p.port, "protocol": p.protocol} for p in ports]


def _http_rules(flow: Flow) -> list[dict[str, str]]:
    return [
        {"method": anchored(rule.method), "path": anchored(rule.path)} for rule in flow.http
    ] + [{"method": anchored("POST"), "path": anchored(rule.path)} for rule in flow.grpc]


def _host_network_ingress(
    flow: Flow, destination: Workload, profile: CapabilityProfile, flavour: ClusterFlavour
) -> Manifest:
    meta = _meta(f"{flow.name}-ingress", destination.namespace, flow)
    if profile.host_entities:
        to_port: dict[str, Any] = {
            "ports": [{"port": str(p.port), "protocol": p.protocol} for p in flow.ports]
        }
        if flow.needs_l7_policy and profile.l7_policy:
            to_port["rules"] = {"http": _http_rules(flow)}
        rule = {"fromEntities": list(HOST_NETWORK_ENTITIES), "toPorts": [to_port]}
        return {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": meta,
            "spec": {"endpointSelector": _selector(destination.labels), "ingress": [rule]},
        }
    if flavour.host_network_ingress_label is None:
        raise ValueError(
            f"flow {flow.name!r}: a hostNetwork source needs Cilium's host/remote-node entities "
            f"or OpenShift's ingress policy-group label; cluster flavour {flavour.name!r} with "
            f"enforcer {profile.policy_enforcer!r} has neither"
        )
    key, value = flavour.host_network_ingress_label
    # `podSelector: {}` beside the namespaceSelector: OpenShift's "About network policy" warns
    # that a namespaceSelector without it does not include hostNetwork pods.
    peer = {"namespaceSelector": _selector({key: value}), "podSelector": {}}
    spec = {
        "podSelector": _selector(destination.labels),
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [peer], "ports": _np_ports(flow.ports)}],
    }
    return _network_policy(meta, spec)


def _source_labels(model: PolicyModel, flow: Flow) -> Mapping[str, str] | None:
    if isinstance(flow.source, WorkloadRef):
        return model.workload(flow.source).labels
    return None


def _egress_policy(model: PolicyModel, flow: Flow, destination: Workload) -> Manifest:
    namespace = flow.source.namespace
    source_labels = _source_labels(model, flow)
    rule = {
        "to": [_peer(destination.namespace, destination.labels, namespace)],
        "ports": _np_ports(flow.ports),
    }
    spec = {
        "podSelector": _selector(source_labels) if source_labels is not None else {},
        "policyTypes": ["Egress"],
        "egress": [rule],
    }
    return _network_policy(_meta(f"{flow.name}-egress", namespace, flow), spec)


def _ingress_policy(model: PolicyModel, flow: Flow, destination: Workload) -> Manifest:
    namespace = destination.namespace
    rule = {
        "from": [_peer(flow.source.namespace, _source_labels(model, flow), namespace)],
        "ports": _np_ports(flow.ports),
    }
    spec = {
        "podSelector": _selector(destination.labels),
        "policyTypes": ["Ingress"],
        "ingress": [rule],
    }
    return _network_policy(_meta(f"{flow.name}-ingress", namespace, flow), spec)


def _l7_ingress_policy(model: PolicyModel, flow: Flow, destination: Workload) -> Manifest:
    source = flow.source
    # Always name the source namespace: a bare label selector in a CNP means "this namespace",
    # which is easy to misread.
    from_labels = {
        **(_source_labels(model, flow) or {}),
        CILIUM_NAMESPACE_LABEL: source.namespace,
    }
    http = _http_rules(flow)
    rule = {
        "fromEndpoints": [_selector(from_labels)],
        "toPorts": [
            {
                # The CRD types the port as a string.
                "ports": [{"port": str(p.port), "protocol": p.protocol} for p in flow.ports],
                "rules": {"http": http},
            }
        ],
    }
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": _meta(f"{flow.name}-ingress", destination.namespace, flow),
        "spec": {"endpointSelector": _selector(destination.labels), "ingress": [rule]},
    }


def _gap(flow: Flow, destination: Workload, port: FlowPort) -> FidelityGap:
    return FidelityGap(
        flow=flow.name,
        namespace=destination.namespace,
        workload=destination.name,
        port=port.port,
        protocol=port.protocol,
        lost_rules=flow.l7_rules,
        enforced_as=f"{port} whole port",
    )
