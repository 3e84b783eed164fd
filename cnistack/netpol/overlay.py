"""A stack's changes to the platform's default model, instead of a whole model of its own.

`aisp-cni:networkPolicy: {extends: default, add: {...}, drop: {flows: [...]}}` starts from
cnistack/netpol/ai-platform.yaml, drops the named flows, then adds namespaces, workloads and
flows. A flow is redefined by dropping and adding it under the same name; adding a name the
default model already has is an error, so a stack never shadows a flow by accident. The result is
validated as one model (references, duplicates, L7 bypasses), like a model written out in full.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ValidationError

from cnistack.key_hints import nearest
from cnistack.netpol.policy_model import (
    Flow,
    Namespace,
    PolicyModel,
    Workload,
    _Frozen,
    _summarise,
    default_policy_model,
)

OVERLAY_KEY = "extends"


class OverlayError(ValueError):
    """An overlay that cannot apply; ``key`` is its path under ``networkPolicy``."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class Additions(_Frozen):
    namespaces: tuple[Namespace, ...] = ()
    workloads: tuple[Workload, ...] = ()
    flows: tuple[Flow, ...] = ()


class Drops(_Frozen):
    flows: tuple[str, ...] = ()


class PolicyOverlay(_Frozen):
    extends: Literal["default"]
    add: Additions = Additions()
    drop: Drops = Drops()


def is_overlay(data: Any) -> bool:
    return isinstance(data, Mapping) and OVERLAY_KEY in data


def _parse(data: Mapping[str, Any]) -> PolicyOverlay:
    try:
        return PolicyOverlay.model_validate(dict(data))
    except ValidationError as exc:
        raise OverlayError("", _summarise(exc, PolicyOverlay)) from None


def apply_overlay(data: Mapping[str, Any], base: PolicyModel | None = None) -> PolicyModel:
    """The default model (or ``base``) with the overlay's drops and additions applied."""
    overlay = _parse(data)
    base = base or default_policy_model()
    flows = {flow.name: flow for flow in base.flows}
    for name in overlay.drop.flows:
        if name not in flows:
            names = ", ".join(nearest(name, list(flows)))
            raise OverlayError(
                "drop.flows", f"no flow {name!r} in the default model; nearest: {names}"
            )
        del flows[name]
    add = overlay.add
    for kind, existing, added in (
        ("namespace", {ns.name for ns in base.namespaces}, [ns.name for ns in add.namespaces]),
        ("workload", {str(wl.ref) for wl in base.workloads}, [str(wl.ref) for wl in add.workloads]),
        ("flow", set(flows), [flow.name for flow in add.flows]),
    ):
        for name in added:
            if name in existing:
                redefine = "; drop it as well to redefine it" if kind == "flow" else ""
                raise OverlayError(
                    f"add.{kind}s", f"{kind} {name!r} is already in the default model{redefine}"
                )
    try:
        return PolicyModel(
            namespaces=(*base.namespaces, *add.namespaces),
            workloads=(*base.workloads, *add.workloads),
            flows=(*flows.values(), *add.flows),
        )
    except ValidationError as exc:
        raise OverlayError("", _summarise(exc)) from None
