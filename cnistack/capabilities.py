"""What a CNI can enforce, asked by the rest of the program instead of the CNI's name.

ADR-013, "Exemples de NetworkPolicy par CNI": Flannel relies on K3s's embedded
kube-router for L3/L4 NetworkPolicy and has no L7, no encryption and no flow
observability; Cilium enforces L3/L4 and L7 (HTTP/gRPC), encrypts with WireGuard
and exposes flows through Hubble.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Cni = Literal["flannel", "cilium"]
Enforcer = Literal["kube-router", "cilium"]


@dataclass(frozen=True)
class CapabilityProfile:
    cni: Cni
    # Which component enforces NetworkPolicy; also the connectivity analyzer's profile name.
    policy_enforcer: Enforcer
    l3_l4_network_policy: bool
    l7_policy: bool
    encryption: str | None
    flow_observability: bool
    # Whether the enforcer identifies host-network sources as the `host`/`remote-node` entities
    # (Cilium's reserved identities; docs.cilium.io "Layer 3 Examples", Entities Based). Without
    # it, only the cluster flavour's namespace label can admit them (cnistack/flavours.py).
    host_entities: bool = False

    def as_output(self) -> dict[str, object]:
        return asdict(self)


FLANNEL_WITH_KUBE_ROUTER = CapabilityProfile(
    cni="flannel",
    policy_enforcer="kube-router",
    l3_l4_network_policy=True,
    l7_policy=False,
    encryption=None,
    flow_observability=False,
)


def cilium_profile(
    *, encryption: str | None, hubble: bool, l7_policy: bool = True
) -> CapabilityProfile:
    # `l7_policy` follows the chart's `l7Proxy`: with the proxy disabled Cilium cannot enforce
    # HTTP rules (values.yaml: "Enable Layer 7 network policy"), so the profile must not claim it.
    return CapabilityProfile(
        cni="cilium",
        policy_enforcer="cilium",
        l3_l4_network_policy=True,
        l7_policy=l7_policy,
        encryption=encryption,
        flow_observability=hubble,
        host_entities=True,
    )
