"""Each component alone, under mocks, with only the args it is given."""

from __future__ import annotations

import pulumi_kubernetes as k8s
from pydantic import SecretStr

from cnistack.capabilities import FLANNEL_WITH_KUBE_ROUTER
from cnistack.config import ExistingCluster, parse_stack_config
from cnistack.netpol.renderer import render_policies
from components import Cluster, ClusterArgs, Cni, CniArgs, NetworkPolicySet, NetworkPolicySetArgs
from tests.conftest import run_under_mocks, secret
from tests.factories import homelab_config, production_config


def test_flannel_cni_installs_nothing_and_exposes_the_kube_router_profile() -> None:
    config = parse_stack_config(homelab_config())
    made: dict[str, Cni] = {}

    def body() -> None:
        made["cni"] = Cni("cni", CniArgs(config=config, provider=k8s.Provider("k8s")))

    run = run_under_mocks("homelab", body)
    # Registration order is asynchronous: compare as a set.
    assert {r.type for r in run.registrations} == {
        "pulumi:providers:kubernetes",
        "aisp-cni:index:Cni",
    }
    assert made["cni"].capabilities == FLANNEL_WITH_KUBE_ROUTER
    assert made["cni"].release is None


def test_cilium_cni_is_one_release_parented_to_the_component() -> None:
    config = parse_stack_config(production_config())
    run = run_under_mocks(
        "production", lambda: {"cni": Cni("cni", CniArgs(config, k8s.Provider("k8s")))}
    )
    release = run.one("kubernetes:helm.sh/v3:Release")
    assert release.name == "cni-cilium"
    assert release.options["parent"].endswith("aisp-cni:index:Cni::cni")
    assert run.namespace["cni"].capabilities.l7_policy is True


def test_existing_cluster_provider_gets_the_context_and_the_secret_kubeconfig() -> None:
    cluster = ExistingCluster(kind="existing", name="gtt-prod", context="gtt-admin")
    args = ClusterArgs(cluster, cni="cilium", kube_proxy_replacement=True,
                       kubeconfig=SecretStr("apiVersion: v1"))  # fmt: skip
    run = run_under_mocks("production", lambda: {"cluster": Cluster("cluster", args)})
    provider = run.one("pulumi:providers:kubernetes")
    assert provider.inputs["context"] == "gtt-admin"
    assert provider.inputs["kubeconfig"] == secret("apiVersion: v1")
    assert run.of_type("command:local:Command") == []


def test_network_policy_set_applies_each_manifest_in_its_namespace() -> None:
    config = parse_stack_config(homelab_config())
    rendered = render_policies(config.network_policy, FLANNEL_WITH_KUBE_ROUTER, config.flavour)

    def body() -> None:
        NetworkPolicySet("platform", NetworkPolicySetArgs(rendered, k8s.Provider("k8s")))

    run = run_under_mocks("homelab", body)
    applied = [r for r in run.registrations if r.type.startswith("kubernetes:")]
    assert len(applied) == len(rendered.manifests)
    policy = run.named("platform-np-storage-default-deny")
    assert policy.inputs["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    namespace_urn = (
        "urn:pulumi:homelab::aisp-cni::aisp-cni:index:NetworkPolicySet"
        "$kubernetes:core/v1:Namespace::platform-ns-storage"
    )
    # Its namespace, and every allow of the namespace first (tests/test_policy_order.py).
    policy_urn = (
        "urn:pulumi:homelab::aisp-cni::aisp-cni:index:NetworkPolicySet"
        "$kubernetes:networking.k8s.io/v1:NetworkPolicy::platform-np-storage-"
    )
    assert sorted(policy.options["dependencies"]) == [
        namespace_urn,
        policy_urn + "ai-apps-to-postgresql-ingress",
        policy_urn + "allow-dns",
    ]
