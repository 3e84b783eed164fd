"""The one place that asks the program what it renders for a stack."""

from __future__ import annotations

from pathlib import Path

from cnistack.connectivity.errors import InputError
from cnistack.connectivity.inputs import ENFORCEMENTS, Enforcement, Inputs
from cnistack.connectivity.loader import load_documents
from cnistack.netpol.pods import POD_CIDR, representative_pods
from cnistack.netpol.renderer import render_policies
from cnistack.stack_files import PROJECT_DIR, load_stack


def load_stack_inputs(name: str, project_dir: Path = PROJECT_DIR) -> tuple[Inputs, Enforcement]:
    """Representative pods plus rendered policies of stack `name`, and the stack's enforcer."""
    try:
        stack = load_stack(name, project_dir)
        manifests = render_policies(
            stack.network_policy, stack.capabilities, stack.flavour
        ).manifests
    except (ValueError, FileNotFoundError) as exc:
        raise InputError(f"stack {name!r}: {exc}") from exc
    enforcer = stack.capabilities.policy_enforcer
    if enforcer not in ENFORCEMENTS:
        raise InputError(f"stack {name!r}: unknown policy enforcer {enforcer!r}")
    source = f"stack:{name}"
    # Pod IPs in the cluster's own pod network: under kube-router an ipBlock also matches pods.
    try:
        pods = representative_pods(stack.network_policy, stack.flavour, stack.pod_cidr or POD_CIDR)
    except ValueError as exc:
        raise InputError(f"stack {name!r}: {exc}") from exc
    documents = [*pods, *manifests]
    return load_documents([(document, source) for document in documents]), enforcer
