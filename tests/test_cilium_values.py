"""Cilium's Helm values and chart reference, exactly, for every stack shape."""

from __future__ import annotations

import pytest

from cnistack.chart_keys import unknown_value_keys
from cnistack.cilium import ChartRef, chart_ref, helm_values, hubble_ui_access
from cnistack.config import CILIUM_CHART_VERSION, parse_stack_config
from cnistack.stack_files import load_stack
from tests.factories import PRODUCTION_VALUES, homelab_config, production_config


def test_production_values_are_the_adr_flags_plus_what_they_imply() -> None:
    assert helm_values(load_stack("production")) == PRODUCTION_VALUES


def test_production_chart_is_the_public_repository_pinned_at_1_19_6() -> None:
    settings = load_stack("production").cilium_settings
    assert settings is not None
    assert chart_ref(settings) == ChartRef("cilium", "1.19.7", "https://helm.cilium.io/")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"oci": "oci://registry.gtt.internal/charts"},
         ChartRef("oci://registry.gtt.internal/charts/cilium", "1.19.7", None)),
        ({"path": "/opt/charts/cilium"}, ChartRef("/opt/charts/cilium", "1.19.7", None)),
    ],
)  # fmt: skip
def test_air_gapped_chart_sources(source: dict[str, str], expected: ChartRef) -> None:
    config = parse_stack_config(production_config(cilium={"chart": {"source": source}}))
    assert config.cilium_settings is not None
    assert chart_ref(config.cilium_settings) == expected


def test_plain_kubernetes_gets_no_openshift_paths() -> None:
    config = parse_stack_config(production_config(cluster={"openshift": False}))
    values = helm_values(config)
    assert "cni" not in values
    assert "securityContext" not in values


def test_homelab_on_cilium_uses_k3s_pod_cidr_and_the_k3d_server_as_api() -> None:
    config = parse_stack_config(homelab_config(cni="cilium"))
    values = helm_values(config)
    assert values["k8sServiceHost"] == "k3d-aisp-homelab-server-0"
    assert values["k8sServicePort"] == 6443
    assert values["ipam"] == {"operator": {"clusterPoolIPv4PodCIDRList": ["10.42.0.0/16"]}}
    # 1 server + 2 agents: the chart's 2 operator replicas fit (one per node, anti-affinity).
    assert values["operator"] == {"prometheus": {"enabled": True}, "replicas": 2}


def test_a_single_node_homelab_runs_one_operator_replica() -> None:
    config = parse_stack_config(homelab_config(cni="cilium", cluster={"agents": 0}))
    assert helm_values(config)["operator"]["replicas"] == 1


def test_encryption_disabled_drops_the_type_and_the_profile_says_so() -> None:
    config = parse_stack_config(production_config(cilium={"encryption": "disabled"}))
    assert helm_values(config)["encryption"] == {"enabled": False}
    assert config.capabilities.encryption is None


def test_cert_manager_tls_names_the_issuer() -> None:
    config = parse_stack_config(
        production_config(
            cilium={"hubble": {"tlsMethod": "certmanager", "certManagerIssuer": "ca"}}
        )
    )
    assert helm_values(config)["hubble"]["tls"]["auto"] == {
        "enabled": True,
        "method": "certmanager",
        "certManagerIssuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "ca"},
    }


def test_l7_proxy_off_removes_l7_from_the_capability_profile() -> None:
    config = parse_stack_config(production_config(cilium={"l7Proxy": False}))
    assert helm_values(config)["l7Proxy"] is False
    assert config.capabilities.l7_policy is False


def test_hubble_ui_access_is_a_port_forward() -> None:
    assert hubble_ui_access(load_stack("production")) == {
        "service": "kube-system/hubble-ui",
        "portForward": "kubectl -n kube-system port-forward svc/hubble-ui 12000:80",
        "url": "http://localhost:12000",
    }
    assert hubble_ui_access(load_stack("homelab")) is None


VALUE_SHAPES = {
    "production": production_config(),
    "kubernetes": production_config(cluster={"openshift": False}),
    "homelab-cilium": homelab_config(cni="cilium"),
    "certmanager": production_config(
        cilium={"hubble": {"tlsMethod": "certmanager", "certManagerIssuer": "ca"}}
    ),
    "no-hubble": production_config(
        cilium={"hubble": {"enabled": False, "relay": False, "ui": False}}
    ),
}


@pytest.mark.parametrize("shape", sorted(VALUE_SHAPES))
def test_every_value_key_exists_in_the_chart_values_yaml(shape: str) -> None:
    values = helm_values(parse_stack_config(VALUE_SHAPES[shape]))
    assert unknown_value_keys(values, CILIUM_CHART_VERSION) == []


def test_the_key_check_catches_a_misspelt_key() -> None:
    values = {"hubble": {"relay": {"enable": True}}, "kubeProxyReplacement": True}
    assert unknown_value_keys(values, "1.15.0") == ["hubble.relay.enable"]


def test_free_form_maps_accept_any_sub_key() -> None:
    assert unknown_value_keys({"podAnnotations": {"example.com/team": "netsec"}}, "1.15.0") == []
