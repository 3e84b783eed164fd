"""One test per tricky NetworkPolicy / CiliumNetworkPolicy semantic, on the conformance fixture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from reachability import Analyzer, InputError, Request, load_documents
from reachability.ports import ALL, PortSet

FIXTURE = list(
    yaml.safe_load_all((Path(__file__).parent / "data/conformance/fixture.yaml").read_text())
)


def analyzer(
    *policies: dict[str, Any], enforcement: str = "kube-router", extra: Any = ()
) -> Analyzer:
    docs = [(d, "fixture.yaml") for d in [*FIXTURE, *extra]]
    docs += [(p, "policies.yaml") for p in policies]
    return Analyzer(load_documents(docs), enforcement)  # type: ignore[arg-type]


def np(name: str, spec: dict[str, Any], ns: str = "x") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def cnp(name: str, spec: dict[str, Any], ns: str = "x") -> dict[str, Any]:
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def allowed(a: Analyzer, src: str, dst: str, spec: str = "TCP/80", *, method: str | None = None,
            path: str | None = None) -> bool:  # fmt: skip
    proto, port = spec.split("/")
    return a.query(src, dst, Request(proto, int(port), method, path)).allowed


POD_A = {"podSelector": {"matchLabels": {"pod": "a"}}}


def test_named_port_resolved_per_destination_pod() -> None:
    # y/b serves serve-80-tcp on 8080 instead of 80: the same named rule opens different ports.
    (yb,) = [d for d in FIXTURE if d["kind"] == "Pod" and d["metadata"]["namespace"] == "y"
             and d["metadata"]["name"] == "b"]  # fmt: skip
    moved = yaml.safe_load(yaml.safe_dump(yb))
    assert moved["spec"]["containers"][0]["ports"][0]["name"] == "serve-80-tcp"
    moved["spec"]["containers"][0]["ports"][0]["containerPort"] = 8080
    docs = [d for d in FIXTURE if d is not yb] + [moved]
    policy = np("egress-named", {**POD_A, "policyTypes": ["Egress"], "egress": [
        {"ports": [{"port": "serve-80-tcp"}]}]})  # fmt: skip
    a = Analyzer(load_documents([(d, "f") for d in [*docs, policy]]), "kube-router")
    assert allowed(a, "x/a", "y/a", "TCP/80")
    assert not allowed(a, "x/a", "y/b", "TCP/80")
    assert allowed(a, "x/a", "y/b", "TCP/8080")
    # A named port never matches an IP destination.
    assert not allowed(a, "x/a", "192.0.2.1", "TCP/80")


def test_named_port_needs_matching_protocol() -> None:
    a = analyzer(np("p", {**POD_A, "ingress": [{"ports": [{"port": "serve-80-udp"}]}]}))
    assert not allowed(a, "y/a", "x/a", "TCP/80")
    assert not allowed(a, "y/a", "x/a", "UDP/80")


# endPort: enforced by kube-router and from Cilium 1.16 (Documentation/network/kubernetes/
# policy.rst of v1.16.19); Cilium 1.15 enforces the start port only.
@pytest.mark.parametrize(
    ("enforcement", "expect_85"),
    [("kube-router", True), ("cilium@1.15", False), ("cilium@1.19", True), ("cilium", True)],
)
def test_end_port(enforcement: str, expect_85: bool) -> None:
    policy = np("range", {**POD_A, "ingress": [{"ports": [{"port": 80, "endPort": 90}]}]})
    a = analyzer(policy, enforcement=enforcement)
    assert allowed(a, "y/a", "x/a", "TCP/80")
    assert allowed(a, "y/a", "x/a", "TCP/85") is expect_85
    assert not allowed(a, "y/a", "x/a", "TCP/91")


@pytest.mark.parametrize(
    ("enforcement", "pod_ip_matches"), [("kube-router", True), ("cilium", False)]
)
def test_ip_block_except_and_pod_ips(enforcement: str, pod_ip_matches: bool) -> None:
    policy = np("cidr", {**POD_A, "ingress": [
        {"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.2.0/24"]}}]}]})  # fmt: skip
    a = analyzer(policy, enforcement=enforcement)
    assert allowed(a, "10.9.9.9", "x/a")
    assert not allowed(a, "10.0.2.200", "x/a")
    assert not allowed(a, "11.0.0.1", "x/a")
    assert allowed(a, "z/b", "x/a") is pod_ip_matches  # 10.0.3.2
    assert not allowed(a, "y/b", "x/a")  # 10.0.2.2 is in the except


def test_missing_from_allows_external_empty_ingress_denies() -> None:
    assert allowed(
        analyzer(np("p", {**POD_A, "ingress": [{"ports": [{"port": 80}]}]})), "192.0.2.1", "x/a"
    )
    assert not allowed(analyzer(np("p", {**POD_A, "ingress": []})), "x/b", "x/a")
    assert allowed(analyzer(np("p", {**POD_A, "ingress": [{"from": []}]})), "192.0.2.1", "x/a")


def test_policy_types_inference_ignores_empty_egress_list() -> None:
    a = analyzer(np("p", {**POD_A, "egress": []}))
    assert allowed(a, "x/a", "y/a")  # `egress: []` does not add Egress
    assert not allowed(a, "x/b", "x/a")  # Ingress is always inferred


def test_and_within_peer_or_across_peers() -> None:
    peer_and = {
        "namespaceSelector": {"matchLabels": {"ns": "y"}},
        "podSelector": {"matchLabels": {"pod": "b"}},
    }
    a = analyzer(np("p", {**POD_A, "ingress": [{"from": [peer_and]}]}))
    assert (
        allowed(a, "y/b", "x/a") and not allowed(a, "y/a", "x/a") and not allowed(a, "x/b", "x/a")
    )
    peers_or = [
        {"namespaceSelector": {"matchLabels": {"ns": "y"}}},
        {"podSelector": {"matchLabels": {"pod": "b"}}},
    ]
    a = analyzer(np("p", {**POD_A, "ingress": [{"from": peers_or}]}))
    assert allowed(a, "y/a", "x/a") and allowed(a, "x/b", "x/a") and not allowed(a, "z/b", "x/a")


def test_egress_to_external_only_via_ip_block() -> None:
    a = analyzer(np("p", {**POD_A, "policyTypes": ["Egress"], "egress": [
        {"to": [{"namespaceSelector": {}}]}, {"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}]}]}))  # fmt: skip  # noqa: E501
    assert allowed(a, "x/a", "z/c") and allowed(a, "x/a", "198.51.100.9")
    assert not allowed(a, "x/a", "192.0.2.1")


def test_cnp_deny_wins_over_allow() -> None:
    allow_all = np("allow-all", {**POD_A, "ingress": [{}]})
    deny = cnp("deny-y", {"endpointSelector": {"matchLabels": {"pod": "a"}}, "ingressDeny": [
        {"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "y"}}],
         "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}]}]})  # fmt: skip
    a = analyzer(allow_all, deny, enforcement="cilium")
    verdict = a.query("y/b", "x/a", Request("TCP", 80))
    assert not verdict.allowed and [str(p) for p in verdict.policies] == ["x/deny-y"]
    assert allowed(a, "y/b", "x/a", "TCP/81") and allowed(a, "z/b", "x/a", "TCP/80")
    assert allowed(analyzer(allow_all, deny), "y/b", "x/a")  # kube-router ignores the CNP


def test_cnp_http_regex_is_full_match() -> None:
    policy = cnp("l7", {"endpointSelector": {"matchLabels": {"pod": "a"}}, "ingress": [
        {"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}], "rules": {"http": [
            {"method": "GET|HEAD", "path": "/api/v[0-9]+/.*"}]}}]}]})  # fmt: skip
    a = analyzer(policy, enforcement="cilium")
    assert allowed(a, "y/b", "x/a", "TCP/80", method="GET", path="/api/v1/items")
    assert allowed(a, "y/b", "x/a", "TCP/80", method="HEAD", path="/api/v22/")
    assert not allowed(a, "y/b", "x/a", "TCP/80", method="GETX", path="/api/v1/items")
    assert not allowed(a, "y/b", "x/a", "TCP/80", method="GET", path="/x/api/v1/items")
    # An L4 probe (no method/path) passes an L7-restricted port: the connection is accepted.
    verdict = a.query("y/b", "x/a", Request("TCP", 80))
    assert verdict.allowed and verdict.l7_restricted


def test_cnp_to_ports_without_protocol_is_any() -> None:
    policy = cnp("any", {"endpointSelector": {"matchLabels": {"pod": "a"}}, "ingress": [
        {"fromEntities": ["cluster"], "toPorts": [{"ports": [{"port": "81"}]}]}]})  # fmt: skip
    a = analyzer(policy, enforcement="cilium")
    assert allowed(a, "y/b", "x/a", "TCP/81") and allowed(a, "y/b", "x/a", "UDP/81")
    assert not allowed(a, "y/b", "x/a", "TCP/80")
    assert not allowed(a, "192.0.2.1", "x/a", "TCP/81")  # cluster is not world


def test_cnp_endpoints_default_to_own_namespace_and_entities() -> None:
    policy = cnp("own-ns", {"endpointSelector": {}, "ingress": [
        {"fromEndpoints": [{}]}, {"fromEntities": ["world"]}]})  # fmt: skip
    a = analyzer(policy, enforcement="cilium")
    assert allowed(a, "x/b", "x/a") and not allowed(a, "y/b", "x/a")
    assert allowed(a, "192.0.2.1", "x/a")
    ns_label = cnp("by-ns-label", {"endpointSelector": {}, "ingress": [{"fromEndpoints": [
        {"matchLabels": {"io.cilium.k8s.namespace.labels.ns": "z"},
         "matchExpressions": [{"key": "k8s:io.kubernetes.pod.namespace", "operator": "Exists"}]}]}]})  # fmt: skip  # noqa: E501
    a = analyzer(ns_label, enforcement="cilium")
    assert allowed(a, "z/b", "x/a") and not allowed(a, "y/b", "x/a")


def test_cnp_empty_rule_is_default_deny() -> None:
    a = analyzer(cnp("deny", {"endpointSelector": {}, "ingress": [{}]}), enforcement="cilium")
    assert not allowed(a, "x/b", "x/a") and allowed(a, "x/a", "y/a")


def test_portset_algebra() -> None:
    l7 = frozenset({(("GET", "/a"),)})
    tcp80_l7 = PortSet.build([("TCP", 80, 80, l7)])
    tcp_range = PortSet.build([("TCP", 70, 90, None)])
    assert (tcp80_l7 | tcp_range).lookup("TCP", 80) == (True, None)
    assert (tcp80_l7 & tcp_range).lookup("TCP", 80) == (True, l7)
    assert not (tcp_range - PortSet.build([("TCP", 1, 65535, None)]))
    assert (ALL - tcp_range).lookup("TCP", 70) == (False, None)
    assert (ALL - tcp_range).lookup("TCP", 91) == (True, None)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            np(
                "bad-op",
                {
                    "podSelector": {
                        "matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]
                    }
                },
            ),
            "policies.yaml: NetworkPolicy x/bad-op: spec.podSelector: invalid selector operator "
            "'Equals' (expected one of In, NotIn, Exists, DoesNotExist)",
        ),
        (
            np(
                "bad-cidr",
                {**POD_A, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.300/8"}}]}]},
            ),
            "policies.yaml: NetworkPolicy x/bad-cidr: spec.ingress[0].from[0].ipBlock: "
            "invalid CIDR '10.0.0.300/8'",
        ),
        (
            np("bad-end", {**POD_A, "ingress": [{"ports": [{"port": "http", "endPort": 90}]}]}),
            "policies.yaml: NetworkPolicy x/bad-end: spec.ingress[0].ports[0]: "
            "endPort requires a numeric port",
        ),
        (
            cnp(
                "bad-regex",
                {
                    "endpointSelector": {},
                    "ingress": [
                        {
                            "toPorts": [
                                {"ports": [{"port": "80"}], "rules": {"http": [{"path": "/("}]}}
                            ]
                        }
                    ],
                },
            ),
            "policies.yaml: CiliumNetworkPolicy x/bad-regex: "
            "spec.ingress[0].toPorts[0].rules.http[0].path: invalid regex '/(': "
            "missing ), unterminated subpattern at position 1",
        ),
    ],
)
def test_bad_input_messages(policy: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as info:
        analyzer(policy)
    assert str(info.value) == message
