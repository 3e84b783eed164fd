"""The pack as a whole: assembly, the committed pack configs, and the engine-like harness."""

from __future__ import annotations

import ast
import json
import re

import pytest
import yaml
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from tests.policy_pack_harness import (
    CONFIG_DIR,
    POLICIES,
    POLICIES_DIR,
    UNKNOWN,
    PackResource,
    PolicyConfigError,
    Violation,
    allow_api_readonly,
    changed,
    cilium_release,
    evaluate_pack,
    homelab_stack,
    load_pack_config,
    mandatory,
    production_stack,
    reconcile_config,
    run_policy,
)

GUARD_DIR = POLICIES_DIR / "adr013_guard"
# Shared by the policies, not policies themselves.
HELPER_MODULES = {"__init__", "manifests", "visibility", "selector_reach"}


def _weakened_production(*, openshift: bool = True) -> list[PackResource]:
    """Encryption off, Hubble off, and an HTTP rule that allows every request."""
    release = changed(cilium_release(openshift=openshift), "values.encryption.enabled", False)
    release = changed(release, "values.hubble.enabled", False)
    api = changed(allow_api_readonly(), "spec.ingress.0.toPorts.0.rules.http", [{}])
    replaced = {release.name: release, api.name: api}
    return [replaced.get(r.name, r) for r in production_stack(openshift=openshift)]


# --- assembly ------------------------------------------------------------------------------------


def test_policies_are_kebab_case_unique_and_described() -> None:
    names = [p.name for p in POLICIES]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", n) for n in names)
    assert all(p.description.strip() for p in POLICIES)


def test_one_policy_per_module() -> None:
    modules = sorted(p.stem for p in GUARD_DIR.glob("*.py") if p.stem not in HELPER_MODULES)
    assert modules == sorted(p.name.replace("-", "_") for p in POLICIES)


def test_the_pack_never_imports_the_program() -> None:
    for source in [*GUARD_DIR.glob("*.py"), POLICIES_DIR / "__main__.py"]:
        for node in ast.walk(ast.parse(source.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.split(".")[0] in {"cnistack", "components"} for n in names), source


def test_pack_project_files() -> None:
    project = yaml.safe_load((POLICIES_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"virtualenv": "venv"}}
    pins = (POLICIES_DIR / "requirements.txt").read_text()
    assert "pulumi-policy==1.21.0" in pins
    assert "pulumi==3.272.0" in pins


# --- pack config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "level"),
    [("production", EnforcementLevel.MANDATORY), ("homelab", EnforcementLevel.ADVISORY)],
)
def test_committed_pack_configs(stack: str, level: EnforcementLevel) -> None:
    config = load_pack_config(stack)
    assert set(config) <= {"all"} | {p.name for p in POLICIES}, "typo in a policy name"
    reconciled = reconcile_config(config)
    assert {c.enforcement_level for c in reconciled.values()} == {level}
    assert reconciled["production-runs-cilium"].properties == {"environment": stack}
    assert reconciled["sensitive-namespace-not-open"].properties == {
        "sensitiveNamespaces": ["storage"]
    }


def test_config_files_are_the_two_stacks_and_the_upgrade_window() -> None:
    # production-upgrade.json: production with the end-of-life rule advisory, for the
    # intermediate steps of a Cilium upgrade (tests/test_policy_pack_versions.py).
    assert sorted(p.name for p in CONFIG_DIR.iterdir()) == [
        "homelab.json",
        "production-upgrade.json",
        "production.json",
    ]
    for path in CONFIG_DIR.iterdir():
        json.loads(path.read_text())


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"all": "mandatory"}, "production-runs-cilium: 'environment' is a required property"),
        (
            {"production-runs-cilium": {"environment": "staging"}},
            "production-runs-cilium: 'staging' is not one of ['production', 'homelab']",
        ),
        (
            {"all": "strict", "production-runs-cilium": {"environment": "homelab"}},
            "parsing enforcement level for 'all': 'strict' is not a valid enforcement level",
        ),
    ],
)
def test_invalid_pack_config_is_refused(config: dict[str, object], error: str) -> None:
    with pytest.raises(PolicyConfigError) as raised:
        evaluate_pack(homelab_stack(), config)
    assert str(raised.value) == error


