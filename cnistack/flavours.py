"""What differs by cluster flavour (K3s, OpenShift, plain Kubernetes), decided once.

Beside the CNI's capability profile (cnistack/capabilities.py), the renderer, the connectivity
analyzer's representative pods and the policy pack's config (policies/config/*.json, which the
pack reads without importing this module) all follow this profile, so a flavour fact lives here
only. STYLE.md principle 12 (cilium-cli's install/autodetect.go: detect the flavour once).

Sources of the OpenShift facts (each is asserted literally in tests/test_flavours.py):
- cluster DNS: openshift/cluster-dns-operator pkg/operator/controller/names.go
  (`DefaultOperandNamespace = "openshift-dns"`, `controllerDaemonSetLabel =
  "dns.operator.openshift.io/daemonset-dns"` whose value is the DNS resource's name, `default`),
  pkg/manifests/assets/dns/daemonset.yaml (CoreDNS listens on containerPort 5353 UDP and TCP) and
  assets/dns/service.yaml (Service port 53 -> targetPort dns/dns-tcp). NetworkPolicy is evaluated
  on the pod's port after the Service's DNAT, so egress must allow 5353, not 53; the operator's own
  assets/dns/networkpolicy-allow.yaml admits ingress on 5353 for that reason.
- host-network ingress: OpenShift 4.6/4.7 release notes, "Network policy supports selecting host
  network Ingress Controllers": the namespace selector label
  `policy-group.network.openshift.io/ingress: ""` matches traffic from the Ingress Controller
  whether it runs on the cluster network or on the host network (OpenShift SDN, OVN-Kubernetes).
- clusterNetwork: OpenShift's install-config default 10.128.0.0/14 with hostPrefix 23
  (isovalent/olm-for-cilium Documentation/k8s-install-openshift-okd.rst, which also says the
  CiliumConfig's clusterPoolIPv4PodCIDRList/clusterPoolIPv4MaskSize must match it).
- CNI paths: OpenShift runs Multus as the cluster's CNI and keeps CNI binaries in
  /var/lib/cni/bin, its config in /var/run/multus/cni/net.d (olm-for-cilium
  ciliumconfig.v1.15.yaml).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

FlavourName = Literal["k3s", "openshift", "kubernetes"]
FLAVOUR_NAMES: tuple[FlavourName, ...] = ("k3s", "openshift", "kubernetes")


@dataclass(frozen=True)
class DnsPort:
    port: int
    protocol: Literal["UDP", "TCP"]


@dataclass(frozen=True)
class ClusterDns:
    """The cluster DNS pods, as NetworkPolicy sees them: namespace, pod labels, pod ports."""

    namespace: str
    pod_labels: Mapping[str, str]
    # The pods' own ports, i.e. the Service's targetPort: policies apply after DNAT.
    ports: tuple[DnsPort, ...]
    # Name of the analyzer's representative DNS pod.
    pod_name: str

    def as_pack_config(self) -> dict[str, object]:
        """The `dns` entry of the pack's `namespace-default-deny` config."""
        return {
            "namespace": self.namespace,
            "podLabels": dict(self.pod_labels),
            "ports": [{"port": p.port, "protocol": p.protocol} for p in self.ports],
        }


@dataclass(frozen=True)
class ClusterNetwork:
    """The pod network and the per-node block size (OpenShift's clusterNetwork entry)."""

    cidr: str
    host_prefix: int

    def __post_init__(self) -> None:
        network = ipaddress.IPv4Network(self.cidr, strict=True)
        if not network.prefixlen <= self.host_prefix <= 32:
            raise ValueError(
                f"hostPrefix /{self.host_prefix} must be between the network's "
                f"/{network.prefixlen} and /32"
            )


@dataclass(frozen=True)
class ClusterFlavour:
    name: FlavourName
    dns: ClusterDns
    # Namespace label the flavour's own networking gives to traffic of host-network ingress
    # routers, for standard NetworkPolicy; None where no such label exists.
    host_network_ingress_label: tuple[str, str] | None
    # The pod network a CNI must hand out when the flavour fixes one; None = the CNI's choice.
    cluster_network: ClusterNetwork | None
    # Where the CNI binaries and config live when not in the standard /opt/cni/bin, /etc/cni/net.d.
    cni_bin_path: str | None
    cni_conf_path: str | None
    # Another CNI (Multus) stays the cluster's CNI: Cilium must not remove its config.
    cni_chained_behind_multus: bool

    def as_output(self) -> dict[str, object]:
        return {"name": self.name, "dnsNamespace": self.dns.namespace}


_KUBE_DNS = ClusterDns(
    namespace="kube-system",
    pod_labels=MappingProxyType({"k8s-app": "kube-dns"}),
    ports=(DnsPort(53, "UDP"), DnsPort(53, "TCP")),
    pod_name="coredns",
)

# K3s ships CoreDNS in kube-system labelled k8s-app: kube-dns, listening on 53
# (k3s-io/k3s manifests/coredns.yaml).
K3S = ClusterFlavour(
    name="k3s",
    dns=_KUBE_DNS,
    host_network_ingress_label=None,
    cluster_network=None,
    cni_bin_path=None,
    cni_conf_path=None,
    cni_chained_behind_multus=False,
)

# kubeadm's CoreDNS addon: kube-system, k8s-app: kube-dns, containerPort 53.
KUBERNETES = ClusterFlavour(
    name="kubernetes",
    dns=_KUBE_DNS,
    host_network_ingress_label=None,
    cluster_network=None,
    cni_bin_path=None,
    cni_conf_path=None,
    cni_chained_behind_multus=False,
)

OPENSHIFT_DEFAULT_CLUSTER_NETWORK = ClusterNetwork(cidr="10.128.0.0/14", host_prefix=23)

OPENSHIFT = ClusterFlavour(
    name="openshift",
    dns=ClusterDns(
        namespace="openshift-dns",
        pod_labels=MappingProxyType({"dns.operator.openshift.io/daemonset-dns": "default"}),
        ports=(DnsPort(5353, "UDP"), DnsPort(5353, "TCP")),
        pod_name="dns-default",
    ),
    host_network_ingress_label=("policy-group.network.openshift.io/ingress", ""),
    cluster_network=OPENSHIFT_DEFAULT_CLUSTER_NETWORK,
    cni_bin_path="/var/lib/cni/bin",
    cni_conf_path="/var/run/multus/cni/net.d",
    cni_chained_behind_multus=True,
)

FLAVOURS: Mapping[FlavourName, ClusterFlavour] = MappingProxyType(
    {flavour.name: flavour for flavour in (K3S, OPENSHIFT, KUBERNETES)}
)
