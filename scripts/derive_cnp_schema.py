"""Derive the CiliumNetworkPolicy structural schema the tests and the renderer validate against.

Reads the `cilium.io/v2` CiliumNetworkPolicy CRD shipped with Cilium (the CRD file of the pinned
version, given as the first argument), takes the `v2` version's `openAPIV3Schema`, strips
every `description` annotation (the property *named* `description` under `spec` is kept) and writes
it with a `x-cnistack-source` header recording where it came from. Only the derived file is read at
test time, so the tests do not depend on the shared reference tree.

The program's data (every version on the upgrade path) is written by
scripts/derive_cilium_versions.py, which uses `strip_descriptions` from here. On its own:

    CRDS=$(go env GOMODCACHE)/github.com/cilium/cilium@v<version>/pkg/k8s/apis/cilium.io/client/crds
    .venv/bin/python scripts/derive_cnp_schema.py --cilium-version <version> \
        "$CRDS/v2/ciliumnetworkpolicies.yaml"

The Cilium version is read from the CRD file's parent directory name unless `--cilium-version`
is given. Output is deterministic (`sort_keys=True, indent=1`), so a regeneration from the same
input is byte-identical and a diff shows exactly what the new CRD changed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

# scripts/derive_cilium_versions.py writes every version's schemas with `strip_descriptions`; this
# script derives one CRD file on its own (e.g. a version off the path, for comparison).
DEFAULT_OUT = Path("cnp-structural-schema.json")
CRD_NAME = "ciliumnetworkpolicies.cilium.io"
VERSION = "v2"
HEADER_KEY = "x-cnistack-source"

# Keywords whose value maps a *property name* to a schema: the names are data, not annotations.
_NAMED_SCHEMAS = ("properties", "patternProperties", "definitions")
_SUBSCHEMA = ("items", "additionalProperties", "not")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


def strip_descriptions(schema: Any) -> Any:
    """Return `schema` without `description` annotations, keeping properties named `description`."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "description":
            continue
        if key in _NAMED_SCHEMAS and isinstance(value, dict):
            out[key] = {name: strip_descriptions(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA and isinstance(value, dict):
            out[key] = strip_descriptions(value)
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [strip_descriptions(sub) for sub in value]
        else:
            out[key] = value
    return out


def derive(crd_text: bytes, *, source_name: str, cilium_version: str) -> dict[str, Any]:
    crd = yaml.safe_load(crd_text)
    if crd.get("kind") != "CustomResourceDefinition" or crd["metadata"]["name"] != CRD_NAME:
        raise SystemExit(f"{source_name}: not the {CRD_NAME} CustomResourceDefinition")
    versions = {v["name"]: v for v in crd["spec"]["versions"]}
    if VERSION not in versions:
        raise SystemExit(f"{source_name}: CRD has no {VERSION} version (has {sorted(versions)})")
    schema = strip_descriptions(versions[VERSION]["schema"]["openAPIV3Schema"])
    schema[HEADER_KEY] = {
        "file": source_name,
        "sha256": hashlib.sha256(crd_text).hexdigest(),
        "ciliumVersion": cilium_version,
        "crd": CRD_NAME,
        "version": VERSION,
        "generator": "scripts/derive_cnp_schema.py",
    }
    return schema


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("crd", type=Path, help="ciliumnetworkpolicies.yaml of the pinned Cilium")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--cilium-version", help="defaults to the CRD file's directory name")
    args = parser.parse_args(argv)
    crd_path: Path = args.crd
    text = crd_path.read_bytes()
    schema = derive(
        text,
        source_name=crd_path.name,
        cilium_version=args.cilium_version or crd_path.parent.name,
    )
    args.out.write_text(render(schema), encoding="utf-8")
    print(f"wrote {args.out} from {crd_path} ({schema[HEADER_KEY]['sha256'][:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
