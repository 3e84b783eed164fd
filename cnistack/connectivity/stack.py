"""The one place that asks the program what it renders for a stack (imported lazily)."""

from __future__ import annotations

import importlib
from typing import Any

from cnistack.connectivity.errors import InputError
from cnistack.connectivity.loader import load_documents
from cnistack.connectivity.model import ENFORCEMENTS, Enforcement, Inputs


def load_stack_inputs(name: str) -> tuple[Inputs, Enforcement]:
    """Representative pods plus rendered policies of stack `name`, and the stack's enforcer."""
    try:
        stack_mod = importlib.import_module("cnistack.stack")
        render_mod = importlib.import_module("cnistack.netpol.render")
        stack = stack_mod.load_stack(name)
        model = stack.network_policy
        profile = stack.capabilities
        pods_fn = getattr(render_mod, "representative_pods", None)
        if pods_fn is None:
            pods_fn = importlib.import_module("cnistack.netpol.pods").representative_pods
        manifests = list(render_mod.render_policies(model, profile).manifests)
        pods = list(pods_fn(model))
    except (ImportError, AttributeError) as exc:
        raise InputError(f"stack {name!r}: the program's renderer is unavailable ({exc})") from exc
    except (ValueError, FileNotFoundError) as exc:
        raise InputError(f"stack {name!r}: {exc}") from exc
    enforcer = str(profile.policy_enforcer)
    if enforcer not in ENFORCEMENTS:
        raise InputError(f"stack {name!r}: unknown policy enforcer {enforcer!r}")
    source = f"stack:{name}"
    docs = [(_plain(doc), source) for doc in [*pods, *manifests]]
    return load_documents(docs), enforcer


def _plain(doc: Any) -> Any:
    dump = getattr(doc, "model_dump", None)
    return dump(mode="json", by_alias=True, exclude_none=True) if callable(dump) else doc
