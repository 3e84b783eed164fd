"""Engine-free tests of the resource policies on the Cilium Helm release.

Each starts from the compliant release and changes one field.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.policy_pack_harness import (
    UNKNOWN,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_OBJECT_VALUE,
    PackResource,
    changed,
    cilium_release,
    run_policy,
)

RELEASE_POLICIES = [
    "cilium-chart-version-pinned",
    "cilium-kube-proxy-replacement",
    "cilium-wireguard-encryption",
    "cilium-hubble-relay-ui",
    "cilium-hubble-tls-not-helm",
]

_DELETE = object()


def _release(path: str, value: Any = _DELETE) -> PackResource:
    release = cilium_release()
    return changed(release, path) if value is _DELETE else changed(release, path, value)


@pytest.mark.parametrize("policy", RELEASE_POLICIES)
def test_compliant_release_passes(policy: str) -> None:
    assert run_policy(policy, cilium_release()) == []


@pytest.mark.parametrize(
    "chart", ["cilium/cilium", "./charts/cilium", "oci://registry.example/charts/cilium"]
)
def test_local_and_oci_charts_are_recognised_as_cilium(chart: str) -> None:
    release = changed(changed(cilium_release(), "chart", chart), "version", "latest")
    assert run_policy("cilium-chart-version-pinned", release) == [
        'Pin the cilium chart `version` to an exact release such as 1.15.0 (found "latest").'
    ]


@pytest.mark.parametrize(
    "chart",
    [
        # a chart directory, as in the Go module github.com/cilium/cilium
        "/home/me/go/pkg/mod/github.com/cilium/cilium@v1.15.0/install/kubernetes/cilium",
        "/srv/charts/cilium/",
        # what `helm pull cilium/cilium --version 1.15.0` writes (the air-gapped artifact)
        "/srv/airgap/cilium-1.15.0.tgz",
        "cilium-1.15.0-rc.1.tgz",
        # OCI references, bare, tagged, by digest
        "oci://quay.io/cilium/charts/cilium",
        "oci://registry.example:5000/mirror/cilium:1.15.0",
        "oci://registry.example/cilium@sha256:0123456789abcdef",
    ],
)
def test_every_chart_source_is_recognised_as_cilium(chart: str) -> None:
    release = changed(changed(cilium_release(), "chart", chart), "values.encryption.enabled", False)
    assert run_policy("cilium-wireguard-encryption", release) == [
        "Set the cilium value `encryption.enabled` to true (found false)."
    ]


@pytest.mark.parametrize(
    "chart",
    [
        "cilium-operator-extras",
        "/srv/charts/not-cilium-1.15.0.tgz",
        "/srv/charts/cilium-extras",
        "cilium-latest.tgz",
        "oci://registry.example/cilium/charts/hubble-ui",
    ],
)
def test_other_charts_are_not_judged(chart: str) -> None:
    other = changed(changed(cilium_release(), "chart", chart), "values", {})
    assert all(run_policy(policy, other) == [] for policy in RELEASE_POLICIES)


@pytest.mark.parametrize(
    ("version", "shown"),
    [
        ("~1.15.0", '"~1.15.0"'),
        ("^1.15", '"^1.15"'),
        ("1.15.x", '"1.15.x"'),
        ("1.15", '"1.15"'),
        ("", '""'),
        ("latest", '"latest"'),
        (_DELETE, "nothing"),
    ],
)
def test_version_must_be_an_exact_pin(version: Any, shown: str) -> None:
    assert run_policy("cilium-chart-version-pinned", _release("version", version)) == [
        f"Pin the cilium chart `version` to an exact release such as 1.15.0 (found {shown})."
    ]


@pytest.mark.parametrize(
    ("mode", "shown"),
    [("strict", '"strict"'), ("partial", '"partial"'), (False, "false"), (_DELETE, "nothing")],
)
def test_kube_proxy_replacement_must_be_true(mode: Any, shown: str) -> None:
    assert run_policy(
        "cilium-kube-proxy-replacement", _release("values.kubeProxyReplacement", mode)
    ) == [
        "Set the cilium value `kubeProxyReplacement` to true "
        f"(found {shown}; the deprecated strict/partial/disabled are other modes)."
    ]


def test_kube_proxy_replacement_accepts_the_string_the_chart_renders_alike() -> None:
    release = _release("values.kubeProxyReplacement", "true")
    assert run_policy("cilium-kube-proxy-replacement", release) == []


def test_kube_proxy_replacement_needs_the_api_server_host() -> None:
    assert run_policy("cilium-kube-proxy-replacement", _release("values.k8sServiceHost", "")) == [
        "Set the cilium value `k8sServiceHost` to the API server address: with "
        "kubeProxyReplacement the agents cannot reach it through the kubernetes Service."
    ]


@pytest.mark.parametrize(("port", "shown"), [(_DELETE, "nothing"), (70000, "70000.0")])
def test_kube_proxy_replacement_needs_the_api_server_port(port: Any, shown: str) -> None:
    assert run_policy("cilium-kube-proxy-replacement", _release("values.k8sServicePort", port)) == [
        "Set the cilium value `k8sServicePort` to the API server port such as 6443 "
        f"(found {shown})."
    ]


def test_encryption_must_be_enabled() -> None:
    assert run_policy(
        "cilium-wireguard-encryption", _release("values.encryption.enabled", False)
    ) == ["Set the cilium value `encryption.enabled` to true (found false)."]


@pytest.mark.parametrize(("kind", "shown"), [("ipsec", '"ipsec"'), (_DELETE, "nothing")])
def test_encryption_must_be_wireguard(kind: Any, shown: str) -> None:
    assert run_policy("cilium-wireguard-encryption", _release("values.encryption.type", kind)) == [
        "Set the cilium value `encryption.type` to wireguard "
        f"(found {shown}; the chart defaults to ipsec)."
    ]


def test_hubble_must_stay_enabled() -> None:
    assert run_policy("cilium-hubble-relay-ui", _release("values.hubble.enabled", False)) == [
        "Set the cilium value `hubble.enabled` to true (found false)."
    ]


def test_hubble_enabled_defaults_to_the_chart_default() -> None:
    assert run_policy("cilium-hubble-relay-ui", _release("values.hubble.enabled")) == []


def test_hubble_ui_needs_the_relay() -> None:
    assert run_policy("cilium-hubble-relay-ui", _release("values.hubble.relay.enabled", False)) == [
        "Set the cilium value `hubble.relay.enabled` to true: the Hubble UI and CLI read "
        "flows through the relay (found false)."
    ]


def test_hubble_ui_must_be_enabled() -> None:
    assert run_policy("cilium-hubble-relay-ui", _release("values.hubble.ui")) == [
        "Set the cilium value `hubble.ui.enabled` to true (found nothing)."
    ]


@pytest.mark.parametrize(
    ("method", "found"), [("helm", "helm"), (_DELETE, "the chart default helm")]
)
def test_hubble_tls_must_not_be_generated_by_helm(method: Any, found: str) -> None:
    release = _release("values.hubble.tls.auto.method", method)
    assert run_policy("cilium-hubble-tls-not-helm", release) == [
        "Set the cilium value `hubble.tls.auto.method` to cronJob or certmanager "
        f"(found {found}): helm re-issues certificates on every render, so previews are never "
        "clean (cilium/cilium#36012)."
    ]


@pytest.mark.parametrize(
    "path", ["values.hubble.tls.enabled", "values.hubble.tls.auto.enabled", "values.hubble.enabled"]
)
def test_hubble_tls_method_is_moot_without_generated_certificates(path: str) -> None:
    release = changed(_release("values.hubble.tls.auto.method", "helm"), path, False)
    assert run_policy("cilium-hubble-tls-not-helm", release) == []


@pytest.mark.parametrize(
    ("path", "unknown"),
    [
        ("chart", UNKNOWN),
        ("version", UNKNOWN),
        ("values", UNKNOWN_OBJECT_VALUE),
        ("values.kubeProxyReplacement", UNKNOWN_BOOLEAN_VALUE),
        ("values.k8sServiceHost", UNKNOWN),
        ("values.encryption", UNKNOWN_OBJECT_VALUE),
        ("values.hubble.tls.auto.method", UNKNOWN),
    ],
)
@pytest.mark.parametrize("policy", RELEASE_POLICIES)
def test_unknown_values_during_preview_are_not_judged(policy: str, path: str, unknown: str) -> None:
    assert run_policy(policy, _release(path, unknown)) == []


def test_known_violations_survive_a_later_unknown_value() -> None:
    release = changed(
        _release("values.encryption.enabled", False), "values.encryption.type", UNKNOWN
    )
    assert run_policy("cilium-wireguard-encryption", release) == [
        "Set the cilium value `encryption.enabled` to true (found false)."
    ]
