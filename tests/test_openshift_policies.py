"""Network policies on OpenShift: DNS through openshift-dns, the host-network router, flows per
flavour; and what the connectivity analyzer makes of them."""

from __future__ import annotations

from typing import Any

import pytest

from cnistack.capabilities import FLANNEL_WITH_KUBE_ROUTER, cilium_profile
from cnistack.cli import main
from cnistack.flavours import K3S, KUBERNETES, OPENSHIFT
from cnistack.netpol import default_policy_model, parse_policy_model, render_policies
from cnistack.netpol.pods import representative_pods
from cnistack.stack_documents import load_stack_inputs
from reachability.engine import Analyzer, Request
from reachability.loader import load_documents

CILIUM = cilium_profile(encryption="wireguard", hubble=True)
MANAGED_BY = {"app.kubernetes.io/managed-by": "cnistack"}


def find(manifests: tuple[dict[str, Any], ...], kind: str, ns: str, name: str) -> dict[str, Any]:
    (found,) = [
        m
        for m in manifests
        if m["kind"] == kind
        and m["metadata"].get("namespace") == ns
        and m["metadata"]["name"] == name
    ]
    return found


def test_openshift_dns_allow_targets_openshift_dns_on_5353() -> None:
    rendered = render_policies(default_policy_model(), CILIUM, OPENSHIFT)
    for ns in ("ai-apps", "ai-inference", "storage"):
        assert find(rendered.manifests, "NetworkPolicy", ns, "allow-dns")["spec"] == {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "openshift-dns"}
                            },
                            "podSelector": {
                                "matchLabels": {
                                    "dns.operator.openshift.io/daemonset-dns": "default"
                                }
                            },
                        }
                    ],
                    "ports": [
                        {"port": 5353, "protocol": "UDP"},
                        {"port": 5353, "protocol": "TCP"},
                    ],
                }
            ],
        }


def test_router_under_cilium_is_the_host_and_remote_node_entities() -> None:
    rendered = render_policies(default_policy_model(), CILIUM, OPENSHIFT)
    assert find(
        rendered.manifests, "CiliumNetworkPolicy", "ai-apps", "router-to-frontend-ingress"
    ) == {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {
            "name": "router-to-frontend-ingress",
            "namespace": "ai-apps",
            "labels": {**MANAGED_BY, "cnistack.io/flow": "router-to-frontend"},
        },
        "spec": {
            "endpointSelector": {"matchLabels": {"app": "frontend"}},
            "ingress": [
                {
                    "fromEntities": ["host", "remote-node"],
                    "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}],
                }
            ],
        },
    }


def test_router_under_plain_networkpolicy_is_openshifts_ingress_policy_group() -> None:
    rendered = render_policies(default_policy_model(), FLANNEL_WITH_KUBE_ROUTER, OPENSHIFT)
    policy = find(
        rendered.manifests, "NetworkPolicy", "ai-inference", "router-to-open-webui-ingress"
    )
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {"app": "open-webui"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"policy-group.network.openshift.io/ingress": ""}
                        },
                        "podSelector": {},
                    }
                ],
                "ports": [{"port": 8080, "protocol": "TCP"}],
            }
        ],
    }


def test_host_network_source_without_entities_or_label_is_refused() -> None:
    model = default_policy_model().model_copy(
        update={"flows": tuple(f for f in default_policy_model().flows if f.name.startswith("r"))}
    )
    assert [f.name for f in model.flows] == ["router-to-frontend", "router-to-open-webui"]
    openshift_on_k3s = model.model_copy(
        update={"flows": tuple(f.model_copy(update={"flavours": ()}) for f in model.flows)}
    )
    with pytest.raises(
        ValueError,
        match=r"^flow 'router-to-frontend': a hostNetwork source needs Cilium's host/remote-node "
        r"entities or OpenShift's ingress policy-group label; cluster flavour 'k3s' with "
        r"enforcer 'kube-router' has neither$",
    ):
        render_policies(openshift_on_k3s, FLANNEL_WITH_KUBE_ROUTER, K3S)


def _flow_names(profile: Any, flavour: Any) -> set[str]:
    rendered = render_policies(default_policy_model(), profile, flavour)
    return {
        m["metadata"]["labels"]["cnistack.io/flow"]
        for m in rendered.manifests
        if "cnistack.io/flow" in m["metadata"]["labels"]
    }


