"""What an analysis produces, shared by the writers (output, grouped, diff, pictures, audit): an
allowed flow, the pod groups and their flows, a change between two analyses. Types only, so
the writers import it and never each other."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from reachability.ports import PortSet

# One allowed flow of `Analyzer.flows()`: (from, to, ports and HTTP rules allowed).
AllowedFlow = tuple[str, str, PortSet]


@dataclass(frozen=True)
class Rejected:
    """A policy object the API server stores but the agent refuses to import: the agent logs
    "Unable to add CiliumNetworkPolicy" and enforces every other policy (Cilium 1.15
    pkg/k8s/watchers/cilium_network_policy.go addCiliumNetworkPolicyV2; 1.19
    pkg/policy/k8s/cilium_network_policy.go upsertCiliumNetworkPolicyV2). The analysis leaves it
    out too, and every report names it."""

    policy: str  # kind namespace/name, as PolicyRef.label
    source: str
    reason: str  # where in the object, and the agent's sanitize error

    def json(self) -> dict[str, str]:
        return {"policy": self.policy, "source": self.source, "reason": self.reason}

    @property
    def line(self) -> str:
        """What every text report prints, after its comment mark."""
        return f"left out (the agent refuses to import it): {self.policy}: {self.reason}"


@dataclass
class Group:
    name: str
    namespace: str | None  # None: addresses outside the cluster
    labels: dict[str, str]
    members: list[str]  # pod keys, or `cidr:` ranges
    # No policy isolates this side: every source may connect / every destination is reachable.
    open_ingress: bool = False
    open_egress: bool = False
    service_account: str | None = None

    @property
    def external(self) -> bool:
        return self.namespace is None

    def json(self) -> dict[str, Any]:
        if self.external:
            return {"name": self.name, "cidrs": self.members}
        doc: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "labels": self.labels,
            "pods": self.members,
        }
        if self.service_account not in (None, "default"):
            doc["serviceAccount"] = self.service_account
        return doc


@dataclass
class Grouping:
    enforcement: str
    groups: list[Group] = field(default_factory=list)
    flows: list[tuple[int, int, PortSet]] = field(default_factory=list)  # group indices
    rejected: list[Rejected] = field(default_factory=list)  # policies left out of the model

    def named_flows(self) -> Iterator[tuple[Group, Group, PortSet]]:
        for src, dst, ports in self.flows:
            yield self.groups[src], self.groups[dst], ports


@dataclass(frozen=True)
class Change:
    src: str
    dst: str
    a: PortSet | None  # None: the flow does not exist on that side
    b: PortSet | None

    @property
    def status(self) -> str:
        if self.a is None:
            return "added"
        if self.b is None:
            return "removed"
        return "changed"

    @property
    def direction(self) -> str:
        """widened (B allows more), narrowed (B allows less) or mixed."""
        if self.a is None:
            return "widened"
        if self.b is None:
            return "narrowed"
        more = (self.a | self.b) != self.a
        less = (self.a | self.b) != self.b
        return "mixed" if more and less else "widened" if more else "narrowed"
