"""cilium-l7-proxy-for-http-rules: the L7 proxy stays on while policies carry HTTP rules.

Cilium enforces `toPorts[].rules.http` (HTTP and gRPC) through its Envoy-based L7 proxy. With
`l7Proxy: false` the agent cannot honour those rules, so the ADR's L7 controls silently vanish.
The chart default is true; only an explicit false (or "false", which the chart renders as-is)
switches it off.
"""

from __future__ import annotations

from pulumi_policy import ReportViolation, StackValidationArgs, StackValidationPolicy
from pulumi_policy.proxy import UnknownValueError

from .manifests import (
    CILIUM_CLUSTERWIDE_NETWORK_POLICY,
    CILIUM_POLICY_TYPES,
    cilium_releases,
    has_http_rules,
    k8s_object,
    of_type,
    release_values,
    report_unknown,
)

NAME = "cilium-l7-proxy-for-http-rules"


def _policies_with_http_rules(
    args: StackValidationArgs, report_violation: ReportViolation
) -> list[str]:
    refs: list[str] = []
    for resource in of_type(args.resources, *CILIUM_POLICY_TYPES):
        kind = resource.resource_type.rsplit(":", 1)[-1]
        try:
            if has_http_rules(resource.props):
                refs.append(
                    k8s_object(
                        resource.props,
                        kind,
                        namespaced=resource.resource_type != CILIUM_CLUSTERWIDE_NETWORK_POLICY,
                    ).ref
                )
        except UnknownValueError as error:
            report_unknown(error, report_violation, resource.urn)
            continue
    return refs


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    releases, _ = cilium_releases(args.resources)
    if not releases:
        return
    with_http = _policies_with_http_rules(args, report_violation)
    if not with_http:
        return
    for release in releases:
        try:
            l7_proxy = release_values(release.props).get("l7Proxy")
        except UnknownValueError as error:
            report_unknown(error, report_violation, release.urn)
            continue
        if l7_proxy is False or l7_proxy == "false":
            report_violation(
                "Remove `l7Proxy: false` from the cilium values: the HTTP rules of "
                f"{', '.join(with_http)} are enforced only by the L7 proxy.",
                release.urn,
            )


POLICY = StackValidationPolicy(
    name=NAME,
    description=(
        "Cilium keeps its L7 proxy while CiliumNetworkPolicies carry HTTP/gRPC rules "
        "(ADR-013, Cilium L7 policy)."
    ),
    validate=validate,
)
