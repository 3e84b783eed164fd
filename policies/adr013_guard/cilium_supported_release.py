"""cilium-supported-release: the Cilium release is of a line upstream still maintains.

Cilium maintains three stable lines at a time ("Three stable branches are maintained at a time",
Documentation/contributing/release/organization.rst): a line ends the day the third newer minor
ships, and gets no security fix after that. A cluster holding C4-C5 data must not run an
end-of-life CNI (ADR-013's production). The support table is data with its source and date
(cilium-support.json beside this module, written by scripts/derive_cilium_versions.py from the
module proxy's release dates), not a constant here. Mandatory in production, advisory in the
homelab (policies/config/*.json). A release whose line the table does not know (newer than its
date, or a typo) is refused too: the pack cannot vouch for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import semver
from pulumi_policy import ResourceValidationPolicy

from .manifests import validate_cilium_release

NAME = "cilium-supported-release"
TABLE = Path(__file__).resolve().parent / "cilium-support.json"


@cache
def support_table() -> Mapping[str, Any]:
    data: Mapping[str, Any] = json.loads(TABLE.read_text())
    return data


def violations(props: Mapping[str, Any]) -> Iterator[str]:
    version = props.get("version")
    if not (isinstance(version, str) and semver.Version.is_valid(version)):
        return  # cilium-chart-version-pinned names the missing exact version
    parsed = semver.Version.parse(version)
    line = f"{parsed.major}.{parsed.minor}"
    table = support_table()
    entry = table["lines"].get(line)
    maintained = sorted(
        (name for name, e in table["lines"].items() if not e["endOfLife"]),
        key=lambda name: semver.Version.parse(f"{name}.0"),
    )
    where = f"support table as of {table['asOf']}"
    if entry is None:
        yield (
            f"Cilium {version}: the {line} line is not in the {where}; install a maintained "
            f"line ({', '.join(maintained)})."
        )
    elif entry["endOfLife"]:
        yield (
            f"Cilium {version} is of the {line} line, out of support since {entry['endOfLife']} "
            f"({where}): move up the upgrade path to a maintained line ({', '.join(maintained)})."
        )


POLICY = ResourceValidationPolicy(
    name=NAME,
    description=(
        "The Cilium release is of a line upstream still maintains (the newest three minors); "
        "no end-of-life CNI in front of C4-C5 data."
    ),
    # A CiliumConfig has no chart version: the OLM operator's bundle fixes it.
    validate=validate_cilium_release(violations, helm_only=True),
)
