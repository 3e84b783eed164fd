"""cilium-network-policy-needs-cilium: CiliumNetworkPolicies only where Cilium is installed.

On a stack without Cilium (the Flannel + kube-router homelab) a CiliumNetworkPolicy either fails to
apply (the cilium.io CRDs are missing) or, if the CRDs linger, is stored and never enforced:
kube-router only reads networking.k8s.io/v1 NetworkPolicy. ADR-013's mitigation for the
environment gap is standard NetworkPolicy, which works on both CNIs.
"""

from __future__ import annotations

from pulumi_policy import ReportViolation, StackValidationArgs, StackValidationPolicy
from pulumi_policy.proxy import UnknownValueError

from .manifests import (
    CILIUM_CLUSTERWIDE_NETWORK_POLICY,
    CILIUM_POLICY_TYPES,
    Presence,
    cilium_releases,
    k8s_object,
    of_type,
)

NAME = "cilium-network-policy-needs-cilium"


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    _, presence = cilium_releases(args.resources)
    if presence is not Presence.ABSENT:
        return
    for resource in of_type(args.resources, *CILIUM_POLICY_TYPES):
        kind = resource.resource_type.rsplit(":", 1)[-1]
        try:
            ref = k8s_object(
                resource.props,
                kind,
                namespaced=resource.resource_type != CILIUM_CLUSTERWIDE_NETWORK_POLICY,
            ).ref
        except UnknownValueError:
            ref = f"{kind} `{resource.name}`"
        report_violation(
            f"Install the cilium Helm release in this stack or rewrite {ref} as a "
            "networking.k8s.io/v1 NetworkPolicy: without Cilium it is rejected or never enforced.",
            resource.urn,
        )


POLICY = StackValidationPolicy(
    name=NAME,
    description=(
        "CiliumNetworkPolicies appear only on stacks that install Cilium "
        "(ADR-013: kube-router enforces standard NetworkPolicy only)."
    ),
    validate=validate,
)
