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
- `cilium@1.19` (Cilium 1.19, the production default's line; checked against Cilium 1.19.7's own
  code, docs/cilium-oracle.md): 1.15 plus `endPort`, `enableDefaultDeny`, empty peer lists that
  select no one, deny rules sanitized, namespace-label peers across namespaces (1.16), and
  `*Requires` refused by the CRD (1.19). `cilium` is the alias of this profile: the line the
  production stack installs.
Both are checked against Cilium's own policy code of their version (docs/cilium-oracle.md). The
path's intermediate lines (1.16-1.18) have no profile of their own.

The IaC program maps its capability profile's enforcer (cnistack/capabilities.py) onto a name here.
"""

from __future__ import annotations

import re
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
    # A CiliumNetworkPolicy's `enableDefaultDeny` is honoured (a Cilium 1.16 field: 1.15's CRD
    # prunes it; pkg/policy/repository.go of v1.16.19 reads it).
    enable_default_deny: bool = False
    # An empty non-nil `from*`/`to*` peer list selects no identity (Cilium 1.16,
    # Documentation/operations/upgrade.rst of v1.16.19; pkg/policy/api/ingress.go); before, it
    # read as an absent list.
    empty_peer_list_selects_none: bool = False
    # The CRD refuses a non-empty `fromRequires`/`toRequires` (Cilium 1.19: `maxItems: 0`,
    # upgrade.rst of v1.19.7). Before, the fields are deprecated (1.17) and not modelled here:
    # either way the analyzer refuses them rather than under-report what they allow.
    requires_refused_by_crd: bool = False
    # What makes the agent refuse a whole CNP/CCNP (pkg/policy/api/rule_validation.go
    # Rule.Sanitize; the object is logged and left out, every other policy enforced), where it
    # differs by version. Deny rules are sanitized too (1.16: Rule.Sanitize loops IngressDeny and
    # EgressDeny; v1.15.19 does not; also found by the Cilium 1.19 oracle).
    sanitizes_deny_rules: bool = False
    # `toServices` with `toPorts` in one egress rule is refused (l3DependentL4Support
    # "ToServices": false, cilium/cilium#20067, v1.15.19; true in v1.17.6 and v1.19.6).
    to_services_with_to_ports_rejected: bool = True
    # A rule without ingress, ingressDeny, egress or egressDeny is refused ("rule must have at
    # least one of ...", pkg/policy/api/rule_validation.go Rule.Sanitize, from v1.17.6; v1.19.7
    # too; also found by the Cilium 1.19 oracle).
    rule_without_rules_rejected: bool = False
    # A namespaced CNP's peer selector on a namespace label (`io.cilium.k8s.namespace.labels.*`)
    # is not scoped to the policy's namespace: it selects the pods of every matching namespace
    # (Cilium 1.16: pkg/k8s/apis/cilium.io/utils/utils.go getEndpointSelector adds the policy's
    # namespace only when the selector names no namespace label). Found by the Cilium 1.19 oracle.
    namespace_label_peers_cross_namespaces: bool = False
    # Pod labels left out of identities beyond Cilium 1.15.0's default list
    # (reachability/cilium_identity.py): regexes of pkg/labelsfilter/filter.go
    # defaultLabelPrefixCfg that a later release added, each an ignore pattern. Found by the
    # Cilium 1.15.19 and 1.19 oracles.
    identity_labels_left_out: tuple[str, ...] = ()
    # Traffic from a pod's own node (its host-network processes: kubelet probes, OpenShift's
    # router on bare metal) reaches the pod on every port, whatever its ingress policies allow;
    # only deny rules still apply. kube-router: the first rule of every pod's firewall chain
    # accepts `--src-type LOCAL` (pkg/controllers/netpol/pod.go, "rule to permit the traffic to
    # pods when source is the pod's local node"). Cilium: `allow-localhost` defaults to `auto`,
    # which is `always` under Kubernetes ("Kubernetes demands that the localhost can always
    # reach local pods", daemon/cmd/daemon.go), an ingress allow of the `host` identity in every
    # endpoint's policy (pkg/policy/mapstate.go determineAllowLocalhostIngress; 1.15 inserts it
    # deny-preferred). Found by real packets: `verify --stack production` (docs/datapath-lab.md).
    # Applied where the objects say where pods run (spec.nodeName); otherwise a note says so.
    local_host_reaches_node_pods: bool = False


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
    local_host_reaches_node_pods=True,
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
    local_host_reaches_node_pods=True,
)

# Cilium 1.19 (the production default's line): the 1.16 changes (port ranges in NetworkPolicy
# `parsePorts` and CNP `endPort`, `enableDefaultDeny`, empty peer lists, deny rules sanitized,
# namespace-label peers not scoped to the policy's namespace) and the 1.19 CRD's refusal of
# `*Requires`. `policyTypes` (pkg/k8s/network_policy.go) and egress named ports
# (pkg/endpoint/policy.go) read as in 1.15. Checked against an oracle built on github.com/cilium/
# cilium@v1.19.7's own pkg/policy (analyzer/tests/test_oracle.py; docs/cilium-oracle.md,
# "Versions"), which found the last two 1.16 changes.
CILIUM_1_19 = EnforcementProfile(
    name="cilium@1.19",
    enforcer="cilium",
    version="1.19",
    cilium_policies=True,
    l7_policy=True,
    identity_labels=True,
    ip_block_matches_pods=False,
    end_port=True,
    rules_isolate_without_policy_types=True,
    egress_named_ports_cluster_wide=True,
    enable_default_deny=True,
    empty_peer_list_selects_none=True,
    requires_refused_by_crd=True,
    sanitizes_deny_rules=True,
    to_services_with_to_ports_rejected=False,
    rule_without_rules_rejected=True,
    namespace_label_peers_cross_namespaces=True,
    local_host_reaches_node_pods=True,
    # Job pods' uid labels (from a 1.15 patch release: 1.15.19 has them, 1.15.0 not) and the
    # topology labels (1.19.7's list).
    identity_labels_left_out=(
        re.escape("batch.kubernetes.io/controller-uid"),
        re.escape("controller-uid"),
        r"topology\.kubernetes\.io",
    ),
)

PROFILES: dict[str, EnforcementProfile] = {
    p.name: p for p in (KUBE_ROUTER, CILIUM_1_15, CILIUM_1_19)
}
# Names accepted for a profile: each family's name stands for its default profile, for Cilium
# the line of the production default (cnistack/data/cilium/versions.json `default`).
ALIASES: dict[str, str] = {"cilium": CILIUM_1_19.name}
PROFILE_NAMES: tuple[str, ...] = (*ENFORCEMENTS, *(n for n in PROFILES if n not in ENFORCEMENTS))


def profile(name: str) -> EnforcementProfile:
    """The profile called `name` (`kube-router`, `cilium`, `cilium@1.19`); ValueError otherwise."""
    found = PROFILES.get(ALIASES.get(name, name))
    if found is None:
        raise ValueError(
            f"unknown enforcement profile {name!r} (expected {', '.join(PROFILE_NAMES)})"
        )
    return found
