"""cilium-hubble-relay-ui: Hubble is on, with its relay and its UI.

ADR-013 relies on Hubble for the C4-C5 audit trail and names the Hubble UI as a mitigation of
Cilium's complexity: `hubble.enabled`, `hubble.relay.enabled`, `hubble.ui.enabled`. The UI reads
flows through the relay, so a UI without relay shows nothing. `hubble.enabled` defaults to true in
the 1.15 chart; relay and UI default to false.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationPolicy

from .manifests import dig, release_values, shown, validate_cilium_release

NAME = "cilium-hubble-relay-ui"


def violations(props: Mapping[str, Any]) -> Iterator[str]:
    hubble = release_values(props).get("hubble")
    enabled = dig(hubble, "enabled")
    if not (enabled is None or enabled is True):
        yield f"Set the cilium value `hubble.enabled` to true (found {shown(enabled)})."
    relay = dig(hubble, "relay", "enabled")
    if relay is not True:
        yield (
            "Set the cilium value `hubble.relay.enabled` to true: the Hubble UI and CLI read "
            f"flows through the relay (found {shown(relay)})."
        )
    ui = dig(hubble, "ui", "enabled")
    if ui is not True:
        yield f"Set the cilium value `hubble.ui.enabled` to true (found {shown(ui)})."


POLICY = ResourceValidationPolicy(
    name=NAME,
    description="Cilium runs Hubble with its relay and UI (ADR-013, Production: Hubble audit).",
    validate=validate_cilium_release(violations),
)
