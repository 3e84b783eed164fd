"""Rendering the policy model per capability profile, checked against the real schemas."""

from __future__ import annotations

import dataclasses
import importlib.util
import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from cnistack.capabilities import FLANNEL_WITH_KUBE_ROUTER, CapabilityProfile, cilium_profile
from cnistack.flavours import K3S, KUBERNETES, OPENSHIFT
from cnistack.netpol import (
    FidelityGap,
    RenderedPolicies,
    cnp_errors,
    default_policy_model,
    parse_policy_model,
    render_policies,
    representative_pods,
)
from cnistack.netpol.renderer import anchored

CILIUM = cilium_profile(encryption="wireguard", hubble=True)
HOMELAB = FLANNEL_WITH_KUBE_ROUTER
PROFILES = [pytest.param(HOMELAB, id="homelab"), pytest.param(CILIUM, id="cilium")]
MANAGED = ["ai-apps", "ai-inference", "storage"]
K8S_VERSIONS = ["1.30", kubernetes_validate.latest_version()]
ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "cnistack/data/cilium/1.19.7/crds/ciliumnetworkpolicies.json"
# sha256 of github.com/cilium/cilium@v1.19.7/pkg/k8s/apis/cilium.io/client/crds/v2/
# ciliumnetworkpolicies.yaml
CRD_SHA256 = "1b1738a904de1152c43078e6a873440aea100f30f10ce5ed4e8622524c13fa43"
MANAGED_BY = {"app.kubernetes.io/managed-by": "cnistack"}


def render(profile: CapabilityProfile) -> RenderedPolicies:
    return render_policies(default_policy_model(), profile, KUBERNETES)


def find(rendered: RenderedPolicies, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
    matches = [
        m
        for m in rendered.manifests
        if m["kind"] == kind
        and m["metadata"].get("namespace") == namespace
        and m["metadata"]["name"] == name
    ]
    assert len(matches) == 1, (kind, namespace, name, len(matches))
    return matches[0]


def names(rendered: RenderedPolicies, kind: str) -> list[tuple[str, str]]:
    return [
        (m["metadata"].get("namespace", ""), m["metadata"]["name"])
        for m in rendered.manifests
        if m["kind"] == kind
    ]


def flow_labels(flow: str) -> dict[str, str]:
    return {**MANAGED_BY, "cnistack.io/flow": flow}


# --- the ADR's three examples ------------------------------------------------------------------


def test_postgresql_example_is_a_networkpolicy_on_every_stack() -> None:
    for profile in (HOMELAB, CILIUM):
        rendered = render(profile)
        assert find(rendered, "NetworkPolicy", "storage", "ai-apps-to-postgresql-ingress") == {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": "ai-apps-to-postgresql-ingress",
                "namespace": "storage",
                "labels": flow_labels("ai-apps-to-postgresql"),
            },
            "spec": {
                "podSelector": {"matchLabels": {"app": "postgresql"}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "ai-apps"}
                                }
                            }
                        ],
                        "ports": [{"port": 5432, "protocol": "TCP"}],
                    }
                ],
            },
        }
        # Egress is default-deny too: every pod of ai-apps may reach postgresql, nothing else.
        assert find(rendered, "NetworkPolicy", "ai-apps", "ai-apps-to-postgresql-egress") == {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": "ai-apps-to-postgresql-egress",
                "namespace": "ai-apps",
                "labels": flow_labels("ai-apps-to-postgresql"),
            },
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "storage"}
                                },
                                "podSelector": {"matchLabels": {"app": "postgresql"}},
                            }
                        ],
                        "ports": [{"port": 5432, "protocol": "TCP"}],
                    }
                ],
            },
        }


def test_http_example_is_an_anchored_cilium_policy_on_cilium() -> None:
    rendered = render(CILIUM)
    assert find(rendered, "CiliumNetworkPolicy", "ai-apps", "frontend-reads-api-ingress") == {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {
            "name": "frontend-reads-api-ingress",
            "namespace": "ai-apps",
            "labels": flow_labels("frontend-reads-api"),
        },
        "spec": {
            "endpointSelector": {"matchLabels": {"app": "api-server"}},
            "ingress": [
                {
                    "fromEndpoints": [
                        {
                            "matchLabels": {
                                "app": "frontend",
                                "k8s:io.kubernetes.pod.namespace": "ai-apps",
                            }
                        }
                    ],
                    "toPorts": [
                        {
                            "ports": [{"port": "8080", "protocol": "TCP"}],
                            "rules": {
                                "http": [
                                    {"method": "^GET$", "path": "^/api/v1/models$"},
                                    {"method": "^GET$", "path": "^/api/v1/health$"},
                                ]
                            },
                        }
                    ],
                }
            ],
        },
    }


