"""Validate CiliumNetworkPolicy manifests against the CRD's own structural schema.

The schema is derived from Cilium's CRD by scripts/derive_cilium_versions.py (descriptions
stripped by scripts/derive_cnp_schema.py's strip_descriptions), one per version on the path. It
is an OpenAPI v3 subset, close to JSON Schema draft 4; `x-kubernetes-*` keys and `format:
int64`-style annotations are unknown keywords to jsonschema and therefore ignored.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from jsonschema import Draft4Validator

from cnistack import cilium_versions

SOURCE_KEY = "x-cnistack-source"


@functools.cache
def cnp_schema() -> Mapping[str, Any]:
    # The production pin's CRD (scripts/derive_cilium_versions.py writes one per version on the
    # upgrade path): what the program's own policies are checked against when rendered.
    version = cilium_versions.default_version()
    path = resources.files("cnistack") / "data" / "cilium" / version / "crds"
    text = (path / "ciliumnetworkpolicies.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _close_objects(schema: Any) -> Any:
    """Add `additionalProperties: false` wherever the schema lists an object's properties.

    The API server prunes unknown fields of a structural schema instead of rejecting them, so a
    typo such as `toPort` would silently vanish from the stored policy; closing the objects turns
    that into a validation error here.
    """
    if isinstance(schema, list):
        return [_close_objects(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties"):
            out[key] = {name: _close_objects(sub) for name, sub in value.items()}
        elif key in ("enum", "required", "default"):
            out[key] = value
        else:
            out[key] = _close_objects(value)
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def _validator(closed: bool) -> Draft4Validator:
    schema = copy.deepcopy(dict(cnp_schema()))
    return Draft4Validator(_close_objects(schema) if closed else schema)


def cnp_errors(manifest: Mapping[str, Any], *, reject_unknown_fields: bool = True) -> list[str]:
    """Every schema violation of `manifest`, as `path: message`; empty when valid."""
    validator = _validator(reject_unknown_fields)
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))
    return [
        f"{'.'.join(str(part) for part in err.absolute_path) or '<root>'}: {err.message}"
        for err in errors
    ]
