"""Policy objects compiled into direction-neutral rules, by source kind: NetworkPolicy
(networkpolicy.py), CiliumNetworkPolicy/CCNP (cilium.py), addresses (addresses.py).

What each enforcer reads, and how, is one field of its profile (reachability/profiles.py),
decided at compile time: the engine sees only the rules the profile enforces.
"""

from __future__ import annotations

from collections.abc import Sequence

from reachability.compiler.cilium import compile_cilium_policy, resolve_egress_named_ports
from reachability.compiler.model import CompiledPolicy
from reachability.compiler.networkpolicy import compile_networkpolicy
from reachability.inputs import Manifest, Pod
from reachability.profiles import EnforcementProfile
from reachability.results import Rejected


def compile_policies(
    manifests: list[Manifest],
    profile: EnforcementProfile,
    notes: list[str] | None = None,
    pods: Sequence[Pod] = (),
    rejected: list[Rejected] | None = None,
) -> list[CompiledPolicy]:
    """Compile every policy (so bad input is always reported); keep those the profile enforces.
    A Cilium policy the profile's agent would refuse to import is left out and, when the profile
    reads Cilium policies, appended to `rejected`."""
    out: list[CompiledPolicy] = []
    for manifest in manifests:
        if manifest.kind == "NetworkPolicy":
            compiled = compile_networkpolicy(manifest, profile)
        else:
            result = compile_cilium_policy(manifest, profile, notes)
            if isinstance(result, Rejected):
                if profile.cilium_policies and rejected is not None:
                    rejected.append(result)
                continue
            compiled = result
        for policy in compiled:
            if profile.cilium_policies or not policy.cilium:
                out.append(policy)
    if profile.egress_named_ports_cluster_wide:
        resolve_egress_named_ports(out, pods)
    return out
