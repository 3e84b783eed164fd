"""The one adapter between a stack and the analyzer (`reachability`): what the program renders
for a stack, as documents, with the enforcement profile its capabilities name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnistack.config import StackConfig
from cnistack.netpol.pods import POD_CIDR, representative_pods
from cnistack.netpol.renderer import render_policies
from cnistack.stack_files import PROJECT_DIR, load_stack
from reachability.errors import InputError
from reachability.inputs import Inputs
from reachability.loader import load_documents
from reachability.profiles import ENFORCEMENTS, PROFILES


def stack_documents(stack: StackConfig) -> list[dict[str, Any]]:
    """Representative pods (in the cluster's own pod network: under kube-router an ipBlock also
    matches pods) and the policies the program renders, for the stack's flavour and CNI."""
    manifests = render_policies(stack.network_policy, stack.capabilities, stack.flavour).manifests
    pods = representative_pods(stack.network_policy, stack.flavour, stack.pod_cidr or POD_CIDR)
    return [*pods, *manifests]


def load_stack_inputs(name: str, project_dir: Path = PROJECT_DIR) -> tuple[Inputs, str]:
    """Representative pods plus rendered policies of stack `name`, and the analyzer's enforcement
    profile (reachability/profiles.py) named by the stack's capability profile's enforcer."""
    try:
        stack = load_stack(name, project_dir)
        documents = stack_documents(stack)
    except (ValueError, FileNotFoundError) as exc:
        raise InputError(f"stack {name!r}: {exc}") from exc
    # Under Cilium the profile is the one of the stack's own Cilium line (`cilium@1.19` for the
    # default 1.19.7): semantics change between lines (reachability/profiles.py).
    enforcer: str = stack.capabilities.policy_enforcer
    if enforcer not in ENFORCEMENTS:
        raise InputError(f"stack {name!r}: unknown policy enforcer {enforcer!r}")
    settings = stack.cilium_settings
    if enforcer == "cilium" and settings is not None:
        line = ".".join(settings.chart.version.split(".")[:2])
        enforcer = f"cilium@{line}"
        if enforcer not in PROFILES:
            known = ", ".join(n for n in PROFILES if n.startswith("cilium@"))
            raise InputError(
                f"stack {name!r}: the analyzer has no profile for Cilium {line} "
                f"(aisp-cni:cilium.chart.version {settings.chart.version}); it follows {known}"
            )
    source = f"stack:{name}"
    return load_documents([(document, source) for document in documents]), enforcer
