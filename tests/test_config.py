"""The stack config model: committed stacks, defaults, and every refused value."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from cnistack.config import (
    CILIUM_CHART_VERSION,
    ConfigError,
    ExistingCluster,
    K3dCluster,
    StackConfig,
    parse_stack_config,
)
from cnistack.stack_files import PROJECT_DIR, committed_stacks, load_stack
from tests.factories import homelab_config, production_config


def test_committed_stacks_are_homelab_and_production() -> None:
    assert committed_stacks() == ["homelab", "production"]


@pytest.mark.parametrize("stack", committed_stacks())
def test_every_committed_stack_file_validates(stack: str) -> None:
    assert isinstance(load_stack(stack), StackConfig)


def test_homelab_stack_is_k3d_flannel_one_server_two_agents() -> None:
    config = load_stack("homelab")
    assert config.cni == "flannel"
    assert config.cluster == K3dCluster(kind="k3d", name="aisp-homelab", servers=1, agents=2)
    assert config.cilium_settings is None
    assert config.protect_cluster_network is False


def test_production_stack_is_existing_openshift_with_cilium_1_19_6() -> None:
    config = load_stack("production")
    assert config.cni == "cilium"
    assert config.cluster == ExistingCluster(
        kind="existing",
        name="gtt-prod",
        openshift=True,
        context="gtt-prod",
        server="https://api.gtt-prod.internal:6443",
        deploy_kube_proxy=False,
    )
    settings = config.cilium_settings
    assert settings is not None
    assert settings.chart.version == CILIUM_CHART_VERSION == "1.19.7"
    assert settings.chart.source.repository == "https://helm.cilium.io/"
    assert (settings.k8s_service_host, settings.k8s_service_port) == ("api.gtt-prod.internal", 6443)
    assert settings.encryption == "wireguard"
    assert settings.hubble.tls_method == "cronJob"
    assert config.protect_cluster_network is True


def test_pulumi_yaml_declares_every_root_key_of_the_model() -> None:
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    declared = set(project["config"])
    model_keys = {field.alias or name for name, field in StackConfig.model_fields.items()}
    assert declared == model_keys
    # What must be chosen per environment has no default, so the engine asks for it too.
    assert "default" not in project["config"]["cni"]
    assert "default" not in project["config"]["cluster"]
    assert "--secret" in project["config"]["kubeconfig"]["description"]


def test_engine_encoding_of_scalars_and_objects_is_accepted() -> None:
    # The engine passes every value as a string, objects as JSON.
    config = parse_stack_config(
        {"cni": "flannel", "cluster": '{"kind": "k3d", "servers": "3"}', "cilium": "{}"}
    )
    assert isinstance(config.cluster, K3dCluster)
    assert config.cluster.servers == 3


BAD_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown cni",
        homelab_config(cni="calico"),
        "aisp-cni:cni: Input should be 'flannel' or 'cilium' (got 'calico')",
    ),
    (
        "unknown cluster kind",
        homelab_config(cluster={"kind": "kind"}),
        "aisp-cni:cluster: Input tag 'kind' found using 'kind' does not match any of the "
        "expected tags: 'k3d', 'existing'",
    ),
    (
        "zero servers",
        homelab_config(cluster={"servers": 0}),
        "aisp-cni:cluster.servers: Input should be greater than or equal to 1 (got 0)",
    ),
    (
        "malformed pod CIDR",
        homelab_config(cluster={"podCidr": "10.42.0.0/33"}),
        "aisp-cni:cluster.podCidr: not an IPv4 CIDR ('33' is not a valid netmask)"
        " (got '10.42.0.0/33')",
    ),
    (
        "cilium settings on a flannel stack",
        homelab_config(cilium={"encryption": "wireguard"}),
        "aisp-cni:cilium: cilium settings on a flannel stack: remove them or set cni: cilium",
    ),
    (
        "kube-proxy replacement without API server host",
        production_config(cilium={"k8sServiceHost": None}),
        "aisp-cni:cilium.k8sServiceHost: kube-proxy replacement needs the API server's host and "
        "port (missing k8sServiceHost)",
    ),
    (
        "kube-proxy replacement without API server port",
        production_config(cilium={"k8sServicePort": None}),
        "aisp-cni:cilium.k8sServicePort: kube-proxy replacement needs the API server's host and "
        "port (missing k8sServicePort)",
    ),
    (
        "chart version range",
        production_config(cilium={"chart": {"version": "^1.15"}}),
        "aisp-cni:cilium.chart.version: chart version must be an exact pin such as '1.19.7', "
        "not a range or tag (got '^1.15')",
    ),
    (
        "chart version tag",
        production_config(cilium={"chart": {"version": "latest"}}),
        "aisp-cni:cilium.chart.version: chart version must be an exact pin",
    ),
    (
        "typo at the root",
        homelab_config(clsuter={"kind": "k3d"}),
        "aisp-cni:clsuter: unknown key; did you mean 'cluster'?",
    ),
    (
        "typo in a section",
        production_config(cilium={"encyrption": "wireguard"}),
        "aisp-cni:cilium.encyrption: unknown key",
    ),
    (
        "hubble helm TLS method",
        production_config(cilium={"hubble": {"tlsMethod": "helm"}}),
        "aisp-cni:cilium.hubble.tlsMethod: Input should be 'cronJob' or 'certmanager' (got 'helm')",
    ),
    (
        "hubble UI without relay",
        production_config(cilium={"hubble": {"relay": False}}),
        "aisp-cni:cilium.hubble: Hubble UI reads flows from Hubble Relay: set relay: true",
    ),
    (
        "unknown encryption",
        production_config(cilium={"encryption": "ipsec"}),
        "aisp-cni:cilium.encryption: Input should be 'wireguard' or 'disabled' (got 'ipsec')",
    ),
    (
        "two chart sources",
        production_config(cilium={"chart": {"source": {"oci": "oci://r/c", "path": "/c"}}}),
        "aisp-cni:cilium.chart.source: set exactly one of repository, oci, path (got oci, path)",
    ),
    (
        "missing cni",
        {"cluster": {"kind": "k3d"}},
        "aisp-cni:cni: required, no default (it must be chosen per environment)",
    ),
    (
        "kubeconfig on k3d",
        homelab_config(kubeconfig="apiVersion: v1"),
        "aisp-cni:kubeconfig: a k3d cluster writes its own kubeconfig: remove the key",
    ),
]


@pytest.mark.parametrize(
    ("raw", "message"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_config_is_refused_with_the_key_named(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw)
    assert message in str(caught.value)


def test_a_secret_kubeconfig_is_never_printed_in_errors() -> None:
    raw = production_config(kubeconfig=12345)
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw)
    assert "aisp-cni:kubeconfig: Input should be a valid string (got <secret>)" in str(caught.value)
    assert "12345" not in str(caught.value)


def test_every_error_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(homelab_config(cni="weave", cluster={"agents": -1}))
    message = str(caught.value)
    assert "aisp-cni:cni:" in message
    assert "aisp-cni:cluster.agents: Input should be greater than or equal to 0 (got -1)" in message


def test_a_plain_text_kubeconfig_is_refused_when_the_engine_says_what_is_secret() -> None:
    raw = production_config(kubeconfig="apiVersion: v1")
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw, secret_keys=set())
    assert (
        "aisp-cni:kubeconfig: stored in plain text; set it with "
        "`pulumi config set --secret aisp-cni:kubeconfig`"
    ) in str(caught.value)
    assert parse_stack_config(raw, secret_keys={"kubeconfig"}).kubeconfig is not None
