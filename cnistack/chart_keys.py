"""Check Helm values against the keys the chart's values.yaml defines.

The key set is derived from the chart by scripts/derive_chart_keys.py (values.yaml) and
scripts/derive_template_keys.py (keys the templates read but values.yaml leaves out, such as
`policyAuditMode`) and committed under cnistack/data, so the check needs neither the network
nor ../shared.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from cnistack.cilium import value_paths


@cache
def _reference(version: str) -> tuple[frozenset[str], frozenset[str]]:
    name = f"cilium-{version}-values-keys.json"
    path = resources.files("cnistack") / "data" / name
    if not path.is_file():
        raise FileNotFoundError(f"no derived key set {name}: run scripts/derive_chart_keys.py")
    data = json.loads(path.read_text())
    keys = set(data["keys"])
    templates = resources.files("cnistack") / "data" / f"cilium-{version}-template-keys.json"
    if templates.is_file():
        keys |= set(json.loads(templates.read_text())["keys"])
    return frozenset(keys), frozenset(data["openMaps"])


def unknown_value_keys(values: dict[str, Any], version: str) -> list[str]:
    """Dotted paths the values set that the chart at ``version`` does not define."""
    keys, open_maps = _reference(version)

    def known(path: str) -> bool:
        if path in keys:
            return True
        parts = path.split(".")
        return any(".".join(parts[:i]) in open_maps for i in range(1, len(parts)))

    return sorted(path for path in value_paths(values) if not known(path))
