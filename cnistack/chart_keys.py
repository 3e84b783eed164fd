"""Check Helm values against the keys the chart's values.yaml defines.

The key sets are derived, for every version on the upgrade path, from that version's chart by
scripts/derive_cilium_versions.py (values.yaml via scripts/derive_chart_keys.py, and the keys the
templates read but values.yaml leaves out, such as `policyAuditMode`, via
scripts/derive_template_keys.py) and committed under cnistack/data/cilium/<version>/, so the check
needs neither the network nor ../shared.
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any


def value_paths(values: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every leaf of a values mapping, for checking against the chart."""
    if not isinstance(values, dict) or not values:
        return [prefix] if prefix else []
    paths: list[str] = []
    for key, value in values.items():
        paths += value_paths(value, f"{prefix}.{key}" if prefix else key)
    return paths


def _data(version: str) -> Traversable:
    return resources.files("cnistack") / "data" / "cilium" / version


def has_reference(version: str) -> bool:
    return (_data(version) / "values-keys.json").is_file()


@cache
def _reference(version: str) -> tuple[frozenset[str], frozenset[str]]:
    path = _data(version) / "values-keys.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no derived key set cnistack/data/cilium/{version}/values-keys.json: add the "
            "version to cnistack/data/cilium-upgrade-path.yaml and run "
            "scripts/derive_cilium_versions.py"
        )
    data = json.loads(path.read_text())
    keys = set(data["keys"])
    templates = _data(version) / "template-keys.json"
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


def nearest_key(path: str, version: str) -> str | None:
    """``path`` with its first unknown segment replaced by the closest chart key there."""
    keys, _ = _reference(version)
    parts = path.split(".")
    for i, part in enumerate(parts):
        parent = ".".join(parts[:i])
        if (f"{parent}.{part}" if parent else part) in keys:
            continue
        prefix = f"{parent}." if parent else ""
        siblings = {k.removeprefix(prefix).split(".")[0] for k in keys if k.startswith(prefix)}
        hint = difflib.get_close_matches(part, sorted(siblings), n=1)
        return ".".join([*parts[:i], hint[0], *parts[i + 1 :]]) if hint else None
    return None
