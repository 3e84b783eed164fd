"""Network-policy intent (model) and its rendering per capability profile; no Pulumi here.

`NetworkPolicySet` in components/ applies what this package renders; the CrossGuard pack in
policies/ checks the result independently and must not import this package.
"""

from cnistack.netpol.pods import representative_pods
from cnistack.netpol.policy_model import (
    Flow,
    FlowPort,
    GrpcRule,
    HttpRule,
    NamedPort,
    Namespace,
    NamespaceRef,
    PolicyModel,
    Workload,
    WorkloadRef,
    default_policy_model,
    parse_policy_model,
)
from cnistack.netpol.renderer import (
    FLOW_LABEL,
    SENSITIVE_LABEL,
    FidelityGap,
    RenderedPolicies,
    render_policies,
)
from cnistack.netpol.schema import cnp_errors

__all__ = [
    "FLOW_LABEL",
    "SENSITIVE_LABEL",
    "FidelityGap",
    "Flow",
    "FlowPort",
    "GrpcRule",
    "HttpRule",
    "NamedPort",
    "Namespace",
    "NamespaceRef",
    "PolicyModel",
    "RenderedPolicies",
    "Workload",
    "WorkloadRef",
    "cnp_errors",
    "default_policy_model",
    "parse_policy_model",
    "render_policies",
    "representative_pods",
]
