"""Engine-free tests of the stack policies on environments and namespaces."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policy_pack_harness import (
    UNKNOWN,
    UNKNOWN_OBJECT_VALUE,
    PackResource,
    allow_dns,
    allow_postgresql,
    changed,
    cilium_policy,
    cilium_release,
    default_deny,
    homelab_stack,
    namespace,
    network_policy,
    policy_named,
    production_stack,
    run_policy,
    stack_args,
)

PRODUCTION = {"environment": "production"}
HOMELAB = {"environment": "homelab"}


def _without(stack: list[PackResource], name: str) -> list[PackResource]:
    return [r for r in stack if r.name != name]


def _replace(stack: list[PackResource], resource: PackResource) -> list[PackResource]:
    return [resource if r.name == resource.name else r for r in stack]


# --- production-runs-cilium ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "config"), [(production_stack(), PRODUCTION), (homelab_stack(), HOMELAB)]
)
def test_each_environment_passes(stack: list[PackResource], config: dict[str, str]) -> None:
    assert run_policy("production-runs-cilium", stack, config) == []


def test_production_without_cilium() -> None:
    stack = _without(production_stack(), "cilium")
    assert run_policy("production-runs-cilium", stack, PRODUCTION) == [
        "Add a kubernetes:helm.sh/v3:Release of the cilium chart (or, on OpenShift, the OLM "
        "operator's cilium.io/v1alpha1 CiliumConfig) to this production stack: ADR-013 runs "
        "Cilium in production."
    ]


def test_production_with_another_chart_only() -> None:
    stack = _replace(production_stack(), changed(cilium_release(), "chart", "calico"))
    assert len(run_policy("production-runs-cilium", stack, PRODUCTION)) == 1


def test_environment_is_never_guessed() -> None:
    policy = "production-runs-cilium"
    # The engine refuses a config without it (see test_policy_pack_harness); engine-free, the
    # policy itself says what to set.
    reported: list[str] = []
    policy_named(policy).validate(  # type: ignore[attr-defined]
        stack_args(homelab_stack(), {}), lambda message, urn=None: reported.append(message)
    )
    assert reported == [
        "Set `environment` to production or homelab in the `production-runs-cilium` entry of the "
        "policy pack config (found nothing); the pack never guesses it from the stack."
    ]


# --- namespace-default-deny --------------------------------------------------------------------


@pytest.mark.parametrize("stack", [production_stack(), homelab_stack()])
def test_isolated_namespaces_pass(stack: list[PackResource]) -> None:
    assert run_policy("namespace-default-deny", stack) == []


def test_deny_split_across_two_policies_passes() -> None:
    stack = [
        *_without(production_stack(), "ai-apps-default-deny"),
        network_policy("ai-apps", "deny-in", {"podSelector": {}}),
        network_policy("ai-apps", "deny-out", {"podSelector": {}, "policyTypes": ["Egress"]}),
    ]
    assert run_policy("namespace-default-deny", stack) == []


def _deny_message(direction: str) -> str:
    return (
        f"Add a NetworkPolicy to namespace `ai-apps` with `podSelector: {{}}`, policyTypes "
        f"[{direction}] and no {direction.lower()} rules: every managed namespace starts from "
        f"default-deny {direction.lower()}."
    )


DNS_MESSAGE = (
    "Add a NetworkPolicy to namespace `ai-apps` with `podSelector: {}` allowing egress on UDP "
    "port 53 and TCP port 53 to the DNS pods (k8s-app: kube-dns in kube-system): default-deny "
    "egress otherwise breaks DNS."
)


@pytest.mark.parametrize(
    ("path", "value", "missing"),
    [
        ("spec.policyTypes", ["Ingress"], ["Egress"]),
        ("spec.policyTypes", ["Egress"], ["Ingress"]),
        ("spec.podSelector", {"matchLabels": {"app": "x"}}, ["Ingress", "Egress"]),
        ("spec.ingress", [{}], ["Ingress"]),
        ("metadata.namespace", "default", ["Ingress", "Egress"]),
    ],
)
def test_default_deny_changed_by_one_field(path: str, value: Any, missing: list[str]) -> None:
    stack = _replace(production_stack(), changed(default_deny("ai-apps"), path, value))
    assert run_policy("namespace-default-deny", stack) == [_deny_message(d) for d in missing]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("spec.egress.0.ports", [{"port": 53, "protocol": "TCP"}]),
        # Kubernetes' and K3s's CoreDNS answers on TCP too (the pack's default, the flavours').
        ("spec.egress.0.ports", [{"port": 53, "protocol": "UDP"}]),
        ("spec.egress.0.ports", [{"port": 53}]),
        ("spec.egress.0.to.0.podSelector", {"matchLabels": {"app": "coredns-lookalike"}}),
        ("spec.egress.0.to.0.namespaceSelector", {"matchLabels": {"team": "x"}}),
        ("spec.egress.0.to.0.namespaceSelector", None),
        ("spec.podSelector", {"matchLabels": {"app": "api-server"}}),
        ("spec.policyTypes", ["Ingress"]),
    ],
)
def test_dns_allow_changed_by_one_field(path: str, value: Any) -> None:
    dns = changed(allow_dns("ai-apps"), path, value)
    if value is None:
        dns = changed(allow_dns("ai-apps"), path)
    stack = _replace(production_stack(), dns)
    assert run_policy("namespace-default-deny", stack) == [DNS_MESSAGE]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("spec.egress.0.to", []),
        ("spec.egress.0.ports", []),
        (
            "spec.egress.0.ports",
            [{"port": "53", "protocol": "UDP"}, {"port": "53", "protocol": "TCP"}],
        ),
        (
            "spec.egress.0.ports",
            [{"port": "dns", "protocol": "UDP"}, {"port": "dns-tcp", "protocol": "TCP"}],
        ),
        (
            "spec.egress.0.ports",
            [
                {"port": 1, "endPort": 1024, "protocol": "UDP"},
                {"port": 1, "endPort": 1024, "protocol": "TCP"},
            ],
        ),
        ("spec.egress.0.to.0.namespaceSelector", {}),
        ("spec.egress.0.to", [{"ipBlock": {"cidr": "0.0.0.0/0"}}]),
    ],
)
def test_dns_allow_to_any_destination_or_port_passes(path: str, value: Any) -> None:
    stack = _replace(production_stack(), changed(allow_dns("ai-apps"), path, value))
    assert run_policy("namespace-default-deny", stack) == []


def test_unmanaged_namespaces_are_not_judged() -> None:
    stack = [*production_stack(), network_policy("elsewhere", "x", {"podSelector": {}})]
    assert run_policy("namespace-default-deny", stack) == []


def test_namespace_with_unknown_policy_is_not_judged() -> None:
    stack = _replace(
        production_stack(), changed(default_deny("ai-apps"), "spec", UNKNOWN_OBJECT_VALUE)
    )
    assert run_policy("namespace-default-deny", stack) == []


# --- sensitive-namespace-not-open ----------------------------------------------------------------


@pytest.mark.parametrize("stack", [production_stack(), homelab_stack()])
def test_sensitive_namespaces_closed_pass(stack: list[PackResource]) -> None:
    assert run_policy("sensitive-namespace-not-open", stack) == []


PG = "NetworkPolicy `storage/allow-postgresql`"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "spec.ingress.0.from.0.namespaceSelector",
            {},
            f"Remove `namespaceSelector: {{}}` from ingress rule 0 of {PG}: it opens sensitive "
            "namespace `storage` to all namespaces.",
        ),
        (
            "spec.ingress.0.from",
            [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
            f"Remove ipBlock 0.0.0.0/0 from ingress rule 0 of {PG}: it opens sensitive namespace "
            "`storage` to the internet.",
        ),
        (
            "spec.ingress.0.from",
            [],
            f"Add `from` peers to ingress rule 0 of {PG}: without them it opens sensitive "
            "namespace `storage` to every source.",
        ),
    ],
)
def test_network_policy_opening_storage(path: str, value: Any, message: str) -> None:
    stack = _replace(production_stack(), changed(allow_postgresql(), path, value))
    assert run_policy("sensitive-namespace-not-open", stack) == [message]


def test_labelled_namespace_is_sensitive_too() -> None:
    opened = network_policy(
        "ai-apps", "open", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}
    )
    stack = [*production_stack(), opened]
    assert run_policy("sensitive-namespace-not-open", stack) == []
    stack = _replace(stack, namespace("ai-apps", sensitive=True))
    assert run_policy("sensitive-namespace-not-open", stack) == [
        "Remove `namespaceSelector: {}` from ingress rule 0 of NetworkPolicy `ai-apps/open`: it "
        "opens sensitive namespace `ai-apps` to all namespaces."
    ]


def test_configured_sensitive_namespaces_replace_the_default() -> None:
    stack = _replace(production_stack(), namespace("storage"))
    stack = _replace(stack, changed(allow_postgresql(), "spec.ingress.0.from", []))
    assert run_policy("sensitive-namespace-not-open", stack, {"sensitiveNamespaces": []}) == []
    # Listed by default, so the missing label is reported as well as the opening.
    assert run_policy("sensitive-namespace-not-open", stack) == [
        'Label Namespace `storage` with `cnistack.io/sensitive: "true"`: it is listed in '
        "`sensitiveNamespaces` of the `sensitive-namespace-not-open` pack config (found nothing).",
        f"Add `from` peers to ingress rule 0 of {PG}: without them it opens sensitive "
        "namespace `storage` to every source.",
    ]


CNP = "CiliumNetworkPolicy `storage/minio`"


def _storage_cnp(rule: dict[str, Any]) -> PackResource:
    return cilium_policy("storage", "minio", {"endpointSelector": {}, "ingress": [rule]})


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"fromEntities": ["world"]},
            f"Remove fromEntities world from spec ingress rule 0 of {CNP}: it opens sensitive "
            "namespace `storage` to the internet.",
        ),
        (
            {"fromEntities": ["all"]},
            f"Remove fromEntities all from spec ingress rule 0 of {CNP}: it opens sensitive "
            "namespace `storage` to every source.",
        ),
        (
            {"fromCIDR": ["0.0.0.0/0"]},
            f"Remove fromCIDR 0.0.0.0/0 from spec ingress rule 0 of {CNP}: it opens sensitive "
            "namespace `storage` to the internet.",
        ),
        (
            {"fromCIDRSet": [{"cidr": "::/0"}]},
            f"Remove fromCIDRSet ::/0 from spec ingress rule 0 of {CNP}: it opens sensitive "
            "namespace `storage` to the internet.",
        ),
        (
            {
                "fromEndpoints": [
                    {
                        "matchExpressions": [
                            {"key": "k8s:io.kubernetes.pod.namespace", "operator": "Exists"}
                        ]
                    }
                ]
            },
            f"Remove the any-namespace fromEndpoints selector from spec ingress rule 0 of {CNP}: "
            "it opens sensitive namespace `storage` to all namespaces.",
        ),
        (
            {"toPorts": [{"ports": [{"port": "9000"}]}]},
            f"Add a source selector (fromEndpoints, fromEntities, ...) to spec ingress rule 0 of "
            f"{CNP}: ports alone open sensitive namespace `storage` to every source.",
        ),
    ],
)
def test_cilium_policy_opening_storage(rule: dict[str, Any], message: str) -> None:
    stack = [*production_stack(), _storage_cnp(rule)]
    assert run_policy("sensitive-namespace-not-open", stack) == [message]


def test_cilium_policy_admitting_one_namespace_passes() -> None:
    rule = {
        "fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "ai-apps"}}],
        "toPorts": [{"ports": [{"port": "9000"}]}],
    }
    assert (
        run_policy("sensitive-namespace-not-open", [*production_stack(), _storage_cnp(rule)]) == []
    )


def test_unknown_peers_are_not_judged() -> None:
    stack = _replace(
        production_stack(), changed(allow_postgresql(), "spec.ingress.0.from", UNKNOWN)
    )
    assert run_policy("sensitive-namespace-not-open", stack) == []
