"""The program end to end under Pulumi mocks, for each committed stack and its variants."""

from __future__ import annotations

import runpy

import pytest

from cnistack.config import ConfigError
from tests.conftest import (
    FAKE_KUBECONFIG,
    ROOT,
    USER_KUBECONFIG,
    resolve,
    run_program,
    run_under_mocks,
    secret,
)
from tests.factories import HOMELAB_CREATE, PRODUCTION_VALUES

RELEASE = "kubernetes:helm.sh/v3:Release"
# A kubeconfig whose context gtt-prod points at the server Pulumi.production.yaml declares.
PROD_KUBECONFIG = USER_KUBECONFIG.read_text()
COMMAND = "command:local:Command"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
CNP = "kubernetes:cilium.io/v2:CiliumNetworkPolicy"
NAMESPACE = "kubernetes:core/v1:Namespace"
PROVIDER = "pulumi:providers:kubernetes"


def test_homelab_creates_k3d_with_flannel_defaults_and_replaces_on_change() -> None:
    run = run_program("homelab")
    k3d = run.named("cluster-k3d")
    assert k3d.inputs["create"] == HOMELAB_CREATE
    assert k3d.inputs["delete"] == "k3d cluster delete aisp-homelab"
    assert "create" in k3d.options["replaceOnChanges"]
    assert k3d.options["deleteBeforeReplace"] is True
    assert run.of_type(RELEASE) == []


def test_homelab_kubeconfig_is_read_back_as_a_secret_and_feeds_the_provider() -> None:
    run = run_program("homelab")
    reader = run.named("cluster-kubeconfig")
    assert reader.inputs["create"] == "k3d kubeconfig get aisp-homelab"
    assert reader.inputs["logging"] == "none"
    assert reader.options["additionalSecretOutputs"] == ["stdout"]
    assert run.one(PROVIDER).inputs["kubeconfig"] == secret(FAKE_KUBECONFIG)
    assert resolve(run.exports["kubeconfig"]) == (FAKE_KUBECONFIG, True)


def test_homelab_exports_profile_and_the_two_l7_widenings() -> None:
    run = run_program("homelab")
    assert resolve(run.exports["clusterName"]) == ("aisp-homelab", False)
    assert run.exports["cni"] == "flannel"
    assert run.exports["capabilities"] == {
        "cni": "flannel",
        "policy_enforcer": "kube-router",
        "l3_l4_network_policy": True,
        "l7_policy": False,
        "encryption": None,
        "flow_observability": False,
        "host_entities": False,
    }
    assert run.exports["hubbleUi"] is None
    widened = {(gap["namespace"], gap["workload"], gap["port"]) for gap in run.exports["fidelity"]}
    assert widened == {("ai-apps", "api-server", 8080), ("ai-inference", "vllm", 8001)}
    assert len(run.warnings) == 2
    assert any("GET /api/v1/models" in warning for warning in run.warnings)
    assert run.of_type(CNP) == []


def test_production_installs_cilium_1_19_6_protected_with_the_adr_values() -> None:
    run = run_program("production", {"kubeconfig": PROD_KUBECONFIG})
    release = run.one(RELEASE)
    assert release.inputs["chart"] == "cilium"
    assert release.inputs["version"] == "1.19.7"
    # Never Helm's --reuse-values (upstream forbids it across minors): the whole value set.
    assert release.inputs["reuseValues"] is False
    assert release.inputs["namespace"] == "kube-system"
    assert release.inputs["name"] == "cilium"
    assert release.inputs["repositoryOpts"] == {"repo": "https://helm.cilium.io/"}
    assert release.inputs["values"] == PRODUCTION_VALUES
    # Helm's wait is replaced by the rollout gate (components/cni_rollout.py); its timeout then
    # bounds the chart's hooks, as long as the gate bounds the rollout.
    assert release.inputs["skipAwait"] is True
    assert release.inputs["timeout"] == 900
    # Before Helm runs: a revision left pending by a killed `up` is reported with the way out
    # (components/cni_rollout.py, helm_pending_hook), not as Helm's "another operation".
    assert release.options["hooks"] == {
        "before_create": ["cni-helm-pending"],
        "before_update": ["cni-helm-pending"],
    }
    assert release.options["protect"] is True
    assert run.of_type(COMMAND) == []
    # Read back by the next run: what was deployed, and the version first installed.
    assert run.exports["ciliumInstall"] == {
        "version": "1.19.7",
        "firstInstalled": "1.19.7",
        "preflight": None,
    }


def test_production_uses_the_secret_kubeconfig_and_protects_the_policies() -> None:
    run = run_program("production", {"kubeconfig": PROD_KUBECONFIG})
    assert run.one(PROVIDER).inputs["kubeconfig"] == secret(PROD_KUBECONFIG)
    assert resolve(run.exports["kubeconfig"]) == (PROD_KUBECONFIG, True)
    assert all(r.options["protect"] for r in run.of_type(NETWORK_POLICY) + run.of_type(CNP))


def test_production_refuses_a_kubeconfig_not_stored_as_a_secret() -> None:
    run = run_under_mocks(
        "production",
        lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
        {"kubeconfig": "apiVersion: v1"},
        secret_keys=[],
    )
    assert isinstance(run.error, ConfigError)
    assert "aisp-cni:kubeconfig: stored in plain text" in str(run.error)
    assert run.registrations == []


def test_production_without_kubeconfig_secret_uses_the_declared_context() -> None:
    # The user's own kubeconfig ($KUBECONFIG, whose current context is the homelab), but the
    # context the stack declares, never the current one.
    run = run_program("production")
    assert run.one(PROVIDER).inputs["context"] == "gtt-prod"
    assert run.exports["kubeconfig"] is None


