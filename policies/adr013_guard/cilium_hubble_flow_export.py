"""cilium-hubble-flow-export: Cilium writes an audit trail of flows, denials and L7 included.

ADR-013, "Conformité : Audit via Hubble" for C4-C5 data: Hubble metrics count flows, they do not
record them. Cilium's static exporter (chart values `hubble.export`, rendered by
templates/cilium-configmap.yaml into the agent's hubble-export-* flags) writes flows to a file on
each node, where the node's log shipping collects them. This policy demands, on a Cilium Helm
release or CiliumConfig:
- `hubble.export.static.enabled: true` and an absolute `filePath`;
- rotation: `fileMaxSizeMb` and `fileMaxBackups` set to positive numbers (an unrotated file fills
  the node's disk and then loses flows), under `hubble.export` or, from chart 1.18, under
  `hubble.export.static`;
- an allow list that keeps dropped flows (`{"verdict":["DROPPED",...]}`) and L7 records
  (`{"event_type":[{"type":129}]}`, MessageTypeAccessLog), each in a filter of its own (filter
  fields are AND-ed); an empty allow list exports every flow and also passes;
- no deny-list filter that removes dropped flows or L7 records;
- a field mask, when one is set, that keeps time, source, destination and verdict.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import semver
from pulumi_policy import ResourceValidationPolicy

from .manifests import dig, items, release_values, shown, validate_cilium_release

NAME = "cilium-hubble-flow-export"
L7_EVENT_TYPE = 129
AUDIT_FIELDS = ("time", "source", "destination", "verdict")
STATIC_ROTATION_FROM = semver.Version(1, 18, 0)


def _filters(value: object) -> list[Mapping[str, Any]] | None:
    """The JSON filters of an allow/deny list; None when one is not a JSON object."""
    parsed = []
    for entry in items(value):
        try:
            item = json.loads(entry) if isinstance(entry, str) else None
        except json.JSONDecodeError:
            return None
        if not isinstance(item, Mapping):
            return None
        parsed.append(item)
    return parsed


def _keeps_drops(item: Mapping[str, Any]) -> bool:
    return set(item) == {"verdict"} and "DROPPED" in list(items(item["verdict"]))


def _keeps_l7(item: Mapping[str, Any]) -> bool:
    return set(item) == {"event_type"} and any(
        isinstance(e, Mapping) and e.get("type") == L7_EVENT_TYPE and set(e) == {"type"}
        for e in items(item["event_type"])
    )


def _removes_audit(item: Mapping[str, Any]) -> bool:
    verdicts = list(items(item.get("verdict")))
    types = [e.get("type") for e in items(item.get("event_type")) if isinstance(e, Mapping)]
    return not item or "DROPPED" in verdicts or L7_EVENT_TYPE in types


def _rotation_under_static(props: Mapping[str, Any]) -> bool:
    """Chart 1.18 moved the rotation sizes under `hubble.export.static` (upgrade.rst of v1.18.11,
    "Helm Options"); a CiliumConfig (no chart version) is the OLM operator's 1.15 line."""
    version = props.get("version")
    if not (isinstance(version, str) and semver.Version.is_valid(version)):
        return False
    return bool(semver.Version.parse(version) >= STATIC_ROTATION_FROM)


def violations(props: Mapping[str, Any]) -> Iterator[str]:
    export = dig(release_values(props), "hubble", "export")
    static = dig(export, "static")
    if dig(static, "enabled") is not True:
        yield (
            "Set the cilium value `hubble.export.static.enabled` to true: C4-C5 data needs an "
            f"audit trail of flows, not only metrics (found {shown(dig(static, 'enabled'))})."
        )
        return
    path = dig(static, "filePath")
    if not (isinstance(path, str) and path.startswith("/")):
        yield (
            "Set the cilium value `hubble.export.static.filePath` to an absolute path on the node "
            f"(found {shown(path)})."
        )
    static_rotation = _rotation_under_static(props)
    for key in ("fileMaxSizeMb", "fileMaxBackups"):
        # The configmap reads `hubble.export.KEY | default hubble.export.static.KEY` from 1.18
        # (cilium-configmap.yaml of v1.18.11), `hubble.export.KEY` alone before.
        value, where = dig(export, key), f"hubble.export.{key}"
        if value is None and static_rotation:
            value, where = dig(static, key), f"hubble.export.static.{key}"
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 1:
            if isinstance(value, float) and value.is_integer():
                value = int(value)  # numbers travel as floats
            yield (
                f"Set the cilium value `{where}` to a positive number: the export "
                f"file must rotate (found {shown(value)})."
            )
    allow = _filters(dig(static, "allowList"))
    deny = _filters(dig(static, "denyList"))
    if allow is None or deny is None:
        yield "Write every `hubble.export.static` allowList/denyList entry as a JSON object."
        return
    if allow and not any(_keeps_drops(f) for f in allow):
        yield (
            'Add `{"verdict":["DROPPED"]}` (alone in its filter) to the cilium value '
            "`hubble.export.static.allowList`: every denied flow belongs in the audit trail."
        )
    if allow and not any(_keeps_l7(f) for f in allow):
        yield (
            'Add `{"event_type":[{"type":129}]}` (alone in its filter) to the cilium value '
            "`hubble.export.static.allowList`: L7 (HTTP/gRPC) records belong in the audit trail."
        )
    for item in deny:
        if _removes_audit(item):
            yield (
                f"Remove `{json.dumps(item)}` from the cilium value "
                "`hubble.export.static.denyList`: it drops denials or L7 records from the trail."
            )
    mask = [f for f in items(dig(static, "fieldMask")) if isinstance(f, str)]
    missing = [f for f in AUDIT_FIELDS if mask and f not in mask]
    if missing:
        yield (
            "Keep " + ", ".join(missing) + " in the cilium value `hubble.export.static.fieldMask`: "
            "an audit record names when, who, to whom and the verdict."
        )


POLICY = ResourceValidationPolicy(
    name=NAME,
    description=(
        "Cilium exports Hubble flows (denials and L7 included) to a rotated file: the C4-C5 "
        "audit trail (ADR-013, Conformité : Audit via Hubble)."
    ),
    validate=validate_cilium_release(violations),
)
