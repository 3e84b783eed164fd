"""Bypass attempts on the production stack, each caught with its exact message.

Every attempt adds or changes one object of the compliant production stack and runs the whole
pack under the committed production pack config. docs/guard.md lists them with the known limits.
"""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import EnforcementLevel

from tests.policy_pack_harness import (
    UNKNOWN,
    PackResource,
    Violation,
    allow_postgresql,
    changed,
    cilium_policy,
    cilium_release,
    evaluate_pack,
    load_pack_config,
    namespace,
    production_stack,
)

PG = "NetworkPolicy `storage/allow-postgresql`"
CCNP = "kubernetes:cilium.io/v2:CiliumClusterwideNetworkPolicy"


def _caught(stack: list[PackResource]) -> list[tuple[str, str]]:
    violations = evaluate_pack(stack, load_pack_config("production"))
    assert {v.enforcement_level for v in violations} <= {EnforcementLevel.MANDATORY}
    return [(v.policy_name, v.message) for v in violations]


def _with(*resources: PackResource) -> list[PackResource]:
    names = {r.name for r in resources}
    kept = [r for r in production_stack(openshift=True) if r.name not in names]
    return [*kept, *resources]


def _opens(what: str, where: str, ref: str, ns: str, whom: str) -> tuple[str, str]:
    return (
        "sensitive-namespace-not-open",
        f"Remove {what} from {where} of {ref}: it opens sensitive namespace `{ns}` to {whom}.",
    )


# --- NetworkPolicy in storage ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peers", "expected"),
    [
        (
            [{"namespaceSelector": {}}],
            [_opens("`namespaceSelector: {}`", "ingress rule 0", PG, "storage", "all namespaces")],
        ),
        (
            [{"namespaceSelector": {}, "podSelector": {}}],
            [_opens("`namespaceSelector: {}`", "ingress rule 0", PG, "storage", "all namespaces")],
        ),
        (
            [
                {
                    "namespaceSelector": {
                        "matchExpressions": [
                            {"key": "kubernetes.io/metadata.name", "operator": "Exists"}
                        ]
                    }
                }
            ],
            [
                _opens(
                    "the namespaceSelector matching every namespace",
                    "ingress rule 0",
                    PG,
                    "storage",
                    "all namespaces",
                )
            ],
        ),
        (
            [
                {
                    "namespaceSelector": {
                        "matchExpressions": [
                            {"key": "team", "operator": "NotIn", "values": ["nobody"]}
                        ]
                    }
                }
            ],
            [
                _opens(
                    "the namespaceSelector matching every namespace",
                    "ingress rule 0",
                    PG,
                    "storage",
                    "all namespaces",
                )
            ],
        ),
        (
            [{}],
            [_opens("the empty peer 0", "ingress rule 0", PG, "storage", "every source")],
        ),
        (
            [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
            [_opens("ipBlock 0.0.0.0/0", "ingress rule 0", PG, "storage", "the internet")],
        ),
        (
            [{"ipBlock": {"cidr": "::/0"}}],
            [_opens("ipBlock ::/0", "ingress rule 0", PG, "storage", "the internet")],
        ),
        (
            [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
            [_opens("ipBlock 0.0.0.0/0", "ingress rule 0", PG, "storage", "the internet")],
        ),
        (
            [{"ipBlock": {"cidr": "0.0.0.0/1"}}, {"ipBlock": {"cidr": "128.0.0.0/1"}}],
            [
                _opens(
                    "the ipBlocks covering 0.0.0.0/0",
                    "ingress rule 0",
                    PG,
                    "storage",
                    "the internet",
                )
            ],
        ),
    ],
)
def test_network_policy_opening_storage(peers: list[Any], expected: list[tuple[str, str]]) -> None:
    assert _caught(_with(changed(allow_postgresql(), "spec.ingress.0.from", peers))) == expected


def test_network_policy_without_peers_admits_all_pods() -> None:
    assert _caught(_with(changed(allow_postgresql(), "spec.ingress.0.from"))) == [
        (
            "sensitive-namespace-not-open",
            f"Add `from` peers to ingress rule 0 of {PG}: without them it opens sensitive "
            "namespace `storage` to every source.",
        )
    ]


# --- CiliumNetworkPolicy in storage --------------------------------------------------------------

MINIO = "CiliumNetworkPolicy `storage/minio`"


def test_cilium_policy_with_a_cidr_group_cannot_be_verified() -> None:
    rule = {"fromCIDRSet": [{"cidrGroupRef": "partners"}]}
    minio = cilium_policy("storage", "minio", {"endpointSelector": {}, "ingress": [rule]})
    assert _caught(_with(minio)) == [
        (
            "sensitive-namespace-not-open",
            'Cannot verify fromCIDRSet cidrGroupRef "partners" in spec ingress rule 0 of '
            f"{MINIO} on sensitive namespace `storage`: list its CIDRs in the policy instead.",
        )
    ]


@pytest.mark.parametrize(
    ("rule", "what", "whom"),
    [
        ({"fromEntities": ["world"]}, "fromEntities world", "the internet"),
        ({"fromEntities": ["all"]}, "fromEntities all", "every source"),
        ({"fromEntities": ["cluster"]}, "fromEntities cluster", "all namespaces"),
        ({"fromEntities": ["world-ipv4"]}, "fromEntities world-ipv4", "the internet"),
        ({"fromEntities": ["world-ipv6"]}, "fromEntities world-ipv6", "the internet"),
        ({"fromCIDR": ["0.0.0.0/0"]}, "fromCIDR 0.0.0.0/0", "the internet"),
        ({"fromCIDRSet": [{"cidr": "0.0.0.0/0"}]}, "fromCIDRSet 0.0.0.0/0", "the internet"),
        (
            {"fromEndpoints": [{"matchLabels": {"reserved:world": ""}}]},
            "fromEndpoints reserved:world",
            "the internet",
        ),
    ],
)
def test_cilium_policy_opening_storage(rule: dict[str, Any], what: str, whom: str) -> None:
    minio = cilium_policy("storage", "minio", {"endpointSelector": {}, "ingress": [rule]})
    assert _caught(_with(minio)) == [_opens(what, "spec ingress rule 0", MINIO, "storage", whom)]


# --- CiliumClusterwideNetworkPolicy ---------------------------------------------------------


def _ccnp(name: str, spec: dict[str, Any]) -> PackResource:
    return PackResource(
        CCNP,
        name,
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumClusterwideNetworkPolicy",
            "metadata": {"name": name},
            "spec": spec,
        },
    )


