"""cilium-policy-enforced: Cilium enforces the network policies at all.

ADR-013's isolation (default-deny namespaces, the storage rules, L7 rules) holds only while the
agent enforces policies. The 1.15 chart renders `enable-policy: {{ lower .Values.
policyEnforcementMode }}` (templates/cilium-configmap.yaml); `never` turns enforcement off for
every endpoint, whatever the policies say. `default` (the chart default) and `always` keep it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationPolicy

from .manifests import release_values, shown, validate_cilium_release

NAME = "cilium-policy-enforced"
ENFORCING = ("default", "always")


def violations(props: Mapping[str, Any]) -> Iterator[str]:
    values = release_values(props)
    if "policyEnforcementMode" not in values:
        return
    mode = values["policyEnforcementMode"]
    if not (isinstance(mode, str) and mode.lower() in ENFORCING):
        yield (
            "Set the cilium value `policyEnforcementMode` to default or always "
            f"(found {shown(mode)}): `never` stops Cilium enforcing every network policy."
        )


POLICY = ResourceValidationPolicy(
    name=NAME,
    description="Cilium enforces network policies (ADR-013: isolation of C4-C5 namespaces).",
    validate=validate_cilium_release(violations),
)