def test_each_flavour_renders_only_its_own_ingress_controller() -> None:
    openshift = _flow_names(CILIUM, OPENSHIFT)
    k3s = _flow_names(FLANNEL_WITH_KUBE_ROUTER, K3S)
    assert {"router-to-frontend", "router-to-open-webui"} <= openshift
    assert not {"ingress-to-frontend", "ingress-to-open-webui"} & openshift
    assert {"ingress-to-frontend", "ingress-to-open-webui"} <= k3s
    assert not {"router-to-frontend", "router-to-open-webui"} & k3s
    # Plain Kubernetes has neither Traefik nor the router.
    assert not {n for n in _flow_names(CILIUM, KUBERNETES) if "ingress-to" in n or "router" in n}


def test_host_network_source_namespace_must_be_unmanaged() -> None:
    data = {
        "namespaces": [{"name": "edge"}, {"name": "app"}],
        "workloads": [
            {"name": "web", "namespace": "app", "labels": {"app": "web"},
             "ports": [{"name": "http", "port": 8080}]},
        ],
        "flows": [
            {"name": "edge-to-web", "from": {"hostNetwork": "edge"}, "to": "app/web",
             "ports": [{"port": 8080}]},
        ],
    }  # fmt: skip
    with pytest.raises(
        ValueError,
        match=r"flow 'edge-to-web': hostNetwork namespace 'edge' must be managed: false",
    ):
        parse_policy_model(data)


def test_openshift_representative_pods_hold_dns_and_the_host_network_router() -> None:
    pods = representative_pods(default_policy_model(), OPENSHIFT)
    by_key = {(p["metadata"].get("namespace", ""), p["metadata"]["name"]): p for p in pods}
    assert by_key[("", "openshift-ingress")]["metadata"]["labels"] == {
        "policy-group.network.openshift.io/ingress": "",
        "kubernetes.io/metadata.name": "openshift-ingress",
    }
    dns = by_key[("openshift-dns", "dns-default")]
    assert dns["metadata"]["labels"] == {"dns.operator.openshift.io/daemonset-dns": "default"}
    assert dns["spec"]["containers"][0]["ports"] == [
        {"name": "dns", "containerPort": 5353, "protocol": "UDP"},
        {"name": "dns-tcp", "containerPort": 5353, "protocol": "TCP"},
    ]
    router = by_key[("openshift-ingress", "host-network")]
    assert router["spec"]["hostNetwork"] is True
    assert router["status"]["podIP"] == "192.168.0.10"
    # No Traefik on OpenShift: its only flows are K3s's.
    assert ("kube-system", "traefik") not in by_key


def test_analyzer_production_resolves_through_openshift_dns_and_lets_the_router_in() -> None:
    inputs, enforcer = load_stack_inputs("production")
    # The profile of the stack's own Cilium line (Pulumi.production.yaml pins 1.19.7).
    assert enforcer == "cilium@1.19"
    analyzer = Analyzer(inputs, enforcer)
    for src in ("ai-apps/frontend", "ai-inference/vllm", "storage/postgresql"):
        for proto in ("UDP", "TCP"):
            assert analyzer.query(src, "openshift-dns/dns-default", Request(proto, 5353)).allowed
        # Port 53 is the Service's; after DNAT nothing listens or is allowed there.
        assert not analyzer.query(src, "openshift-dns/dns-default", Request("UDP", 53)).allowed
    router = "openshift-ingress/host-network"
    assert analyzer.query(router, "ai-apps/frontend", Request("TCP", 8080)).allowed
    assert analyzer.query(router, "ai-inference/open-webui", Request("TCP", 8080)).allowed
    assert not analyzer.query(router, "storage/postgresql", Request("TCP", 5432)).allowed
    assert not analyzer.query(router, "ai-apps/api-server", Request("TCP", 8080)).allowed


def _host_network_case(policy: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "edge", "labels": {"kubernetes.io/metadata.name": "edge"}}},
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "app", "labels": {"kubernetes.io/metadata.name": "app"}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "r", "namespace": "edge",
         "labels": {"role": "router"}}, "spec": {"hostNetwork": True, "containers": []},
         "status": {"podIP": "192.168.0.10"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "app",
         "labels": {"app": "web"}}, "spec": {"containers": []}, "status": {"podIP": "10.0.0.5"}},
        policy,
    ]  # fmt: skip
    return [(doc, "case") for doc in docs]


def test_cilium_does_not_match_a_host_network_pod_by_its_labels() -> None:
    by_labels = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "from-router", "namespace": "app"},
        "spec": {
            "podSelector": {},
            "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {}}]}],
        },
    }
    inputs = load_documents(_host_network_case(by_labels))
    request = Request("TCP", 8080)
    assert Analyzer(inputs, "kube-router").query("edge/r", "app/web", request).allowed
    cilium = Analyzer(load_documents(_host_network_case(by_labels)), "cilium")
    assert not cilium.query("edge/r", "app/web", request).allowed


