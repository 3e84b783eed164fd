"""network-patch-visible: no patch changes a namespace or network policy behind the pack's back.

pulumi-kubernetes can patch a live object with server-side apply instead of declaring it:
`kubernetes:core/v1:NamespacePatch`, `kubernetes:networking.k8s.io/v1:NetworkPolicyPatch`, and for
custom resources `CustomResourcePatch`, registered as `kubernetes:<apiVersion>:<kind>Patch`
(pulumi_kubernetes/apiextensions/CustomResourcePatch.py). The object the cluster ends up with is
the live one merged with the patch, which the pack never sees: a NamespacePatch can drop the
`cnistack.io/sensitive` label, a NetworkPolicyPatch can give a default-deny policy an allow-all
rule. So every such patch cannot be verified: mandatory in production, advisory in the homelab.
"""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy
from pulumi_policy.proxy import UnknownValueError

from .manifests import (
    CILIUM_CLUSTERWIDE_NETWORK_POLICY,
    CILIUM_NETWORK_POLICY,
    NAMESPACE,
    NETWORK_POLICY,
    k8s_object,
)

NAME = "network-patch-visible"
PATCHED = {
    f"{NAMESPACE}Patch": False,
    f"{NETWORK_POLICY}Patch": True,
    f"{CILIUM_NETWORK_POLICY}Patch": True,
    f"{CILIUM_CLUSTERWIDE_NETWORK_POLICY}Patch": False,
}


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in PATCHED:
        return
    kind = args.resource_type.rsplit(":", 1)[-1]
    try:
        ref = k8s_object(args.props, kind, namespaced=PATCHED[args.resource_type]).ref
    except UnknownValueError:
        ref = f"{kind} `{args.name}`"
    whole = kind.removesuffix("Patch")
    report_violation(
        f"Cannot verify {ref}: server-side apply merges it into a live {whole} the policy pack "
        f"never sees whole; declare the whole {whole} in the stack instead.",
        args.urn,
    )


POLICY = ResourceValidationPolicy(
    name=NAME,
    description=(
        "Namespaces and network policies are declared whole, never patched, so the pack sees "
        "what the cluster enforces (ADR-013: C4-C5 isolation)."
    ),
    validate=validate,
)
