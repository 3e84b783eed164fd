"""The whole CrossGuard pack over what each committed stack registers under mocks."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import ROOT, run_program
from tests.policy_pack_harness import (
    PackResource,
    Violation,
    evaluate_pack,
    load_pack_config,
    mandatory,
)


def registered(stack: str, overrides: dict[str, Any] | None = None) -> list[PackResource]:
    run = run_program(stack, overrides)
    return [PackResource(r.type, r.name, r.inputs) for r in run.registrations]


def by_policy(violations: list[Violation]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for violation in violations:
        found.setdefault(violation.policy_name, []).append(violation.message)
    return found


def test_committed_homelab_has_no_violation_at_all() -> None:
    assert evaluate_pack(registered("homelab"), load_pack_config("homelab")) == []


def test_committed_production_has_no_violation_at_all() -> None:
    assert evaluate_pack(registered("production"), load_pack_config("production")) == []


def test_weakened_production_is_caught_by_the_rule_that_names_each_weakening() -> None:
    resources = registered(
        "production",
        {"cilium": {
            "k8sServiceHost": "api.gtt-prod.internal", "k8sServicePort": 6443,
            "encryption": "disabled",
            "hubble": {"enabled": False, "relay": False, "ui": False},
        }},
    )  # fmt: skip
    # An empty HTTP rule allows every request on the port: put one in the ADR's API policy.
    for resource in resources:
        if resource.type.endswith("CiliumNetworkPolicy") and "frontend-reads-api" in resource.name:
            resource.props["spec"]["ingress"][0]["toPorts"][0]["rules"]["http"] = [{}]
    violations = mandatory(evaluate_pack(resources, load_pack_config("production")))
    assert sorted(by_policy(violations)) == [
        # Hubble off also switches the flow exporter off: the audit trail is gone.
        "cilium-hubble-flow-export",
        "cilium-hubble-relay-ui",
        "cilium-l7-http-rules",
        "cilium-wireguard-encryption",
    ]


def test_homelab_violations_are_only_advisory() -> None:
    resources = registered("homelab")
    resources.append(
        PackResource(
            "kubernetes:cilium.io/v2:CiliumNetworkPolicy",
            "stray",
            {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
             "metadata": {"name": "stray", "namespace": "ai-apps"},
             "spec": {"endpointSelector": {}}},
        )
    )  # fmt: skip
    violations = evaluate_pack(resources, load_pack_config("homelab"))
    assert [v.policy_name for v in violations] == ["cilium-network-policy-needs-cilium"]
    assert mandatory(violations) == []


def test_pack_pins_the_same_pulumi_sdk_as_the_program() -> None:
    def pin(path: str, name: str) -> str:
        match = re.search(rf"^{name}==(\S+)$", (ROOT / path).read_text(), re.MULTILINE)
        assert match, f"no {name} pin in {path}"
        return match[1]

    assert pin("policies/requirements.txt", "pulumi") == pin("requirements.txt", "pulumi")
