"""production-runs-cilium: a production stack installs Cilium.

ADR-013, Decision: the homelab keeps K3s's Flannel (+ kube-router for NetworkPolicy); production
runs Cilium. The pack learns the environment from this policy's `environment` config property
(required, `production` or `homelab`), never from the stack's name.
"""

from __future__ import annotations

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from .manifests import Presence, cilium_releases, shown

NAME = "production-runs-cilium"
ENVIRONMENTS = ("production", "homelab")

CONFIG_SCHEMA = PolicyConfigSchema(
    properties={
        "environment": {
            "type": "string",
            "enum": list(ENVIRONMENTS),
            "description": "Which ADR-013 environment this stack is: production or homelab.",
        },
    },
    required=["environment"],
)


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    environment = args.get_config().get("environment")
    if environment not in ENVIRONMENTS:
        report_violation(
            f"Set `environment` to production or homelab in the `{NAME}` entry of the policy "
            f"pack config (found {shown(environment)}); the pack never guesses it from the stack.",
            None,
        )
        return
    if environment != "production":
        return
    _, presence = cilium_releases(args.resources)
    if presence is Presence.ABSENT:
        report_violation(
            "Add a kubernetes:helm.sh/v3:Release of the cilium chart (or, on OpenShift, the OLM "
            "operator's cilium.io/v1alpha1 CiliumConfig) to this production stack: ADR-013 runs "
            "Cilium in production.",
            None,
        )


POLICY = StackValidationPolicy(
    name=NAME,
    description="Production stacks run Cilium as their CNI (ADR-013, Decision).",
    validate=validate,
    config_schema=CONFIG_SCHEMA,
)