WORLD = [{"fromEntities": ["world"]}]


@pytest.mark.parametrize(
    "selector",
    [
        {},
        {"matchLabels": {"app": "postgresql"}},
        {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "storage"}},
        {
            "matchExpressions": [
                {"key": "io.kubernetes.pod.namespace", "operator": "In", "values": ["storage"]}
            ]
        },
        {
            "matchExpressions": [
                {"key": "io.kubernetes.pod.namespace", "operator": "NotIn", "values": ["ai-apps"]}
            ]
        },
    ],
)
def test_clusterwide_policy_selecting_sensitive_pods(selector: dict[str, Any]) -> None:
    ccnp = _ccnp("open-db", {"endpointSelector": selector, "ingress": WORLD})
    assert _caught(_with(ccnp)) == [
        _opens(
            "fromEntities world",
            "spec ingress rule 0",
            "CiliumClusterwideNetworkPolicy `open-db`",
            "storage",
            "the internet",
        )
    ]


def test_clusterwide_any_namespace_source_into_storage() -> None:
    # Without a namespace in fromEndpoints, a clusterwide rule admits every namespace.
    ccnp = _ccnp(
        "apps-to-db",
        {
            "endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "storage"}},
            "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "client"}}]}],
        },
    )
    assert _caught(_with(ccnp)) == [
        _opens(
            "the any-namespace fromEndpoints selector",
            "spec ingress rule 0",
            "CiliumClusterwideNetworkPolicy `apps-to-db`",
            "storage",
            "all namespaces",
        )
    ]


@pytest.mark.parametrize(
    "spec",
    [
        {
            "endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "ai-apps"}},
            "ingress": WORLD,
        },
        {"nodeSelector": {}, "ingress": WORLD},
    ],
)
def test_clusterwide_policy_kept_out_of_sensitive_namespaces_passes(spec: dict[str, Any]) -> None:
    assert _caught(_with(_ccnp("edge", spec))) == []


# --- the sensitive label -------------------------------------------------------------------------


def test_sensitive_label_removed_while_listed_in_the_pack_config() -> None:
    unlabelled = namespace("storage")
    assert _caught(_with(unlabelled)) == [
        (
            "sensitive-namespace-not-open",
            'Label Namespace `storage` with `cnistack.io/sensitive: "true"`: it is listed in '
            "`sensitiveNamespaces` of the `sensitive-namespace-not-open` pack config "
            "(found nothing).",
        )
    ]


def test_sensitive_label_set_to_false_while_listed_in_the_pack_config() -> None:
    relabelled = changed(namespace("storage", sensitive=True), "metadata.labels", {
        "kubernetes.io/metadata.name": "storage", "cnistack.io/sensitive": "false",
    })  # fmt: skip
    opened = changed(allow_postgresql(), "spec.ingress.0.from", [{"namespaceSelector": {}}])
    assert _caught(_with(relabelled, opened)) == [
        (
            "sensitive-namespace-not-open",
            'Label Namespace `storage` with `cnistack.io/sensitive: "true"`: it is listed in '
            "`sensitiveNamespaces` of the `sensitive-namespace-not-open` pack config "
            '(found "false").',
        ),
        _opens("`namespaceSelector: {}`", "ingress rule 0", PG, "storage", "all namespaces"),
    ]


