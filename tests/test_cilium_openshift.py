"""Cilium on OpenShift: install method, CiliumConfig, OpenShift values, SCCs, exporter, audit
mode, each against the chart's keys of the version it installs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tests.conftest
from cnistack.chart_keys import unknown_value_keys
from cnistack.cilium import helm_values, hubble_ui_access
from cnistack.cilium_upgrade import ClusterFacts
from cnistack.config import ConfigError, parse_stack_config
from cnistack.openshift import cilium_config, preview_warnings, scc_manifests
from tests.conftest import USER_KUBECONFIG, run_program
from tests.factories import PRODUCTION_VALUES, homelab_config, production_config

# The certified operator's newest bundle is cilium.v1.15.1 (cnistack/data/olm-for-cilium.yaml).
OLM = production_config(cilium={"installMethod": "olm", "chart": {"version": "1.15.0"}})
# What the same stack gets at 1.15.0: upgradeCompatibility of a 1.15 install, and the exporter's
# rotation outside `static` (the 1.15 chart's only place for it).
VALUES_1_15_0: dict[str, Any] = {
    **PRODUCTION_VALUES,
    "upgradeCompatibility": "1.15",
    "hubble": {
        **PRODUCTION_VALUES["hubble"],
        "export": {
            "fileMaxSizeMb": 50,
            "fileMaxBackups": 10,
            "static": {
                key: value
                for key, value in PRODUCTION_VALUES["hubble"]["export"]["static"].items()
                if key not in ("fileMaxSizeMb", "fileMaxBackups")
            },
        },
    },
}


def test_olm_renders_the_same_values_into_a_ciliumconfig_in_namespace_cilium() -> None:
    # olm-for-cilium cluster-network-03-cilium-ciliumconfigs-crd.yaml: cilium.io, v1alpha1,
    # CiliumConfig, Namespaced; cluster-network-07: object cilium/cilium.
    assert cilium_config(parse_stack_config(OLM)) == {
        "apiVersion": "cilium.io/v1alpha1",
        "kind": "CiliumConfig",
        "metadata": {"name": "cilium", "namespace": "cilium"},
        "spec": VALUES_1_15_0,
    }


def test_helm_and_olm_carry_identical_values() -> None:
    assert helm_values(parse_stack_config(OLM)) == helm_values(
        parse_stack_config(production_config(cilium={"chart": {"version": "1.15.0"}}))
    )


def test_olm_is_refused_for_a_version_the_operator_does_not_ship() -> None:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(production_config(cilium={"installMethod": "olm"}))
    assert str(err.value) == (
        "invalid stack config:\n  aisp-cni:cilium.installMethod: the certified OLM operator does "
        "not ship Cilium 1.19.7: its bundles stop at 1.15.1 (isovalent/olm-for-cilium "
        "manifests/; #100: its maintainers point to Helm; cilium/cilium#38885). Set "
        "installMethod: helm: the SCC bindings, the Multus settings and the clusterNetwork IPAM "
        "are rendered the same (docs/openshift.md)"
    )


def test_olm_without_openshift_is_refused() -> None:
    raw = production_config(cluster={"openshift": False}, cilium={"installMethod": "olm"})
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    assert str(err.value) == (
        "invalid stack config:\n  aisp-cni:cilium.installMethod: olm installs through "
        "OpenShift's Operator Lifecycle Manager: set cluster.openshift: true or installMethod: helm"
    )


def test_kube_proxy_replacement_on_openshift_needs_deploy_kube_proxy_false() -> None:
    raw = production_config(cluster={"deployKubeProxy": None})
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    assert str(err.value) == (
        "invalid stack config:\n  aisp-cni:cluster.deployKubeProxy: kube-proxy replacement on "
        "OpenShift needs kube-proxy off in the cluster network operator "
        "(networks.operator.openshift.io/cluster spec.deployKubeProxy: false); turn it off "
        "there, then declare deployKubeProxy: false here, or set "
        "cilium.kubeProxyReplacement: false"
    )
    # Without kube-proxy replacement, kube-proxy may stay.
    parse_stack_config(
        production_config(cluster={"deployKubeProxy": None}, cilium={"kubeProxyReplacement": False})
    )


def test_a_custom_cluster_network_becomes_the_ipam_pool() -> None:
    config = parse_stack_config(
        production_config(cluster={"clusterNetwork": {"cidr": "10.200.0.0/16", "hostPrefix": 24}})
    )
    assert helm_values(config)["ipam"] == {
        "mode": "cluster-pool",
        "operator": {
            "clusterPoolIPv4PodCIDRList": ["10.200.0.0/16"],
            "clusterPoolIPv4MaskSize": 24,
        },
    }


def test_a_cluster_network_with_a_too_wide_host_prefix_is_refused() -> None:
    raw = production_config(cluster={"clusterNetwork": {"cidr": "10.200.0.0/16", "hostPrefix": 8}})
    with pytest.raises(ConfigError, match=r"hostPrefix /8 is wider than cidr 10\.200\.0\.0/16"):
        parse_stack_config(raw)


def test_plain_kubernetes_keeps_the_chart_cni_and_ipam_defaults() -> None:
    values = helm_values(parse_stack_config(production_config(cluster={"openshift": False})))
    assert "ipam" not in values
    assert "cni" not in values


@pytest.mark.parametrize("method", ["helm", "olm"])
def test_sccs_bind_privileged_to_the_agent_and_operator_accounts(method: str) -> None:
    config = parse_stack_config(
        production_config(cilium={"installMethod": method, "chart": {"version": "1.15.0"}})
    )
    namespace = {"helm": "kube-system", "olm": "cilium"}[method]
    labels = {"app.kubernetes.io/managed-by": "cnistack"}
    assert scc_manifests(config) == [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "cilium-scc-privileged", "labels": labels},
            "rules": [
                {
                    "apiGroups": ["security.openshift.io"],
                    "resources": ["securitycontextconstraints"],
                    "resourceNames": ["privileged"],
                    "verbs": ["use"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "cilium-scc-privileged", "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cilium-scc-privileged",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": "cilium", "namespace": namespace},
                {"kind": "ServiceAccount", "name": "cilium-operator", "namespace": namespace},
                # The preflight check of a minor step (host network, hostPath).
                {"kind": "ServiceAccount", "name": "cilium-pre-flight", "namespace": namespace},
            ],
        },
    ]


def test_no_sccs_off_openshift() -> None:
    assert scc_manifests(parse_stack_config(production_config(cluster={"openshift": False}))) == []


def test_hubble_ui_follows_the_install_namespace() -> None:
    access = hubble_ui_access(parse_stack_config(OLM))
    assert access is not None
    assert access["portForward"] == "kubectl -n cilium port-forward svc/hubble-ui 12000:80"


def test_preview_warnings_name_what_the_program_cannot_check() -> None:
    assert preview_warnings(parse_stack_config(OLM)) == [
        "kube-proxy replacement: make sure the cluster network operator runs without kube-proxy "
        "(oc get networks.operator.openshift.io cluster -o jsonpath='{.spec.deployKubeProxy}' "
        "prints false); the stack declares cluster.deployKubeProxy: false",
        "installMethod olm: the CiliumConfig configures the operator installed with the cluster "
        "(networkType: Cilium); its chart version is the operator's, not cilium.chart.version",
    ]


def test_audit_mode_service_monitors_and_a_custom_exporter() -> None:
    config = parse_stack_config(
        production_config(
            cilium={
                "policyAuditMode": True,
                "serviceMonitors": True,
                "export": {
                    "filePath": "/var/log/cilium/flows.log",
                    "fieldMask": ["time", "source", "destination", "verdict"],
                    "allowList": ['{"verdict":["DROPPED"]}'],
                    "denyList": ['{"source_pod":["kube-system/"]}'],
                    "fileMaxSizeMb": 100,
                    "fileMaxBackups": 3,
                },
            }
        )
    )
    values = helm_values(config)
    assert values["policyAuditMode"] is True
    assert values["prometheus"] == {"enabled": True, "serviceMonitor": {"enabled": True}}
    assert values["operator"] == {
        "prometheus": {"enabled": True, "serviceMonitor": {"enabled": True}}
    }
    assert values["hubble"]["metrics"]["serviceMonitor"] == {"enabled": True}
    assert values["hubble"]["export"] == {
        "static": {
            "fileMaxSizeMb": 100,
            "fileMaxBackups": 3,
            "enabled": True,
            "filePath": "/var/log/cilium/flows.log",
            "fieldMask": ["time", "source", "destination", "verdict"],
            "allowList": ['{"verdict":["DROPPED"]}'],
            "denyList": ['{"source_pod":["kube-system/"]}'],
        },
    }


@pytest.mark.parametrize(
    ("export", "message"),
    [
        ({"allowList": ["verdict=DROPPED"]},
         "aisp-cni:cilium.export.allowList: filter 'verdict=DROPPED' is not JSON"),
        ({"denyList": ["{}"]},
         "aisp-cni:cilium.export.denyList: filter '{}' must be a non-empty JSON object"),
        ({"filePath": "events.log"},
         "aisp-cni:cilium.export.filePath: must be an absolute path on the node"),
        ({"fileMaxBackups": 0},
         "aisp-cni:cilium.export.fileMaxBackups: Input should be greater than or equal to 1"),
    ],
)  # fmt: skip
def test_bad_exporter_settings_are_refused_by_key(export: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(production_config(cilium={"export": export}))
    assert message in str(err.value)


def test_exporter_off_sets_no_export_values() -> None:
    values = helm_values(
        parse_stack_config(production_config(cilium={"export": {"enabled": False}}))
    )
    assert "export" not in values["hubble"]


SHAPES = {
    "olm": OLM,
    "audit-monitors": production_config(cilium={"policyAuditMode": True, "serviceMonitors": True}),
    "custom-network": production_config(
        cluster={"clusterNetwork": {"cidr": "10.200.0.0/16", "hostPrefix": 24}}
    ),
    "homelab-cilium-monitors": homelab_config(cni="cilium", cilium={"serviceMonitors": True}),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_new_value_key_exists_in_the_chart_it_installs(shape: str) -> None:
    config = parse_stack_config(SHAPES[shape])
    assert config.cilium_settings is not None
    version = config.cilium_settings.chart.version
    assert unknown_value_keys(helm_values(config), version) == []


def test_policy_audit_mode_is_a_template_key_not_a_values_yaml_key() -> None:
    # values.yaml has only `# policyAuditMode: false`; templates/cilium-configmap.yaml reads it
    # with hasKey. Without the template-derived keys, the check would reject it.
    assert unknown_value_keys({"policyAuditMode": True}, "1.15.0") == []
    assert unknown_value_keys({"policyAuditModeX": True}, "1.15.0") == ["policyAuditModeX"]


CILIUM_CONFIG_PATCH = "kubernetes:cilium.io/v1alpha1:CiliumConfigPatch"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
CLUSTER_ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"


def cni_child(type_: str, name: str) -> str:
    return f"urn:pulumi:production::aisp-cni::aisp-cni:index:Cni${type_}::{name}"


def test_program_with_olm_patches_the_ciliumconfig_and_installs_no_release(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An OpenShift the 1.15 operator runs on: 4.16, Kubernetes 1.29 (inside 1.15's 1.26-1.29).
    monkeypatch.setattr(tests.conftest, "CLUSTER_FACTS_DOUBLE", ClusterFacts("v1.29.14"))
    run = run_program("production", {"cilium": OLM["cilium"]})
    assert run.of_type("kubernetes:helm.sh/v3:Release") == []
    patch = run.one(CILIUM_CONFIG_PATCH)
    assert patch.inputs["apiVersion"] == "cilium.io/v1alpha1"
    assert patch.inputs["kind"] == "CiliumConfig"
    assert patch.inputs["metadata"] == {"name": "cilium", "namespace": "cilium"}
    assert patch.inputs["spec"] == VALUES_1_15_0
    assert patch.options["protect"] is True
    binding = run.one(CLUSTER_ROLE_BINDING)
    assert binding.inputs["subjects"][0] == {
        "kind": "ServiceAccount",
        "name": "cilium",
        "namespace": "cilium",
    }
    assert cni_child(CLUSTER_ROLE_BINDING, "cni-scc-binding") in patch.options["dependencies"]
    cnps = run.of_type("kubernetes:cilium.io/v2:CiliumNetworkPolicy")
    assert len(cnps) == 4
    for cnp in cnps:
        assert cni_child(CILIUM_CONFIG_PATCH, "cni-ciliumconfig") in cnp.options["dependencies"]


def test_program_with_helm_binds_the_sccs_before_the_release() -> None:
    run = run_program("production", {"kubeconfig": USER_KUBECONFIG.read_text()})
    release = run.one("kubernetes:helm.sh/v3:Release")
    role = run.one(CLUSTER_ROLE)
    assert role.inputs["rules"][0]["resourceNames"] == ["privileged"]
    assert role.options["protect"] is True
    assert cni_child(CLUSTER_ROLE, "cni-scc-role") in release.options["dependencies"]


def test_ciliumconfig_matches_the_crd_derived_from_olm_for_cilium() -> None:
    # tests/data/ciliumconfigs.cilium.io.json comes from scripts/derive_ciliumconfig_crd.py over
    # olm-for-cilium's cluster-network-03-cilium-ciliumconfigs-crd.yaml (v1.15.1 bundle).
    crd = json.loads((Path(__file__).parent / "data" / "ciliumconfigs.cilium.io.json").read_text())
    manifest = cilium_config(parse_stack_config(OLM))
    (version,) = crd["spec"]["versions"]
    assert manifest["apiVersion"] == f"{crd['spec']['group']}/{version['name']}"
    assert manifest["kind"] == crd["spec"]["names"]["kind"]
    assert crd["spec"]["scope"] == "Namespaced" and manifest["metadata"]["namespace"] == "cilium"
    spec_schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec_schema == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def test_derive_ciliumconfig_crd_refuses_another_crd(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parent.parent / "scripts" / "derive_ciliumconfig_crd.py"
    other = tmp_path / "crd.yaml"
    other.write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata: {name: ciliumnetworkpolicies.cilium.io}\nspec: {}\n"
    )
    done = subprocess.run(
        [sys.executable, str(script), str(other), str(tmp_path / "out.json")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        "derive_ciliumconfig_crd: crd.yaml: not the ciliumconfigs.cilium.io "
        "CustomResourceDefinition\n"
    )


def test_derive_template_keys_reads_values_paths_and_haskey_lookups(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parent.parent / "scripts" / "derive_template_keys.py"
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("name: cilium\nversion: 1.15.0\n")
    (chart / "templates" / "cm.yaml").write_text(
        '{{- if hasKey .Values "policyAuditMode" }}\n'
        "  audit: {{ .Values.policyAuditMode | quote }}\n{{- end }}\n"
        "  path: {{ .Values.hubble.export.static.filePath }}\n"
        '{{- if hasKey .Values.hubble "peerService" }}{{- end }}\n'
    )
    out = tmp_path / "keys.json"
    done = subprocess.run(
        [sys.executable, str(script), str(chart), str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["keys"] == [
        "hubble",
        "hubble.export",
        "hubble.export.static",
        "hubble.export.static.filePath",
        "hubble.peerService",
        "policyAuditMode",
    ]
