"""The enforcement profiles: the analyzer's public contract with whoever asks it a question.

A profile says which policy objects an enforcer reads and how it reads them. Every place where the
analyzer's answer depends on the enforcer reads one field here, never the enforcer's name.

- `kube-router` (K3s's embedded network-policy controller, ADR-013 §"Homelab"): NetworkPolicy
  only; an `ipBlock` also matches pod IPs (the upstream NetworkPolicy e2e behaviour,
  test/e2e/network/netpol); `endPort` ranges are enforced.
- `cilium@1.15` (Cilium 1.15, the version the Cilium oracle runs, docs/cilium-oracle.md;
  ADR-013 §"Production"): NetworkPolicy, CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy
  on identity labels; CIDR rules (and `ipBlock`) match only addresses outside the cluster;
  `endPort` is ignored (Cilium < 1.16 enforces the start port only); L7 HTTP rules enforced.
  `cilium` is the alias of the default Cilium profile.

The IaC program maps its capability profile's enforcer (cnistack/capabilities.py) onto a name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The enforcer families: what outputs print and what a stack's capability profile names.
Enforcement = Literal["kube-router", "cilium"]
ENFORCEMENTS: tuple[Enforcement, ...] = ("kube-router", "cilium")


@dataclass(frozen=True)
class EnforcementProfile:
    name: str
    enforcer: Enforcement
    # The enforcer's version whose semantics the profile follows (None: not versioned).
    version: str | None
    # Reads CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy objects.
    cilium_policies: bool
    # Enforces L7 HTTP rules (toPorts[].rules.http) in its proxy.
    l7_policy: bool
    # Selects pods (NetworkPolicy's too) on Cilium identity labels; host-network pods are the
    # `host`/`remote-node` entity, never selected by their labels.
    identity_labels: bool
    # An `ipBlock` also matches pod IPs (kube-router); otherwise only addresses outside the
    # cluster (Cilium identifies pods by identity, not by IP).
    ip_block_matches_pods: bool
    # A port range (`endPort`) is enforced whole; otherwise the start port only.
    end_port: bool
    # A NetworkPolicy's rules in a direction are enforced even when `policyTypes` omits it
    # (Cilium 1.15 pkg/k8s/network_policy.go ParseNetworkPolicy; found by the Cilium oracle).
    rules_isolate_without_policy_types: bool
    # An egress named port resolves against the named ports of every pod in the cluster
    # (Cilium 1.15 pkg/endpoint/policy.go GetNamedPort), not of the destination.
    egress_named_ports_cluster_wide: bool


KUBE_ROUTER = EnforcementProfile(
    name="kube-router",
    enforcer="kube-router",
    version=None,
    cilium_policies=False,
    l7_policy=False,
    identity_labels=False,
    ip_block_matches_pods=True,
    end_port=True,
    rules_isolate_without_policy_types=False,
    egress_named_ports_cluster_wide=False,
)
CILIUM_1_15 = EnforcementProfile(
    name="cilium@1.15",
    enforcer="cilium",
    version="1.15",
    cilium_policies=True,
    l7_policy=True,
    identity_labels=True,
    ip_block_matches_pods=False,
    end_port=False,
    rules_isolate_without_policy_types=True,
    egress_named_ports_cluster_wide=True,
)

PROFILES: dict[str, EnforcementProfile] = {p.name: p for p in (KUBE_ROUTER, CILIUM_1_15)}
# Names accepted for a profile: each family's name stands for its default profile.
ALIASES: dict[str, str] = {"cilium": CILIUM_1_15.name}
PROFILE_NAMES: tuple[str, ...] = (*ENFORCEMENTS, *(n for n in PROFILES if n not in ENFORCEMENTS))


def profile(name: str) -> EnforcementProfile:
    """The profile called `name` (`kube-router`, `cilium`, `cilium@1.15`); ValueError otherwise."""
    found = PROFILES.get(ALIASES.get(name, name))
    if found is None:
        raise ValueError(
            f"unknown enforcement profile {name!r} (expected {', '.join(PROFILE_NAMES)})"
        )
    return found