def test_cilium_host_entity_matches_a_host_network_pod() -> None:
    by_entity = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "from-nodes", "namespace": "app"},
        "spec": {"endpointSelector": {}, "ingress": [{"fromEntities": ["remote-node"]}]},
    }
    cilium = Analyzer(load_documents(_host_network_case(by_entity)), "cilium")
    assert cilium.query("edge/r", "app/web", Request("TCP", 8080)).allowed


PRODUCTION_LIST = "".join(
    line + "\n"
    for line in [
        "# allowed flows under cilium@1.19: 8 groups of endpoints that behave alike, 18 flows "
        "between them (--per-pod: every pod pair)",
        "ai-apps/api-server -> ai-inference/vllm  TCP/8000",
        "ai-apps/api-server -> openshift-dns/dns-default  TCP/5353; UDP/5353",
        "ai-apps/api-server -> storage/postgresql  TCP/5432",
        "ai-apps/frontend -> ai-apps/api-server  "
        "TCP/8080 [HTTP ^GET$ ^/api/v1/health$ | ^GET$ ^/api/v1/models$]",
        "ai-apps/frontend -> openshift-dns/dns-default  TCP/5353; UDP/5353",
        "ai-apps/frontend -> storage/postgresql  TCP/5432",
        "ai-inference/open-webui -> ai-inference/vllm  "
        "TCP/8001 [HTTP ^POST$ ^/inference\\.InferenceService/Generate$]",
        "ai-inference/open-webui -> openshift-dns/dns-default  TCP/5353; UDP/5353",
        "ai-inference/vllm -> openshift-dns/dns-default  TCP/5353; UDP/5353",
        "cidr:0.0.0.0/0 -> openshift-dns/dns-default  SCTP/all; TCP/all; UDP/all",
        "cidr:0.0.0.0/0 -> openshift-ingress/host-network  SCTP/all; TCP/all; UDP/all",
        "openshift-dns/dns-default -> cidr:0.0.0.0/0  SCTP/all; TCP/all; UDP/all",
        "openshift-dns/dns-default -> openshift-ingress/host-network  SCTP/all; TCP/all; UDP/all",
        "openshift-ingress/host-network -> ai-apps/frontend  TCP/8080",
        "openshift-ingress/host-network -> ai-inference/open-webui  TCP/8080",
        "openshift-ingress/host-network -> cidr:0.0.0.0/0  SCTP/all; TCP/all; UDP/all",
        "openshift-ingress/host-network -> openshift-dns/dns-default  SCTP/all; TCP/all; UDP/all",
        "storage/postgresql -> openshift-dns/dns-default  TCP/5353; UDP/5353",
    ]
)


def test_connectivity_list_production_is_the_model_and_openshift_dns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Every line between managed workloads is a flow of the model; DNS goes to openshift-dns on
    # 5353; the only other lines are the unmanaged namespaces (DNS, router), open by design.
    assert main(["connectivity", "list", "--stack", "production"]) == 0
    assert capsys.readouterr().out == PRODUCTION_LIST


def _l7_router_model() -> Any:
    return parse_policy_model(
        {
            "namespaces": [{"name": "edge", "managed": False}, {"name": "app"}],
            "workloads": [
                {"name": "web", "namespace": "app", "labels": {"app": "web"},
                 "ports": [{"name": "http", "port": 8080, "appProtocol": "http"}]},
            ],
            "flows": [
                {"name": "edge-reads-web", "from": {"hostNetwork": "edge"}, "to": "app/web",
                 "ports": [{"port": 8080}], "http": [{"method": "GET", "path": "/health"}]},
            ],
        }
    )  # fmt: skip


def test_l7_rules_from_the_host_network_under_cilium() -> None:
    rendered = render_policies(_l7_router_model(), CILIUM, OPENSHIFT)
    (cnp,) = [m for m in rendered.manifests if m["kind"] == "CiliumNetworkPolicy"]
    assert cnp["spec"]["ingress"] == [
        {
            "fromEntities": ["host", "remote-node"],
            "toPorts": [
                {
                    "ports": [{"port": "8080", "protocol": "TCP"}],
                    "rules": {"http": [{"method": "^GET$", "path": "^/health$"}]},
                }
            ],
        }
    ]
    assert rendered.fidelity == ()


def test_l7_rules_from_the_host_network_without_l7_are_a_fidelity_gap() -> None:
    rendered = render_policies(_l7_router_model(), FLANNEL_WITH_KUBE_ROUTER, OPENSHIFT)
    assert [gap.message for gap in rendered.fidelity] == [
        "flow 'edge-reads-web': app/web enforced as TCP/8080 whole port; "
        "L7 rules not enforced: GET /health"
    ]