def test_production_applies_the_two_adr_l7_policies_after_cilium() -> None:
    run = run_program("production")
    cnps = {
        (r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r
        for r in run.of_type(CNP)
    }
    assert set(cnps) == {
        ("ai-apps", "frontend-reads-api-ingress"),
        ("ai-inference", "webui-generates-ingress"),
        # The host-network router, admitted as Cilium's host/remote-node entities.
        ("ai-apps", "router-to-frontend-ingress"),
        ("ai-inference", "router-to-open-webui-ingress"),
    }
    release_urn = (
        "urn:pulumi:production::aisp-cni::aisp-cni:index:Cni"
        "$kubernetes:helm.sh/v3:Release::cni-cilium"
    )
    receipt_urn = (
        "urn:pulumi:production::aisp-cni::aisp-cni:index:CniRollout"
        "$kubernetes:core/v1:ConfigMap::cni-rollout-receipt"
    )
    # Not after Helm returns: after the rollout gate's receipt (components/cni_rollout.py), which
    # comes after the release and is written by a hook that waits for the rollout.
    for cnp in cnps.values():
        assert receipt_urn in cnp.options["dependencies"]
        assert release_urn not in cnp.options["dependencies"]
    receipt = run.named("cni-rollout-receipt")
    assert receipt.options["dependencies"] == [release_urn]
    assert receipt.options["hooks"] == {
        "before_create": ["cni-rollout-wait"],
        "before_update": ["cni-rollout-wait"],
    }
    # The release is protected; its receipt is not: each upgrade replaces it (a ConfigMap's new
    # data is a replacement in the Kubernetes provider), which `protect` would refuse.
    assert (run.named("cni-cilium").options["protect"], receipt.options["protect"]) == (True, False)
    api = cnps[("ai-apps", "frontend-reads-api-ingress")].inputs["spec"]
    assert api["ingress"][0]["toPorts"][0]["rules"]["http"] == [
        {"method": "^GET$", "path": "^/api/v1/models$"},
        {"method": "^GET$", "path": "^/api/v1/health$"},
    ]
    assert run.exports["fidelity"] == []
    # No fidelity gap; the one warning is the precondition the program cannot check itself.
    assert run.warnings == [
        "kube-proxy replacement: make sure the cluster network operator runs without "
        "kube-proxy (oc get networks.operator.openshift.io cluster -o "
        "jsonpath='{.spec.deployKubeProxy}' prints false); the stack declares "
        "cluster.deployKubeProxy: false"
    ]


def test_production_exports_the_hubble_ui_port_forward() -> None:
    run = run_program("production")
    assert run.exports["hubbleUi"]["portForward"] == (
        "kubectl -n kube-system port-forward svc/hubble-ui 12000:80"
    )
    assert run.exports["capabilities"]["encryption"] == "wireguard"


def test_switching_homelab_to_cilium_changes_the_create_command_so_k3d_is_replaced() -> None:
    flannel = run_program("homelab").named("cluster-k3d")
    cilium = run_program("homelab", {"cni": "cilium"}).named("cluster-k3d")
    assert cilium.inputs["create"] != flannel.inputs["create"]
    assert "--flannel-backend=none@server:*" in cilium.inputs["create"]
    # The engine replaces (delete first) instead of updating in place.
    assert "create" in cilium.options["replaceOnChanges"]
    assert cilium.options["deleteBeforeReplace"] is True


def test_homelab_on_cilium_installs_an_unprotected_release_with_k3d_values() -> None:
    run = run_program("homelab", {"cni": "cilium"})
    release = run.one(RELEASE)
    assert release.options["protect"] is False
    assert release.inputs["values"]["k8sServiceHost"] == "k3d-aisp-homelab-server-0"
    assert len(run.of_type(CNP)) == 2
    assert run.exports["fidelity"] == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cni": "calico"}, "aisp-cni:cni: Input should be 'flannel' or 'cilium' (got 'calico')"),
        ({"cluster": {"kind": "k3d", "servers": 0}}, "aisp-cni:cluster.servers"),
        ({"cilium": {"encryption": "wireguard"}}, "cilium settings on a flannel stack"),
        (
            {"cluster": {"kind": "k3d", "agent": 2}},
            "aisp-cni:cluster.agent: unknown key; did you mean 'agents'?",
        ),
        # The checks that need rendering (cnistack/stack_checks.py) also stop it before any
        # resource: a chart key 1.15.0 does not have, a policy K3s + kube-router cannot enforce.
        (
            {"cni": "cilium", "cilium": {"extraValues": {"routingMod": "x"}}},
            "aisp-cni:cilium.extraValues.routingMod: not a value of the cilium chart 1.19.7; "
            "did you mean 'routingMode'?",
        ),
        (
            {
                "networkPolicy": {
                    "extends": "default",
                    "drop": {"flows": ["router-to-open-webui"]},
                    "add": {
                        "flows": [
                            {
                                "name": "router-to-open-webui",
                                "from": {"hostNetwork": "openshift-ingress"},
                                "to": "ai-inference/open-webui",
                                "ports": [{"port": 8080, "protocol": "TCP"}],
                            }
                        ]
                    },
                }
            },
            "aisp-cni:networkPolicy: flow 'router-to-open-webui': a hostNetwork source needs",
        ),
    ],
)
def test_bad_config_stops_the_program_before_any_resource(
    overrides: dict[str, object], message: str
) -> None:
    run = run_under_mocks(
        "homelab",
        lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
        overrides,
    )
    assert isinstance(run.error, ConfigError)
    assert message in str(run.error)
    assert run.registrations == []