# --- evaluate_pack -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "resources"),
    [("production", production_stack(openshift=True)), ("homelab", homelab_stack())],
)
def test_compliant_stacks_have_no_violations(stack: str, resources: list[PackResource]) -> None:
    assert evaluate_pack(resources, load_pack_config(stack)) == []


def test_weakened_production_is_caught_by_the_rules_that_name_it() -> None:
    violations = evaluate_pack(_weakened_production(), load_pack_config("production"))
    release_urn = cilium_release().urn
    assert violations == [
        Violation(
            "cilium-wireguard-encryption",
            "Set the cilium value `encryption.enabled` to true (found false).",
            EnforcementLevel.MANDATORY,
            release_urn,
        ),
        Violation(
            "cilium-hubble-relay-ui",
            "Set the cilium value `hubble.enabled` to true (found false).",
            EnforcementLevel.MANDATORY,
            release_urn,
        ),
        Violation(
            "cilium-l7-http-rules",
            "Replace the empty HTTP rule at CiliumNetworkPolicy `ai-apps/allow-api-readonly` "
            "spec.ingress[0].toPorts[0].rules.http[0] with an explicit method and path: "
            "`{}` allows every request.",
            EnforcementLevel.MANDATORY,
            allow_api_readonly().urn,
        ),
    ]


def test_homelab_config_only_advises() -> None:
    config = {
        **load_pack_config("homelab"),
        "production-runs-cilium": {"environment": "production"},
    }
    # The homelab config expects kube-dns: weaken a stack that resolves through it.
    violations = evaluate_pack(_weakened_production(openshift=False), config)
    assert len(violations) == 3
    assert mandatory(violations) == []


def test_per_policy_level_overrides_all() -> None:
    config = {
        **load_pack_config("production"),
        "cilium-wireguard-encryption": "disabled",
        "cilium-hubble-relay-ui": {"enforcementLevel": "advisory"},
        "cilium-l7-http-rules": "remediate",
    }
    levels = {
        v.policy_name: v.enforcement_level for v in evaluate_pack(_weakened_production(), config)
    }
    assert levels == {
        "cilium-hubble-relay-ui": EnforcementLevel.ADVISORY,
        # Nothing remediates these rules, so the SDK reports a remediate level as mandatory.
        "cilium-l7-http-rules": EnforcementLevel.MANDATORY,
    }


def test_preview_unknowns_give_no_violation() -> None:
    stack = [
        changed(r, "values", UNKNOWN) if r.name == "cilium" else r for r in _weakened_production()
    ]
    violations = evaluate_pack(stack, load_pack_config("production"))
    assert [v.policy_name for v in violations] == ["cilium-l7-http-rules"]


def test_numbers_arrive_as_floats_like_over_the_engine_wire() -> None:
    seen: list[object] = []
    probe = ResourceValidationPolicy(
        name="probe",
        description="Records k8sServicePort.",
        validate=lambda args, report: seen.append(args.props["values"]["k8sServicePort"]),
    )
    run_policy(probe, cilium_release())
    assert seen == [6443.0]
    assert isinstance(seen[0], float)


def test_an_unknown_escaping_a_policy_becomes_the_sdk_note() -> None:
    careless = ResourceValidationPolicy(
        name="careless",
        description="Reads a value.",
        validate=lambda args, report: args.props["version"],
    )
    assert run_policy(careless, changed(cilium_release(), "version", UNKNOWN)) == [
        "can't run policy 'careless' from policy pack 'adr013-cni-guard@v0.0.1' during preview: "
        "string value at .version can't be known during preview"
    ]


def test_pack_resource_urn_defaults_to_a_stack_urn() -> None:
    assert PackResource("t:m:T", "n", {}).urn == "urn:pulumi:policy-test::cnistack::t:m:T::n"
    assert PackResource("t:m:T", "n", {}, "urn:x").urn == "urn:x"
