"""The pack's version and security rules: no end-of-life Cilium line in production (the support
table as data), Hubble's redaction of secrets, WireGuard's node-to-node encryption."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from tests.policy_pack_harness import (
    EnforcementLevel,
    changed,
    cilium_release,
    evaluate_pack,
    load_pack_config,
    production_stack,
    run_policy,
)

ROOT = Path(__file__).resolve().parent.parent


def test_the_packs_support_table_is_the_programs() -> None:
    # The pack never imports cnistack: scripts/derive_cilium_versions.py writes its copy.
    pack = json.loads((ROOT / "policies/adr013_guard/cilium-support.json").read_text())
    program = json.loads((ROOT / "cnistack/data/cilium/versions.json").read_text())["support"]
    assert pack == program
    assert pack["asOf"] == "2026-12-07"


@pytest.mark.parametrize(
    ("version", "messages"),
    [
        ("1.19.7", []),
        ("1.18.11", []),
        ("1.20.2", []),
        ("1.15.0", ["Cilium 1.15.0 is of the 1.15 line, out of support since 2025-07-29 (support "
                    "table as of 2026-12-07): move up the upgrade path to a maintained line "
                    "(1.18, 1.19, 1.20)."]),
        ("1.17.17", ["Cilium 1.17.17 is of the 1.17 line, out of support since 2026-07-29 (support "
                    "table as of 2026-12-07): move up the upgrade path to a maintained line "
                    "(1.18, 1.19, 1.20)."]),
        ("1.21.0", ["Cilium 1.21.0: the 1.21 line is not in the support table as of 2026-12-07; "
                    "install a maintained line (1.18, 1.19, 1.20)."]),
        # A range is cilium-chart-version-pinned's to name.
        ("~1.19", []),
    ],
)  # fmt: skip
def test_an_end_of_life_line_is_refused(version: str, messages: list[str]) -> None:
    release = changed(cilium_release(), "version", version)
    assert run_policy("cilium-supported-release", release) == messages


def test_eol_is_mandatory_in_production_and_advisory_in_the_homelab() -> None:
    old = [changed(r, "version", "1.15.0") if r.name == "cilium" else r for r in production_stack()]
    found = {
        stack: [
            v.enforcement_level
            for v in evaluate_pack(old, load_pack_config(stack))
            if v.policy_name == "cilium-supported-release"
        ]
        for stack in ("production", "homelab")
    }
    assert found == {
        "production": [EnforcementLevel.MANDATORY],
        "homelab": [EnforcementLevel.ADVISORY],
    }


def _redact(path: str, value: Any) -> list[str]:
    return run_policy(
        "cilium-hubble-redact", changed(cilium_release(), f"values.hubble.redact.{path}", value)
    )


def test_compliant_redaction_passes() -> None:
    assert run_policy("cilium-hubble-redact", cilium_release()) == []


@pytest.mark.parametrize(
    ("path", "value", "messages"),
    [
        ("enabled", False,
         ["Set the cilium value `hubble.redact.enabled` to true: flows are the audit trail and "
          "must not carry secrets (found false)."]),
        ("http.urlQuery", False,
         ["Set the cilium value `hubble.redact.http.urlQuery` to true: query strings carry "
          "tokens (found false)."]),
        ("http.userInfo", None,
         ["Set the cilium value `hubble.redact.http.userInfo` to true: URLs carry basic-auth "
          "passwords (found nothing)."]),
        ("http.headers.deny", ["Authorization"],
         ["Add Proxy-Authorization, Cookie, Set-Cookie to the cilium value "
          "`hubble.redact.http.headers.deny` (or list the headers to keep in `allow`): they "
          "carry credentials."]),
        # Header names are case-insensitive (RFC 9110).
        ("http.headers.deny", ["authorization", "proxy-authorization", "cookie", "set-cookie"], []),
        ("http.headers", {"allow": ["traceparent", "Cookie"]},
         ["Remove Cookie from the cilium value `hubble.redact.http.headers.allow`: they carry "
          "credentials."]),
        ("http.headers", {"allow": ["traceparent"]}, []),
        ("kafka.apiKey", False,
         ["Set the cilium value `hubble.redact.kafka.apiKey` to true: Kafka requests carry API "
          "keys (found false)."]),
    ],
)  # fmt: skip
def test_redaction_changed_by_one_field(path: str, value: Any, messages: list[str]) -> None:
    assert _redact(path, value) == messages


def test_no_hubble_means_nothing_to_redact() -> None:
    release = changed(cilium_release(), "values.hubble", {"enabled": False})
    assert run_policy("cilium-hubble-redact", release) == []


@pytest.mark.parametrize(
    ("encryption", "messages"),
    [
        ({"enabled": True, "type": "wireguard", "nodeEncryption": True}, []),
        ({"enabled": True, "type": "wireguard"},
         ["Set the cilium value `encryption.nodeEncryption` to true: host-network traffic "
          "(OpenShift's router) to pods on other nodes is otherwise clear (found nothing)."]),
        ({"enabled": True, "type": "wireguard", "nodeEncryption": False},
         ["Set the cilium value `encryption.nodeEncryption` to true: host-network traffic "
          "(OpenShift's router) to pods on other nodes is otherwise clear (found false)."]),
        # No WireGuard: cilium-wireguard-encryption names that first.
        ({"enabled": False}, []),
    ],
)  # fmt: skip
def test_node_encryption_under_wireguard(encryption: dict[str, Any], messages: list[str]) -> None:
    release = changed(cilium_release(), "values.encryption", encryption)
    assert run_policy("cilium-node-encryption", release) == messages


def test_the_upgrade_pack_config_is_production_with_only_the_eol_rule_advisory() -> None:
    # For the intermediate steps of the README's upgrade procedure, nothing else relaxed.
    upgrade = load_pack_config("production-upgrade")
    assert upgrade.pop("cilium-supported-release") == {"enforcementLevel": "advisory"}
    assert upgrade == load_pack_config("production")


PREFLIGHT_VALUES = {
    "preflight": {"enabled": True},
    "agent": False,
    "operator": {"enabled": False},
    "k8sServiceHost": "api.example",
    "k8sServicePort": 6443,
}


def test_a_preflight_check_is_not_held_to_the_cni_settings() -> None:
    # Upstream's preflight release (no agent, no operator) beside the real release.
    preflight = dataclasses.replace(
        changed(cilium_release(), "values", PREFLIGHT_VALUES), name="cilium-preflight"
    )
    stack = [*production_stack(openshift=True), preflight]
    violations = evaluate_pack(stack, load_pack_config("production"))
    assert violations == []


def test_a_preflight_with_an_agent_is_a_cilium_install_held_to_every_setting() -> None:
    values = {**PREFLIGHT_VALUES, "agent": True}
    release = changed(cilium_release(), "values", values)
    assert run_policy("cilium-wireguard-encryption", release) == [
        "Set the cilium value `encryption.enabled` to true (found nothing).",
        "Set the cilium value `encryption.type` to wireguard (found nothing; the chart defaults "
        "to ipsec).",
    ]


def test_a_preflight_alone_is_not_cilium_running() -> None:
    preflight = changed(cilium_release(), "values", PREFLIGHT_VALUES)
    stack = [preflight if r.name == "cilium" else r for r in production_stack()]
    names = {v.policy_name for v in evaluate_pack(stack, load_pack_config("production"))}
    assert "production-runs-cilium" in names
