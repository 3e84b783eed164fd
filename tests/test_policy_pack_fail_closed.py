"""The pack fails closed in production: what it cannot see is a violation (visibility.py).

Each test runs the whole pack over the compliant production stack with one change, under the
committed production pack config, and asserts the exact diagnostics. "Preview" and "update" are the
two halves of `pulumi up`: the language host tells the pack which one through PULUMI_DRY_RUN
(policies/adr013_guard/visibility.py says where that comes from).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel

from tests.policy_pack_harness import (
    UNKNOWN,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_OBJECT_VALUE,
    PackResource,
    Violation,
    allow_postgresql,
    changed,
    cilium_release,
    evaluate_pack,
    load_pack_config,
    policy_named,
    production_stack,
    stack_args,
)

# How a Pulumi asset travels to the pack (pulumi_policy/deserialize.py, SPECIAL_ASSET_SIG).
ASSET_SIG = {"4dabf18193072939515e22adb298388d": "c44067f5952c0a294b673a41bacd8c17"}
RELEASE_URN = cilium_release(openshift=True).urn
MANDATORY = EnforcementLevel.MANDATORY


def _with(resource: PackResource) -> list[PackResource]:
    return [resource if r.name == resource.name else r for r in production_stack(openshift=True)]


def _production(stack: list[PackResource], *, preview: bool = True) -> list[Violation]:
    return evaluate_pack(stack, load_pack_config("production"), preview=preview)


def _visible(message: str) -> Violation:
    return Violation("cilium-release-visible", message, MANDATORY, RELEASE_URN)


def _unknown_at_update(path: str) -> str:
    return (
        f"Cannot verify this resource against ADR-013: `{path}` is still unknown during the "
        "update, so the policy pack cannot read it; give it a value known before `pulumi up` "
        "applies it."
    )


@pytest.mark.parametrize(
    ("asset", "shown"),
    [
        ({"path": "cilium-overrides.yaml"}, "cilium-overrides.yaml"),
        ({"uri": "https://example.invalid/values.yaml"}, "https://example.invalid/values.yaml"),
        ({"text": "encryption:\n  enabled: false\n"}, "an inline asset"),
    ],
)
def test_value_yaml_files_cannot_be_verified(asset: dict[str, str], shown: str) -> None:
    release = changed(cilium_release(openshift=True), "valueYamlFiles", [{**ASSET_SIG, **asset}])
    assert _production(_with(release)) == [
        _visible(
            f"Cannot verify the cilium values: `valueYamlFiles[0]` ({shown}) is merged into them "
            "by the provider and the policy pack cannot read it; move its settings into `values`."
        )
    ]


def test_postrender_cannot_be_verified() -> None:
    release = changed(cilium_release(openshift=True), "postrender", "/usr/local/bin/kustomize-wrap")
    assert _production(_with(release)) == [
        _visible(
            'Cannot verify the cilium manifests: `postrender` ("/usr/local/bin/kustomize-wrap") '
            "rewrites what the chart renders after the policy pack has checked the values; "
            "remove it."
        )
    ]


def test_reused_values_cannot_be_verified() -> None:
    release = changed(cilium_release(openshift=True), "reuseValues", True)
    assert _production(_with(release)) == [
        _visible(
            "Cannot verify the cilium values: `reuseValues: true` merges the values of the release "
            "already installed, which the policy pack cannot see; remove it."
        )
    ]


def test_null_with_allow_null_values_cannot_be_verified() -> None:
    # hubble.enabled null reads as "not set" (chart default true) to the Hubble rule; with
    # allowNullValues Helm deletes the default instead.
    release = changed(cilium_release(openshift=True), "allowNullValues", True)
    release = changed(release, "values.hubble.enabled", None)
    assert _production(_with(release)) == [
        _visible(
            "Cannot verify the cilium values: `values.hubble.enabled` is null with "
            "`allowNullValues: true`, so Helm deletes the chart default there; set a value or "
            "remove the key."
        )
    ]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "values.extraConfig",
            {"enable-wireguard": "false"},
            "Cannot verify the cilium values: `values.extraConfig.enable-wireguard` overrides the "
            "agent configuration the chart renders from the values the policy pack checks; set it "
            "through its chart value instead.",
        ),
        (
            "values.extraArgs",
            ["--kube-proxy-replacement=false"],
            "Cannot verify the cilium values: `values.extraArgs` reaches the cilium agent "
            "directly, past the values the policy pack checks; remove it.",
        ),
        (
            "values.extraEnv",
            [{"name": "CILIUM_ENABLE_WIREGUARD", "value": "false"}],
            "Cannot verify the cilium values: `values.extraEnv` reaches the cilium agent "
            "directly, past the values the policy pack checks; remove it.",
        ),
    ],
)
def test_agent_overrides_past_the_values_cannot_be_verified(
    path: str, value: Any, message: str
) -> None:
    assert _production(_with(changed(cilium_release(openshift=True), path, value))) == [
        _visible(message)
    ]


@pytest.mark.parametrize(
    ("mode", "shown"), [("never", '"never"'), ("Never", '"Never"'), (0, "0.0")]
)
def test_policy_enforcement_never_is_caught(mode: Any, shown: str) -> None:
    release = changed(cilium_release(openshift=True), "values.policyEnforcementMode", mode)
    assert _production(_with(release)) == [
        Violation(
            "cilium-policy-enforced",
            "Set the cilium value `policyEnforcementMode` to default or always "
            f"(found {shown}): `never` stops Cilium enforcing every network policy.",
            MANDATORY,
            RELEASE_URN,
        )
    ]


@pytest.mark.parametrize("mode", ["default", "always", "Always"])
def test_policy_enforcement_default_or_always_passes(mode: str) -> None:
    release = changed(cilium_release(openshift=True), "values.policyEnforcementMode", mode)
    assert _production(_with(release)) == []


def test_empty_postrender_and_value_files_are_harmless() -> None:
    release = changed(
        changed(cilium_release(openshift=True), "postrender", ""), "valueYamlFiles", []
    )
    release = changed(changed(release, "reuseValues", False), "allowNullValues", True)
    release = changed(changed(release, "values.extraConfig", {}), "values.extraArgs", [])
    assert _production(_with(release)) == []


@pytest.mark.parametrize(
    ("path", "unknown", "policies"),
    [
        (
            "values.encryption.enabled",
            UNKNOWN_BOOLEAN_VALUE,
            ["cilium-release-visible", "cilium-wireguard-encryption", "cilium-node-encryption"],
        ),
        (
            "values.kubeProxyReplacement",
            UNKNOWN_BOOLEAN_VALUE,
            ["cilium-release-visible", "cilium-kube-proxy-replacement"],
        ),
        (
            "values.hubble",
            UNKNOWN_OBJECT_VALUE,
            [
                "cilium-release-visible",
                "cilium-hubble-relay-ui",
                "cilium-hubble-flow-export",
                "cilium-hubble-redact",
                "cilium-hubble-tls-not-helm",
            ],
        ),
        ("valueYamlFiles", UNKNOWN, ["cilium-release-visible"]),
        ("postrender", UNKNOWN, ["cilium-release-visible"]),
        ("values.extraConfig", UNKNOWN_OBJECT_VALUE, ["cilium-release-visible"]),
    ],
)
def test_release_input_unknown_at_update_cannot_be_verified(
    path: str, unknown: str, policies: list[str]
) -> None:
    stack = _with(changed(cilium_release(openshift=True), path, unknown))
    assert _production(stack) == []  # preview: the update analyses it again with real values
    assert _production(stack, preview=False) == [
        Violation(policy, _unknown_at_update(path), MANDATORY, RELEASE_URN) for policy in policies
    ]


def test_unknown_chart_at_update_cannot_be_verified() -> None:
    stack = _with(changed(cilium_release(openshift=True), "chart", UNKNOWN))
    assert _production(stack) == []
    release_rules = [
        "cilium-chart-version-pinned",
        "cilium-supported-release",
        "cilium-release-visible",
        "cilium-policy-enforced",
        "cilium-kube-proxy-replacement",
        "cilium-wireguard-encryption",
        "cilium-node-encryption",
        "cilium-openshift-settings",
        "cilium-hubble-relay-ui",
        "cilium-hubble-flow-export",
        "cilium-hubble-redact",
        "cilium-hubble-tls-not-helm",
    ]
    assert _production(stack, preview=False) == [
        Violation(policy, _unknown_at_update("chart"), MANDATORY, RELEASE_URN)
        for policy in release_rules
    ]


def test_unknown_network_policy_peers_at_update_cannot_be_verified() -> None:
    opened = changed(allow_postgresql(), "spec.ingress.0.from", UNKNOWN)
    stack = _with(opened)
    assert _production(stack) == []
    assert _production(stack, preview=False) == [
        Violation(
            "sensitive-namespace-not-open",
            _unknown_at_update("spec.ingress.0.from"),
            MANDATORY,
            opened.urn,
        )
    ]


def test_unknown_namespace_labels_at_update_cannot_be_verified() -> None:
    storage = PackResource(
        "kubernetes:core/v1:Namespace",
        "storage",
        {"metadata": {"name": "storage", "labels": UNKNOWN_OBJECT_VALUE}},
    )
    stack = _with(storage)
    assert _production(stack) == []
    assert _production(stack, preview=False) == [
        Violation(
            "sensitive-namespace-not-open",
            _unknown_at_update("metadata.labels"),
            MANDATORY,
            storage.urn,
        )
    ]


def test_unknown_l7_proxy_at_update_cannot_be_verified() -> None:
    stack = _with(changed(cilium_release(openshift=True), "values.l7Proxy", UNKNOWN_BOOLEAN_VALUE))
    by_policy = {
        v.policy_name: v.message for v in _production(stack, preview=False) if v.urn == RELEASE_URN
    }
    assert by_policy["cilium-l7-proxy-for-http-rules"] == _unknown_at_update("values.l7Proxy")


def test_homelab_config_keeps_cannot_verify_advisory() -> None:
    # The homelab is K3s: its DNS is kube-system's CoreDNS, as policies/config/homelab.json says.
    release = changed(cilium_release(), "postrender", "./wrap.sh")
    stack = [release if r.name == release.name else r for r in production_stack()]
    config = {**load_pack_config("homelab"), "production-runs-cilium": {"environment": "homelab"}}
    violations = evaluate_pack(stack, config, preview=False)
    assert [(v.policy_name, v.enforcement_level) for v in violations] == [
        ("cilium-release-visible", EnforcementLevel.ADVISORY)
    ]


def test_without_the_dry_run_variable_the_pack_assumes_the_update(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An engine or language host that does not say which phase it runs: fail closed.
    monkeypatch.delenv("PULUMI_DRY_RUN", raising=False)
    stack = _with(changed(allow_postgresql(), "spec.ingress.0.from", UNKNOWN))
    reported: list[Any] = []
    policy_named("sensitive-namespace-not-open").validate(  # type: ignore[attr-defined]
        stack_args(stack, {"sensitiveNamespaces": ["storage"]}),
        lambda message, urn=None: reported.append(message),
    )
    assert "PULUMI_DRY_RUN" not in os.environ
    assert reported == [_unknown_at_update("spec.ingress.0.from")]