def test_grpc_example_is_an_escaped_post_path_on_cilium() -> None:
    rendered = render(CILIUM)
    assert find(rendered, "CiliumNetworkPolicy", "ai-inference", "webui-generates-ingress") == {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {
            "name": "webui-generates-ingress",
            "namespace": "ai-inference",
            "labels": flow_labels("webui-generates"),
        },
        "spec": {
            "endpointSelector": {"matchLabels": {"app": "vllm"}},
            "ingress": [
                {
                    "fromEndpoints": [
                        {
                            "matchLabels": {
                                "app": "open-webui",
                                "k8s:io.kubernetes.pod.namespace": "ai-inference",
                            }
                        }
                    ],
                    "toPorts": [
                        {
                            "ports": [{"port": "8001", "protocol": "TCP"}],
                            "rules": {
                                "http": [
                                    {
                                        "method": "^POST$",
                                        "path": r"^/inference\.InferenceService/Generate$",
                                    }
                                ]
                            },
                        }
                    ],
                }
            ],
        },
    }


def test_l7_flows_have_no_whole_port_networkpolicy_ingress_on_cilium() -> None:
    rendered = render(CILIUM)
    assert names(rendered, "CiliumNetworkPolicy") == [
        ("ai-apps", "frontend-reads-api-ingress"),
        ("ai-inference", "webui-generates-ingress"),
    ]
    for namespace, app, port in [("ai-apps", "api-server", 8080), ("ai-inference", "vllm", 8001)]:
        opening = [
            m["metadata"]["name"]
            for m in rendered.manifests
            if m["kind"] == "NetworkPolicy"
            and m["metadata"]["namespace"] == namespace
            and m["spec"]["podSelector"].get("matchLabels") == {"app": app}
            and any(p["port"] == port for r in m["spec"].get("ingress", []) for p in r["ports"])
        ]
        assert opening == []
    assert rendered.fidelity == ()


def test_l7_flows_keep_an_l4_egress_side_on_cilium() -> None:
    egress = find(render(CILIUM), "NetworkPolicy", "ai-inference", "webui-generates-egress")
    assert egress["spec"] == {
        "podSelector": {"matchLabels": {"app": "open-webui"}},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [{"podSelector": {"matchLabels": {"app": "vllm"}}}],
                "ports": [{"port": 8001, "protocol": "TCP"}],
            }
        ],
    }


def test_homelab_renders_l7_flows_at_l4_and_reports_exactly_two_gaps() -> None:
    rendered = render(HOMELAB)
    assert names(rendered, "CiliumNetworkPolicy") == []
    assert rendered.fidelity == (
        FidelityGap(
            flow="frontend-reads-api",
            namespace="ai-apps",
            workload="api-server",
            port=8080,
            protocol="TCP",
            lost_rules=("GET /api/v1/models", "GET /api/v1/health"),
            enforced_as="TCP/8080 whole port",
        ),
        FidelityGap(
            flow="webui-generates",
            namespace="ai-inference",
            workload="vllm",
            port=8001,
            protocol="TCP",
            lost_rules=("gRPC inference.InferenceService/Generate",),
            enforced_as="TCP/8001 whole port",
        ),
    )
    assert find(rendered, "NetworkPolicy", "ai-apps", "frontend-reads-api-ingress")["spec"] == {
        "podSelector": {"matchLabels": {"app": "api-server"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                "ports": [{"port": 8080, "protocol": "TCP"}],
            }
        ],
    }


def test_fidelity_gap_output_and_message() -> None:
    gap = render(HOMELAB).fidelity[0]
    assert gap.message == (
        "flow 'frontend-reads-api': ai-apps/api-server enforced as TCP/8080 whole port; "
        "L7 rules not enforced: GET /api/v1/models, GET /api/v1/health"
    )
    output = gap.as_output()
    assert output == {
        "flow": "frontend-reads-api",
        "namespace": "ai-apps",
        "workload": "api-server",
        "port": 8080,
        "protocol": "TCP",
        "lost_rules": ["GET /api/v1/models", "GET /api/v1/health"],
        "enforced_as": "TCP/8080 whole port",
        "message": gap.message,
    }
    json.dumps(output)


def test_l7_decision_follows_the_profile_not_the_cni_name() -> None:
    flannel_that_could = dataclasses.replace(HOMELAB, l7_policy=True)
    cilium_that_cannot = dataclasses.replace(CILIUM, l7_policy=False)
    assert len(names(render(flannel_that_could), "CiliumNetworkPolicy")) == 2
    assert render(flannel_that_could).fidelity == ()
    assert names(render(cilium_that_cannot), "CiliumNetworkPolicy") == []
    assert len(render(cilium_that_cannot).fidelity) == 2


