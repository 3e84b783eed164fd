"""Valid raw stack configs (as in a stack file), to change one key at a time."""

from __future__ import annotations

import copy
from typing import Any

_HOMELAB: dict[str, Any] = {"cni": "flannel", "cluster": {"kind": "k3d"}}
_PRODUCTION: dict[str, Any] = {
    "cni": "cilium",
    "cluster": {
        "kind": "existing",
        "name": "gtt-prod",
        "openshift": True,
        "context": "gtt-prod",
        "server": "https://api.gtt-prod.internal:6443",
        "deployKubeProxy": False,
    },
    "cilium": {"k8sServiceHost": "api.gtt-prod.internal", "k8sServicePort": 6443},
}


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def homelab_config(**overrides: Any) -> dict[str, Any]:
    return _merge(_HOMELAB, overrides)


def production_config(**overrides: Any) -> dict[str, Any]:
    return _merge(_PRODUCTION, overrides)
