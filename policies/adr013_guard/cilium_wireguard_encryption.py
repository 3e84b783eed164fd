"""cilium-wireguard-encryption: pod-to-pod traffic is encrypted with WireGuard.

ADR-013 (Production, Justification 2) sets `encryption.enabled=true`, `encryption.type=wireguard`.
The chart defaults are `enabled: false` and `type: ipsec`, so both must be stated. In production the
pack is mandatory; in the homelab (where the ADR accepts no encryption) it is only advisory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationPolicy

from .manifests import dig, release_values, shown, validate_cilium_release

NAME = "cilium-wireguard-encryption"


def violations(props: Mapping[str, Any]) -> Iterator[str]:
    values = release_values(props)
    enabled = dig(values, "encryption", "enabled")
    if enabled is not True:
        yield f"Set the cilium value `encryption.enabled` to true (found {shown(enabled)})."
    kind = dig(values, "encryption", "type")
    if kind != "wireguard":
        yield (
            "Set the cilium value `encryption.type` to wireguard "
            f"(found {shown(kind)}; the chart defaults to ipsec)."
        )


POLICY = ResourceValidationPolicy(
    name=NAME,
    description="Cilium encrypts pod traffic transparently with WireGuard (ADR-013, Production).",
    validate=validate_cilium_release(violations),
)
