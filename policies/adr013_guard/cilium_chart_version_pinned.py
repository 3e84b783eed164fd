"""cilium-chart-version-pinned: the Cilium chart version is an exact release.

ADR-013 installs `cilium/cilium --version 1.15.0`. A range (`~1.15`, `^1.15`, `1.15.x`, `1.15`),
`latest` or no version lets Helm resolve a different chart on the next run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import semver
from pulumi_policy import ResourceValidationPolicy

from .manifests import shown, validate_cilium_release

NAME = "cilium-chart-version-pinned"


def violations(props: Mapping[str, Any]) -> Iterator[str]:
    version = props.get("version")
    if not (isinstance(version, str) and semver.Version.is_valid(version)):
        yield (
            "Pin the cilium chart `version` to an exact release such as 1.15.0 "
            f"(found {shown(version)})."
        )


POLICY = ResourceValidationPolicy(
    name=NAME,
    description="The Cilium Helm release pins an exact chart version (ADR-013: 1.15.0).",
    # A CiliumConfig has no chart version: the OLM operator's bundle fixes it.
    validate=validate_cilium_release(violations, helm_only=True),
)