# --- objects registered through kubernetes:yaml/v2 ConfigGroup / ConfigFile --------------------
# pulumi-kubernetes provider/pkg/provider/yaml/v2/yaml.go `register` names each child
# "<resourcePrefix>:<namespace>/<name>" (prefix defaults to the component's name), parents it to
# the component and registers it through sdk/go/kubernetes/yaml/v2/kinds.go `RegisterResource`:
# the usual token for a built-in kind (`kubernetes:networking.k8s.io/v1:NetworkPolicy`, `v1`
# Namespace -> `kubernetes:core/v1:Namespace`) and `kubernetes:<apiVersion>:<kind>` for a custom
# resource, with the whole object (apiVersion, kind, metadata, spec) as its inputs. The engine
# analyses each child like any other resource (pkg/resource/deploy/step_generator.go analyzeAll).

OPEN_ALL_YAML = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: open-all, namespace: storage}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {}}]}]
"""


def _component(kind: str, name: str, inputs: dict[str, Any]) -> PackResource:
    return PackResource(f"kubernetes:yaml/v2:{kind}", name, inputs)


def _child(component: PackResource, obj: dict[str, Any]) -> PackResource:
    api_version, kind = obj["apiVersion"], obj["kind"]
    group_version = "core/v1" if api_version == "v1" else api_version
    metadata = obj["metadata"]
    name = f"{component.name}:{metadata['namespace']}/{metadata['name']}"
    urn = (
        f"urn:pulumi:policy-test::cnistack::{component.type}$kubernetes:{group_version}:{kind}"
        f"::{name}"
    )
    return PackResource(f"kubernetes:{group_version}:{kind}", name, obj, urn)


OPEN_ALL = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "open-all", "namespace": "storage"},
    "spec": {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]},
}
WORLD_CNP = {
    "apiVersion": "cilium.io/v2",
    "kind": "CiliumNetworkPolicy",
    "metadata": {"name": "world-in", "namespace": "storage"},
    "spec": {"endpointSelector": {}, "ingress": [{"fromEntities": ["world"]}]},
}


@pytest.mark.parametrize(
    ("component", "obj", "expected"),
    [
        (
            _component("ConfigGroup", "extra", {"yaml": OPEN_ALL_YAML}),
            OPEN_ALL,
            _opens(
                "`namespaceSelector: {}`",
                "ingress rule 0",
                "NetworkPolicy `storage/open-all`",
                "storage",
                "all namespaces",
            ),
        ),
        (
            _component("ConfigFile", "extra-file", {"file": "manifests/world.yaml"}),
            WORLD_CNP,
            _opens(
                "fromEntities world",
                "spec ingress rule 0",
                "CiliumNetworkPolicy `storage/world-in`",
                "storage",
                "the internet",
            ),
        ),
    ],
)
def test_policy_registered_through_a_yaml_component(
    component: PackResource, obj: dict[str, Any], expected: tuple[str, str]
) -> None:
    child = _child(component, obj)
    violations = evaluate_pack(_with(component, child), load_pack_config("production"))
    assert violations == [
        Violation(expected[0], expected[1], EnforcementLevel.MANDATORY, child.urn)
    ]


def test_unlabelled_namespace_registered_through_a_config_group() -> None:
    group = _component("ConfigGroup", "ns", {"objs": []})
    storage = _child(
        group,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "storage", "namespace": ""}},
    )
    storage = PackResource(
        storage.type, "ns:storage", {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": "storage"}}, storage.urn,
    )  # fmt: skip
    stack = [r for r in _with(group) if r.name != "storage"] + [storage]
    assert storage.type == "kubernetes:core/v1:Namespace"
    assert ("sensitive-namespace-not-open", (
        'Label Namespace `storage` with `cnistack.io/sensitive: "true"`: it is listed in '
        "`sensitiveNamespaces` of the `sensitive-namespace-not-open` pack config (found nothing)."
    )) in _caught(stack)  # fmt: skip


# --- Helm values spelled the way 1.15 accepts but treats differently -----------------------------
# cilium v1.15.0 install/kubernetes/cilium/templates/cilium-configmap.yaml renders
# `toString .Values.kubeProxyReplacement` and accepts true/false plus the deprecated
# strict/partial/disabled; daemon/cmd/kube_proxy_replacement.go treats "strict" like "true" but
# logs it as deprecated, "partial" (= "false") keeps kube-proxy for what it does not enable, and
# "disabled" turns NodePort, ExternalIPs, HostPort and socket LB off.


@pytest.mark.parametrize(
    ("mode", "shown"),
    [
        ("strict", '"strict"'),
        ("partial", '"partial"'),
        ("disabled", '"disabled"'),
        ("false", '"false"'),
        (False, "false"),
        ("True", '"True"'),
        (1, "1.0"),
    ],
)
def test_kube_proxy_replacement_spellings(mode: Any, shown: str) -> None:
    release = changed(cilium_release(openshift=True), "values.kubeProxyReplacement", mode)
    assert _caught(_with(release)) == [
        (
            "cilium-kube-proxy-replacement",
            "Set the cilium value `kubeProxyReplacement` to true "
            f"(found {shown}; the deprecated strict/partial/disabled are other modes).",
        )
    ]


@pytest.mark.parametrize(("enabled", "shown"), [("false", '"false"'), ("true", '"true"')])
def test_encryption_enabled_as_a_string(enabled: str, shown: str) -> None:
    # `{{- if .Values.encryption.enabled }}` is true for any non-empty string, and the agent then
    # gets `enable-wireguard: "false"` for "false" (cilium-configmap.yaml, v1.15.0): unencrypted.
    # "true" happens to work, but the ADR setting is the boolean.
    release = changed(cilium_release(openshift=True), "values.encryption.enabled", enabled)
    assert _caught(_with(release)) == [
        (
            "cilium-wireguard-encryption",
            f"Set the cilium value `encryption.enabled` to true (found {shown}).",
        )
    ]


# --- patches of live objects ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        (
            PackResource(
                "kubernetes:core/v1:NamespacePatch",
                "unlabel-storage",
                {"metadata": {"name": "storage", "labels": {"cnistack.io/sensitive": "false"}}},
            ),
            "Cannot verify NamespacePatch `storage`: server-side apply merges it into a live "
            "Namespace the policy pack never sees whole; declare the whole Namespace in the stack "
            "instead.",
        ),
        (
            PackResource(
                "kubernetes:networking.k8s.io/v1:NetworkPolicyPatch",
                "open-default-deny",
                {
                    "metadata": {"name": "default-deny", "namespace": "storage"},
                    "spec": {"ingress": [{}]},
                },
            ),
            "Cannot verify NetworkPolicyPatch `storage/default-deny`: server-side apply merges it "
            "into a live NetworkPolicy the policy pack never sees whole; declare the whole "
            "NetworkPolicy in the stack instead.",
        ),
        (
            PackResource(
                "kubernetes:cilium.io/v2:CiliumClusterwideNetworkPolicyPatch",
                "widen",
                {"metadata": {"name": "edge"}, "spec": {"endpointSelector": {}}},
            ),
            "Cannot verify CiliumClusterwideNetworkPolicyPatch `edge`: server-side apply merges it "
            "into a live CiliumClusterwideNetworkPolicy the policy pack never sees whole; declare "
            "the whole CiliumClusterwideNetworkPolicy in the stack instead.",
        ),
    ],
)
def test_patch_of_a_live_object(resource: PackResource, message: str) -> None:
    assert _caught(_with(resource)) == [("network-patch-visible", message)]


# --- an object without metadata.namespace, placed by the provider ------------------------------


def _storage_provider(namespace: str) -> PackResource:
    # pulumi-kubernetes provider input `namespace`: the default for objects that name none.
    return PackResource("pulumi:providers:kubernetes", "storage-k8s", {"namespace": namespace})


def _namespaceless_open_policy(provider: PackResource) -> PackResource:
    return PackResource(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "open",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "open"},
            "spec": {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]},
        },
        provider=provider,
    )


def test_policy_without_namespace_lands_in_the_providers_namespace() -> None:
    provider = _storage_provider("storage")
    assert _caught(_with(provider, _namespaceless_open_policy(provider))) == [
        _opens(
            "`namespaceSelector: {}`",
            "ingress rule 0",
            "NetworkPolicy `storage/open`",
            "storage",
            "all namespaces",
        )
    ]


def test_providers_namespace_unknown_at_update_cannot_be_verified() -> None:
    provider = _storage_provider(UNKNOWN)
    stack = _with(provider, _namespaceless_open_policy(provider))
    assert evaluate_pack(stack, load_pack_config("production")) == []
    violations = evaluate_pack(stack, load_pack_config("production"), preview=False)
    assert [(v.policy_name, v.message) for v in violations] == [
        (
            "sensitive-namespace-not-open",
            "Cannot verify this resource against ADR-013: `namespace` is still unknown during the "
            "update, so the policy pack cannot read it; give it a value known before `pulumi up` "
            "applies it.",
        )
    ]
