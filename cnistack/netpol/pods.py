"""One representative Pod per modelled workload, for the connectivity analyzer.

The analyzer evaluates `render_policies(...).manifests + representative_pods(...)` like a cluster:
pods carry the workload's labels and named container ports and a synthetic, deterministic
`status.podIP` in the cluster's pod CIDR (K3s's default 10.42.0.0/16 unless the stack sets
`cluster.podCidr`). kube-system always holds CoreDNS (`k8s-app: kube-dns`, first /24, host .10)
because every managed namespace's DNS allow targets it.

Addressing, with the default CIDR: kube-system is 10.42.0.x; the other namespaces, sorted by name,
are 10.42.1.x, 10.42.2.x, ...; workloads sorted by name get hosts .10, .11, ... (CoreDNS takes
kube-system's .10).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from cnistack.netpol.policy_model import NAMESPACE_NAME_LABEL, PolicyModel, Workload
from cnistack.netpol.renderer import KUBE_DNS_LABELS, KUBE_DNS_NAMESPACE

# K3s's default cluster CIDR, for callers that know no stack (benchmarks, plain models).
POD_CIDR = ipaddress.IPv4Network("10.42.0.0/16")
FIRST_HOST = 10
MAX_HOST = 254
# The pods never run; the image only has to be a real, pinned one for schema validation.
REPRESENTATIVE_IMAGE = "registry.k8s.io/pause:3.9"
COREDNS_NAME = "coredns"


def _pod(
    name: str,
    namespace: str,
    labels: dict[str, str],
    ports: list[dict[str, Any]],
    ip: str,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": REPRESENTATIVE_IMAGE}
    if ports:
        container["ports"] = ports
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"containers": [container]},
        "status": {"podIP": ip, "podIPs": [{"ip": ip}]},
    }


def _address(pod_cidr: ipaddress.IPv4Network, namespace_index: int, host: int) -> str:
    address = pod_cidr.network_address + namespace_index * 256 + host
    if namespace_index > MAX_HOST or host > MAX_HOST or address not in pod_cidr:
        raise ValueError(
            f"too many namespaces or workloads for synthetic pod addresses in {pod_cidr}"
        )
    return str(address)


def _workload_pod(workload: Workload, ip: str) -> dict[str, Any]:
    ports = [
        {"name": p.name, "containerPort": p.port, "protocol": p.protocol} for p in workload.ports
    ]
    return _pod(workload.name, workload.namespace, dict(workload.labels), ports, ip)


def representative_pods(
    model: PolicyModel, pod_cidr: ipaddress.IPv4Network | str = POD_CIDR
) -> list[dict[str, Any]]:
    """Namespaces the renderer does not emit (kube-system, unmanaged ones) and one Pod each."""
    network = ipaddress.IPv4Network(pod_cidr)
    extra_labels = {ns.name: dict(ns.labels) for ns in model.namespaces}
    unmanaged = sorted(
        {KUBE_DNS_NAMESPACE} | {ns.name for ns in model.namespaces if not ns.managed}
    )
    manifests: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "labels": {**extra_labels.get(name, {}), NAMESPACE_NAME_LABEL: name},
            },
        }
        for name in unmanaged
    ]
    dns_ports = [
        {"name": "dns", "containerPort": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
    ]
    coredns_ip = _address(network, 0, 10)
    manifests.append(
        _pod(COREDNS_NAME, KUBE_DNS_NAMESPACE, dict(KUBE_DNS_LABELS), dns_ports, coredns_ip)
    )
    others = sorted({ns.name for ns in model.namespaces} - {KUBE_DNS_NAMESPACE})
    octet = {KUBE_DNS_NAMESPACE: 0} | {name: i for i, name in enumerate(others, start=1)}
    for namespace in [KUBE_DNS_NAMESPACE, *others]:
        workloads = sorted(
            (w for w in model.workloads if w.namespace == namespace), key=lambda w: w.name
        )
        first = FIRST_HOST + 1 if namespace == KUBE_DNS_NAMESPACE else FIRST_HOST
        for host, workload in enumerate(workloads, start=first):
            manifests.append(_workload_pod(workload, _address(network, octet[namespace], host)))
    return manifests