def test_a_profile_without_networkpolicy_is_refused() -> None:
    blind = dataclasses.replace(HOMELAB, l3_l4_network_policy=False)
    with pytest.raises(ValueError, match="profile 'kube-router' enforces no NetworkPolicy"):
        render(blind)


# --- isolation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_every_managed_namespace_is_isolated_and_resolves_dns(profile: CapabilityProfile) -> None:
    rendered = render(profile)
    for ns in MANAGED:
        assert find(rendered, "NetworkPolicy", ns, "default-deny") == {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": ns, "labels": MANAGED_BY},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        }
        assert find(rendered, "NetworkPolicy", ns, "allow-dns")["spec"] == {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                            },
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                }
            ],
        }
    assert names(rendered, "Namespace") == [("", ns) for ns in MANAGED]
    # kube-system is a flow endpoint, never isolated: nothing is rendered into it.
    assert [m for m in rendered.manifests if m["metadata"].get("namespace") == "kube-system"] == []


def test_namespace_manifests_carry_name_and_sensitivity_labels() -> None:
    rendered = render(HOMELAB)
    assert find(rendered, "Namespace", None, "storage") == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "storage",
            "labels": {
                "kubernetes.io/metadata.name": "storage",
                **MANAGED_BY,
                "cnistack.io/sensitive": "true",
            },
        },
    }
    assert find(rendered, "Namespace", None, "ai-apps")["metadata"]["labels"] == {
        "kubernetes.io/metadata.name": "ai-apps",
        **MANAGED_BY,
    }


@pytest.mark.parametrize("profile", PROFILES)
def test_every_flow_opens_both_sides(profile: CapabilityProfile) -> None:
    model = default_policy_model()
    # Flannel runs on K3s (homelab), Cilium on OpenShift (production): each renders its own
    # ingress controller's flows only.
    flavour = K3S if profile == HOMELAB else OPENSHIFT
    rendered = render_policies(model, profile, flavour)
    by_flow: dict[str, set[str]] = {}
    for m in rendered.manifests:
        flow = m["metadata"]["labels"].get("cnistack.io/flow")
        if flow:
            by_flow.setdefault(flow, set()).add(m["metadata"]["name"].rsplit("-", 1)[1])
    expected = {
        f.name: {"ingress"}
        if f.source.namespace in {"kube-system", "openshift-ingress"}
        else {"ingress", "egress"}
        for f in model.flows
        if f.exists_on(flavour.name)
    }
    assert by_flow == expected


def small_model(http: list[dict[str, str]] | None = None) -> dict[str, Any]:
    flow: dict[str, Any] = {
        "name": "all-to-db",
        "from": {"namespace": "app"},
        "to": "app/db",
        "ports": [{"port": 5432}],
    }
    if http:
        flow["http"] = http
    return {
        "namespaces": [{"name": "app"}, {"name": "kube-system", "managed": False}],
        "workloads": [
            {
                "name": "db",
                "namespace": "app",
                "labels": {"app": "db"},
                "ports": [{"name": "pg", "port": 5432, "appProtocol": "http"}],
            },
            {
                "name": "metrics",
                "namespace": "kube-system",
                "labels": {"k8s-app": "metrics-server"},
                "ports": [{"name": "https", "port": 10250}],
            },
        ],
        "flows": [
            flow,
            {
                "name": "db-to-metrics",
                "from": "app/db",
                "to": "kube-system/metrics",
                "ports": [{"port": 10250}],
            },
        ],
    }


def test_same_namespace_whole_namespace_source_uses_empty_pod_selector() -> None:
    rendered = render_policies(parse_policy_model(small_model()), HOMELAB, KUBERNETES)
    ingress = find(rendered, "NetworkPolicy", "app", "all-to-db-ingress")
    assert ingress["spec"]["ingress"][0]["from"] == [{"podSelector": {}}]
    egress = find(rendered, "NetworkPolicy", "app", "all-to-db-egress")
    assert egress["spec"]["egress"][0]["to"] == [{"podSelector": {"matchLabels": {"app": "db"}}}]


def test_flow_into_an_unmanaged_namespace_renders_only_its_egress_side() -> None:
    rendered = render_policies(parse_policy_model(small_model()), CILIUM, KUBERNETES)
    flow_manifests = [
        n for ns, n in names(rendered, "NetworkPolicy") if n.startswith("db-to-metrics")
    ]
    assert flow_manifests == ["db-to-metrics-egress"]
    egress = find(rendered, "NetworkPolicy", "app", "db-to-metrics-egress")
    assert egress["spec"]["egress"][0]["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "metrics-server"}},
        }
    ]


