"""What the analyzer reads: namespaces, pods (one representative per workload) and policies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reachability.k8s_names import NAMESPACE_NAME_LABEL

# Cilium identity labels derived from the pod's namespace and service account.
CILIUM_NS_KEY = "io.kubernetes.pod.namespace"
CILIUM_NS_LABEL_PREFIX = "io.cilium.k8s.namespace.labels."
CILIUM_SA_KEY = "io.cilium.k8s.policy.serviceaccount"
CILIUM_CLUSTER_KEY = "io.cilium.k8s.policy.cluster"


@dataclass(frozen=True)
class ContainerPort:
    name: str | None
    protocol: str
    port: int


@dataclass
class Namespace:
    name: str
    labels: dict[str, str]


@dataclass
class Pod:
    namespace: str
    name: str
    labels: dict[str, str]
    ip: str | None
    ports: tuple[ContainerPort, ...]
    service_account: str = "default"
    # spec.hostNetwork: the pod's traffic leaves from its node (OpenShift's router on bare
    # metal). Cilium gives it no pod identity: it is the `host`/`remote-node` entity.
    host_network: bool = False
    # spec.nodeName: where the pod runs, when the objects say (a live cluster's pods do; the
    # program's rendered manifests do not). Read for `local_host_reaches_node_pods`.
    node: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Manifest:
    """A policy object as read, with where it came from for error messages."""

    doc: dict[str, Any]
    source: str

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind", ""))

    @property
    def namespace(self) -> str:
        meta = self.doc.get("metadata") or {}
        return str(meta.get("namespace") or "default")

    @property
    def name(self) -> str:
        meta = self.doc.get("metadata") or {}
        return str(meta.get("name") or "")

    @property
    def label(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass
class Inputs:
    namespaces: dict[str, Namespace] = field(default_factory=dict)
    pods: list[Pod] = field(default_factory=list)
    policies: list[Manifest] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def namespace(self, name: str) -> Namespace:
        """The namespace, created implicitly (with its automatic name label) when undeclared."""
        ns = self.namespaces.get(name)
        if ns is None:
            ns = Namespace(name, {NAMESPACE_NAME_LABEL: name})
            self.namespaces[name] = ns
        return ns
