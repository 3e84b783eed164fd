"""One representative Pod per modelled workload, for the connectivity analyzer.

The analyzer evaluates `render_policies(...).manifests + representative_pods(...)` like a cluster:
pods carry the workload's labels and named container ports and a synthetic, deterministic
`status.podIP` in the cluster's pod CIDR (K3s's default 10.42.0.0/16 unless the stack sets
`cluster.podCidr`). The cluster flavour's DNS namespace always
holds one DNS pod built from the flavour profile (cnistack/flavours.py: CoreDNS `k8s-app: kube-dns`
on 53 in kube-system; on OpenShift `dns-default` pods in openshift-dns on 5353), because every
managed namespace's DNS allow targets it. Each namespace named as a `{hostNetwork: NS}` source of
a flow of this flavour gets one `host-network` pod with `spec.hostNetwork: true` and a node
address in NODE_CIDR; on a flavour with a host-network namespace label (OpenShift) that namespace
carries the label, as OpenShift's networking attributes host-network ingress traffic to it.

Addressing, with the default CIDR: the DNS namespace is 10.42.0.x; the other namespaces, sorted
by name, are 10.42.1.x, 10.42.2.x, ...; workloads sorted by name get hosts .10, .11, ... (the DNS
pod takes .10 of its namespace); host-network pods get 192.168.0.10, .11, ... in namespace order.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from cnistack.flavours import ClusterFlavour
from cnistack.netpol.policy_model import (
    HostNetworkRef,
    PolicyModel,
    Workload,
)
from reachability.k8s_names import NAMESPACE_NAME_LABEL

# K3s's default cluster CIDR, for callers that know no stack (benchmarks, plain models).
POD_CIDR = ipaddress.IPv4Network("10.42.0.0/16")
# Synthetic node addresses, outside POD_CIDR, for host-network pods.
NODE_CIDR = ipaddress.IPv4Network("192.168.0.0/24")
HOST_NETWORK_POD = "host-network"
FIRST_HOST = 10
MAX_HOST = 254
# The pods never run; the image only has to be a real, pinned one for schema validation.
REPRESENTATIVE_IMAGE = "registry.k8s.io/pause:3.9"


def _pod(
    name: str,
    namespace: str,
    labels: dict[str, str],
    ports: list[dict[str, Any]],
    ip: str,
    *,
    host_network: bool = False,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": REPRESENTATIVE_IMAGE}
    if ports:
        container["ports"] = ports
    spec: dict[str, Any] = {"containers": [container]}
    if host_network:
        spec["hostNetwork"] = True
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
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


def _host_network_namespaces(model: PolicyModel, flavour: ClusterFlavour) -> list[str]:
    return sorted(
        {
            flow.source.namespace
            for flow in model.flows
            if isinstance(flow.source, HostNetworkRef) and flow.exists_on(flavour.name)
        }
    )


def _absent_workloads(model: PolicyModel, flavour: ClusterFlavour) -> set[str]:
    """Unmanaged workloads that only flows of other flavours name (Traefik on OpenShift)."""
    named: dict[str, bool] = {}
    for flow in model.flows:
        for ref in (flow.source, flow.destination):
            if not isinstance(ref, HostNetworkRef) and hasattr(ref, "workload"):
                key = str(ref)
                named[key] = named.get(key, False) or flow.exists_on(flavour.name)
    return {
        str(w.ref)
        for w in model.workloads
        if not model.is_managed(w.namespace) and named.get(str(w.ref)) is False
    }


def representative_pods(
    model: PolicyModel,
    flavour: ClusterFlavour,
    pod_cidr: ipaddress.IPv4Network | str = POD_CIDR,
) -> list[dict[str, Any]]:
    """Namespaces the renderer does not emit (DNS, unmanaged ones) and one Pod each."""
    network = ipaddress.IPv4Network(pod_cidr)
    dns = flavour.dns
    extra_labels = {ns.name: dict(ns.labels) for ns in model.namespaces}
    host_network = _host_network_namespaces(model, flavour)
    absent = _absent_workloads(model, flavour)
    if flavour.host_network_ingress_label is not None:
        key, value = flavour.host_network_ingress_label
        for name in host_network:
            extra_labels[name] = {**extra_labels.get(name, {}), key: value}
    unmanaged = sorted({dns.namespace} | {ns.name for ns in model.namespaces if not ns.managed})
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
        {"name": "dns" if p.protocol == "UDP" else "dns-tcp", "containerPort": p.port,
         "protocol": p.protocol}
        for p in dns.ports
    ]  # fmt: skip
    dns_ip = _address(network, 0, FIRST_HOST)
    manifests.append(_pod(dns.pod_name, dns.namespace, dict(dns.pod_labels), dns_ports, dns_ip))
    others = sorted({ns.name for ns in model.namespaces} - {dns.namespace})
    octet = {dns.namespace: 0} | {name: i for i, name in enumerate(others, start=1)}
    for namespace in [dns.namespace, *others]:
        workloads = sorted(
            (w for w in model.workloads if w.namespace == namespace and str(w.ref) not in absent),
            key=lambda w: w.name,
        )
        first = FIRST_HOST + 1 if namespace == dns.namespace else FIRST_HOST
        for host, workload in enumerate(workloads, start=first):
            manifests.append(_workload_pod(workload, _address(network, octet[namespace], host)))
    for host, namespace in enumerate(host_network, start=FIRST_HOST):
        if host > MAX_HOST:
            raise ValueError("too many host-network namespaces for synthetic node addresses")
        ip = str(NODE_CIDR.network_address + host)
        manifests.append(_pod(HOST_NETWORK_POD, namespace, {}, [], ip, host_network=True))
    return manifests