def test_namespace_wide_l7_source_and_literal_paths_on_cilium() -> None:
    model = parse_policy_model(small_model(http=[{"method": "GET", "path": "/v1/things.json"}]))
    cnp = find(
        render_policies(model, CILIUM, KUBERNETES),
        "CiliumNetworkPolicy",
        "app",
        "all-to-db-ingress",
    )
    assert cnp["spec"]["ingress"][0]["fromEndpoints"] == [
        {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "app"}}
    ]
    assert cnp["spec"]["ingress"][0]["toPorts"][0]["rules"]["http"] == [
        {"method": "^GET$", "path": r"^/v1/things\.json$"}
    ]
    assert cnp_errors(cnp) == []


@pytest.mark.parametrize("profile", PROFILES)
def test_rendering_is_deterministic_and_names_are_unique(profile: CapabilityProfile) -> None:
    first, second = render(profile), render(profile)
    assert first == second
    keys = [
        (m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]) for m in first.manifests
    ]
    assert len(keys) == len(set(keys))
    kinds = [m["kind"] for m in first.manifests]
    assert kinds == sorted(kinds, key=["Namespace", "NetworkPolicy", "CiliumNetworkPolicy"].index)


@pytest.mark.parametrize(
    ("literal", "matches", "rejects"),
    [
        ("GET", ["GET"], ["GETX", "XGET", "get"]),
        ("/api/v1/models", ["/api/v1/models"], ["/api/v1/models/x", "/x/api/v1/models"]),
        ("/pkg.Svc/Do", ["/pkg.Svc/Do"], ["/pkgXSvc/Do"]),
        ("/a+b(c)[d]{e}|f?*^$\\", ["/a+b(c)[d]{e}|f?*^$\\"], ["/aab(c)[d]{e}|f"]),
    ],
)
def test_anchored_rules_match_exactly_the_literal(
    literal: str, matches: list[str], rejects: list[str]
) -> None:
    pattern = re.compile(anchored(literal))
    for text in matches:
        assert pattern.search(text)
    for text in rejects:
        assert not pattern.search(text)


# --- schemas -----------------------------------------------------------------------------------


def all_rendered() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for profile in (HOMELAB, CILIUM):
        out += render(profile).manifests
    return out


def test_every_cilium_policy_matches_the_crd_schema() -> None:
    cnps = [m for m in all_rendered() if m["kind"] == "CiliumNetworkPolicy"]
    assert len(cnps) == 2
    for cnp in cnps:
        assert cnp_errors(cnp) == []


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_kubernetes_manifest_matches_the_api_schema(version: str) -> None:
    manifests = [m for m in all_rendered() if m["kind"] != "CiliumNetworkPolicy"]
    manifests += representative_pods(default_policy_model(), KUBERNETES)
    assert {m["kind"] for m in manifests} == {"Namespace", "NetworkPolicy", "Pod"}
    for manifest in manifests:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_crd_schema_rejects_an_integer_port() -> None:
    cnp = find(render(CILIUM), "CiliumNetworkPolicy", "ai-apps", "frontend-reads-api-ingress")
    bad = json.loads(json.dumps(cnp))
    bad["spec"]["ingress"][0]["toPorts"][0]["ports"][0]["port"] = 8080
    assert cnp_errors(bad) == [
        "spec.ingress.0.toPorts.0.ports.0.port: 8080 is not of type 'string'"
    ]


def test_crd_schema_rejects_a_field_the_api_server_would_prune() -> None:
    cnp = find(render(CILIUM), "CiliumNetworkPolicy", "ai-apps", "frontend-reads-api-ingress")
    bad = json.loads(json.dumps(cnp))
    bad["spec"]["ingress"][0]["toPort"] = bad["spec"]["ingress"][0].pop("toPorts")
    assert cnp_errors(bad, reject_unknown_fields=False) == []
    assert cnp_errors(bad) == [
        "spec.ingress.0: Additional properties are not allowed ('toPort' was unexpected)"
    ]


def test_crd_schema_rejects_a_spec_without_selector() -> None:
    cnp = find(render(CILIUM), "CiliumNetworkPolicy", "ai-apps", "frontend-reads-api-ingress")
    bad = json.loads(json.dumps(cnp))
    del bad["spec"]["endpointSelector"]
    errors = cnp_errors(bad)
    assert len(errors) == 1
    assert errors[0].startswith("spec: ")


