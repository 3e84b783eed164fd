"""Derive the CiliumConfig CRD (Isovalent's OLM operator for Cilium) that the engine tests apply.

Reads ciliumconfigs.cilium.io from isovalent/olm-for-cilium (for the 1.15 line:
manifests/cilium.v1.15.1/cluster-network-03-cilium-ciliumconfigs-crd.yaml), keeps what the API
server needs to serve the resource (group, names, scope, versions with their schema and
subresources), drops every `description`, and writes it as JSON with a header naming the source.
cnistack/openshift.py takes apiVersion and kind from the same CRD: cilium.io/v1alpha1,
CiliumConfig, namespaced, `spec` an object with x-kubernetes-preserve-unknown-fields.

Usage: python scripts/derive_ciliumconfig_crd.py CRD_YAML [OUT_JSON]
(e.g. `git -C <olm-for-cilium> show HEAD:manifests/cilium.v1.15.1/cluster-network-03-...yaml`
saved to a file).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tests/data/ciliumconfigs.cilium.io.json"
CRD_NAME = "ciliumconfigs.cilium.io"


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def derive(text: str, source: str) -> dict[str, Any]:
    crd = yaml.safe_load(text)
    if crd.get("kind") != "CustomResourceDefinition" or crd["metadata"]["name"] != CRD_NAME:
        raise ValueError(f"{source}: not the {CRD_NAME} CustomResourceDefinition")
    spec = crd["spec"]
    return {
        "x-cnistack-source": {"file": source, "sha256": hashlib.sha256(text.encode()).hexdigest()},
        "apiVersion": crd["apiVersion"],
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": spec["group"],
            "names": spec["names"],
            "scope": spec["scope"],
            "versions": [
                {
                    "name": v["name"],
                    "served": v["served"],
                    "storage": v["storage"],
                    "schema": _strip(v["schema"]),
                    **({"subresources": v["subresources"]} if "subresources" in v else {}),
                }
                for v in spec["versions"]
            ],
        },
    }


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[0])
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    try:
        data = derive(path.read_text(), path.name)
    except (OSError, ValueError, KeyError, yaml.YAMLError) as err:
        print(f"derive_ciliumconfig_crd: {err}", file=sys.stderr)
        return 2
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"{CRD_NAME} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
