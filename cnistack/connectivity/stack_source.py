"""The one place that asks the program what it renders for a stack."""

from __future__ import annotations

from cnistack.connectivity.errors import InputError
from cnistack.connectivity.inputs import ENFORCEMENTS, Enforcement, Inputs
from cnistack.connectivity.loader import load_documents
from cnistack.netpol.pods import representative_pods
from cnistack.netpol.renderer import render_policies
from cnistack.stack_files import load_stack


def load_stack_inputs(name: str) -> tuple[Inputs, Enforcement]:
    """Representative pods plus rendered policies of stack `name`, and the stack's enforcer."""
    try:
        stack = load_stack(name)
        manifests = render_policies(
            stack.network_policy, stack.capabilities, stack.flavour
        ).manifests
    except (ValueError, FileNotFoundError) as exc:
        raise InputError(f"stack {name!r}: {exc}") from exc
    enforcer = stack.capabilities.policy_enforcer
    if enforcer not in ENFORCEMENTS:
        raise InputError(f"stack {name!r}: unknown policy enforcer {enforcer!r}")
    source = f"stack:{name}"
    documents = [*representative_pods(stack.network_policy, stack.flavour), *manifests]
    return load_documents([(document, source) for document in documents]), enforcer