def test_kubernetes_schema_rejects_a_misspelled_networkpolicy_field() -> None:
    np = find(render(HOMELAB), "NetworkPolicy", "storage", "default-deny")
    bad = json.loads(json.dumps(np))
    bad["spec"]["podSelectr"] = bad["spec"].pop("podSelector")
    with pytest.raises(kubernetes_validate.ValidationError, match="podSelectr"):
        kubernetes_validate.validate(bad, "1.30", strict=True)


def test_kubernetes_schema_rejects_a_bad_policy_type() -> None:
    np = find(render(HOMELAB), "NetworkPolicy", "storage", "default-deny")
    bad = json.loads(json.dumps(np))
    bad["spec"]["policyTypes"] = [{"type": "Ingress"}]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.30", strict=True)


def _load_script() -> Any:
    spec = importlib.util.spec_from_file_location(
        "derive_cnp_schema", ROOT / "scripts" / "derive_cnp_schema.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _walk(node: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [path] if isinstance(node, dict) else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _walk(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _walk(value, (*path, str(i)))
    return out


def test_derived_schema_records_its_source_and_has_no_descriptions() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["x-cnistack-source"] == {
        "ciliumVersion": "1.19.7",
        "crd": "ciliumnetworkpolicies.cilium.io",
        "file": "github.com/cilium/cilium@v1.19.7/pkg/k8s/apis/cilium.io/client/crds/v2/"
        "ciliumnetworkpolicies.yaml",
        "generator": "scripts/derive_cilium_versions.py",
        "sha256": CRD_SHA256,
        "version": "v2",
    }
    for path in _walk(schema):
        node: Any = schema
        for key in path:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if "description" in node:
            assert path[-1] == "properties", path
    assert schema["properties"]["spec"]["properties"]["description"] == {"type": "string"}
    assert SCHEMA_FILE.read_text() == _load_script().render(schema)


def test_strip_descriptions_keeps_properties_named_description() -> None:
    script = _load_script()
    schema = {
        "description": "drop",
        "type": "object",
        "properties": {
            "description": {"type": "string", "description": "drop"},
            "items": {"type": "array", "items": {"type": "string", "description": "drop"}},
        },
        "oneOf": [{"description": "drop", "required": ["items"]}],
        "default": {"description": "kept: data, not an annotation"},
    }
    assert script.strip_descriptions(schema) == {
        "type": "object",
        "properties": {
            "description": {"type": "string"},
            "items": {"type": "array", "items": {"type": "string"}},
        },
        "oneOf": [{"required": ["items"]}],
        "default": {"description": "kept: data, not an annotation"},
    }


# --- representative pods -----------------------------------------------------------------------


def test_representative_pods_for_the_connectivity_analyzer() -> None:
    pods = representative_pods(default_policy_model(), K3S)
    assert pods[0] == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "kube-system",
            "labels": {"kubernetes.io/metadata.name": "kube-system"},
        },
    }
    assert pods[1]["metadata"] == {
        "name": "openshift-ingress",
        "labels": {"kubernetes.io/metadata.name": "openshift-ingress"},
    }
    assert pods[2] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "coredns",
            "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns"},
        },
        "spec": {
            "containers": [
                {
                    "name": "coredns",
                    "image": "registry.k8s.io/pause:3.9",
                    "ports": [
                        {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                        {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                    ],
                }
            ]
        },
        "status": {"podIP": "10.42.0.10", "podIPs": [{"ip": "10.42.0.10"}]},
    }
    by_name = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods[2:]}
    assert {k: p["status"]["podIP"] for k, p in by_name.items()} == {
        ("kube-system", "coredns"): "10.42.0.10",
        ("kube-system", "traefik"): "10.42.0.11",
        ("ai-apps", "api-server"): "10.42.1.10",
        ("ai-apps", "frontend"): "10.42.1.11",
        ("ai-inference", "open-webui"): "10.42.2.10",
        ("ai-inference", "vllm"): "10.42.2.11",
        ("storage", "postgresql"): "10.42.4.10",
    }
    vllm = by_name[("ai-inference", "vllm")]
    assert vllm["metadata"]["labels"] == {"app": "vllm"}
    assert vllm["spec"]["containers"][0]["ports"] == [
        {"name": "http", "containerPort": 8000, "protocol": "TCP"},
        {"name": "grpc", "containerPort": 8001, "protocol": "TCP"},
    ]
    ips = [ipaddress.ip_address(p["status"]["podIP"]) for p in by_name.values()]
    assert all(ip in ipaddress.ip_network("10.42.0.0/16") for ip in ips)
    assert len(set(ips)) == len(ips)
    assert representative_pods(default_policy_model(), K3S) == pods
