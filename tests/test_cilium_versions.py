"""Supported versions: the upgrade path from ADR-013's 1.15.0, the Kubernetes matrix, the chart
data of every version on the path, and the version deployed read from the stack's state or the
cluster's Helm release."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import tests.conftest
from cnistack import cilium_versions
from cnistack.chart_keys import unknown_value_keys
from cnistack.cilium import helm_values, preflight_values
from cnistack.cilium_upgrade import (
    ClusterFacts,
    HelmRevision,
    UpgradeError,
    deployed_from_cluster,
    plan_upgrade,
    revisions_from_secrets,
)
from cnistack.config import ConfigError, parse_stack_config
from tests.conftest import run_program
from tests.factories import homelab_config, production_config

ROOT = Path(__file__).resolve().parent.parent
PATH = ["1.15.0", "1.15.19", "1.16.19", "1.17.17", "1.18.11", "1.19.7"]
RELEASE = "kubernetes:helm.sh/v3:Release"


def toolchain_pins() -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts/toolchain.sh"), "--print-versions"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return dict(line.split("=", 1) for line in out.splitlines())


# --- the data ------------------------------------------------------------------------------------


def test_the_path_is_the_hand_written_steps_then_the_toolchain_pin() -> None:
    steps = yaml.safe_load((ROOT / "cnistack/data/cilium-upgrade-path.yaml").read_text())
    pins = toolchain_pins()
    assert pins["CILIUM_V"] == "v1.19.7"
    assert [steps["from"], *steps["steps"]] == pins["CILIUM_PATH"].split()
    # The derived data was written from exactly that path and pin (re-run the derive script
    # after changing either).
    assert cilium_versions.upgrade_path() == tuple(PATH)
    assert cilium_versions.default_version() == "1.19.7"


@pytest.mark.parametrize("version", PATH)
def test_every_version_on_the_path_has_its_chart_and_crd_data(version: str) -> None:
    data = ROOT / "cnistack/data/cilium" / version
    assert json.loads((data / "values-keys.json").read_text())["source"] == (
        f"cilium chart values.yaml ({version})"
    )
    crds = sorted(p.name for p in (data / "crds").iterdir())
    assert crds == [
        "ciliumcidrgroups.json",
        "ciliumclusterwidenetworkpolicies.json",
        "ciliumnetworkpolicies.json",
        "ciliumnodeconfigs.json",
    ]
    cnp = json.loads((data / "crds/ciliumnetworkpolicies.json").read_text())
    assert cnp["x-cnistack-source"]["ciliumVersion"] == version
    assert cnp["x-cnistack-source"]["file"] == (
        f"github.com/cilium/cilium@v{version}/pkg/k8s/apis/cilium.io/client/crds/v2/"
        "ciliumnetworkpolicies.yaml"
    )


def test_crd_api_versions_move_along_the_path() -> None:
    # CiliumNodeConfig is stored as v2 from 1.16, CiliumCIDRGroup from 1.18 (each module's CRDs).
    stored = {
        v: tuple(
            cilium_versions.facts(v)["crds"][name]["storage"]
            for name in ("ciliumcidrgroups.cilium.io", "ciliumnodeconfigs.cilium.io")
        )
        for v in ("1.15.19", "1.16.19", "1.18.11")
    }
    assert stored == {
        "1.15.19": ("v2alpha1", "v2alpha1"),
        "1.16.19": ("v2alpha1", "v2"),
        "1.18.11": ("v2", "v2"),
    }


def test_the_kubernetes_matrix_comes_from_each_modules_compatibility_page() -> None:
    assert {v: cilium_versions.kubernetes_tested(v) for v in PATH} == {
        "1.15.0": ("1.26", "1.27", "1.28", "1.29"),
        "1.15.19": ("1.26", "1.27", "1.28", "1.29"),
        "1.16.19": ("1.27", "1.28", "1.29", "1.30"),
        "1.17.17": ("1.29", "1.30", "1.31", "1.32"),
        "1.18.11": ("1.30", "1.31", "1.32", "1.33"),
        "1.19.7": ("1.32", "1.33", "1.34", "1.35"),
    }
    # OpenShift pins its Kubernetes: 4.19 (1.32) to 4.22 (1.35) for the default.
    assert cilium_versions.openshift_releases("1.19.7") == ("4.19", "4.20", "4.21", "4.22")
    assert cilium_versions.openshift_releases("1.15.19") == ("4.16",)


def test_the_support_table_names_its_source_and_date() -> None:
    table = cilium_versions.support_table()
    assert table["asOf"] == "2026-12-07"
    assert "organization.rst" in table["source"]
    assert {line: entry["endOfLife"] for line, entry in table["lines"].items()} == {
        "1.15": "2025-07-29",
        "1.16": "2026-02-03",
        "1.17": "2026-07-29",
        "1.18": None,
        "1.19": None,
        "1.20": None,
    }
    assert cilium_versions.line_end_of_life("1.19.7") is None
    assert cilium_versions.line_end_of_life("1.15.0") == "2025-07-29"


def test_the_defaults_run_a_supported_kubernetes_the_production_cilium_supports() -> None:
    k3s = cilium_versions.k3s_image_kubernetes(
        parse_stack_config(homelab_config()).cluster.k3s_image  # type: ignore[union-attr]
    )
    control_plane = toolchain_pins()["K8S_V"]
    assert (k3s, control_plane) == ("1.35.8", "v1.35.8")
    for version in (k3s, control_plane):
        minor = cilium_versions.kubernetes_minor(version)
        assert minor in cilium_versions.kubernetes_tested("1.19.7")
        # Supported on the support table's date (kubernetes.io/releases).
        assert cilium_versions.kubernetes_end_of_life(minor) == "2027-02-28"


# --- the values per version ----------------------------------------------------------------------

SHAPES = {
    "production": production_config(),
    "kubernetes": production_config(cluster={"openshift": False}),
    "homelab-cilium": homelab_config(cni="cilium"),
}


@pytest.mark.parametrize("version", PATH)
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_value_the_program_sets_exists_in_that_versions_chart(
    shape: str, version: str
) -> None:
    raw = SHAPES[shape]
    cilium = {**raw.get("cilium", {}), "chart": {"version": version}}
    if shape == "homelab-cilium":
        # A K3s whose Kubernetes that Cilium is tested on (the config refuses any other).
        k8s = cilium_versions.kubernetes_tested(version)[-1]
        raw = {**raw, "cluster": {"kind": "k3d", "k3sImage": f"rancher/k3s:v{k8s}.1-k3s1"}}
    config = parse_stack_config({**raw, "cilium": cilium})
    assert unknown_value_keys(helm_values(config, "1.15.0"), version) == []
    assert unknown_value_keys(preflight_values(config), version) == []


@pytest.mark.parametrize(
    ("version", "export"),
    [
        ("1.17.17", {"fileMaxSizeMb": 50, "fileMaxBackups": 10, "static": {"enabled": True}}),
        ("1.18.11", {"static": {"enabled": True, "fileMaxSizeMb": 50, "fileMaxBackups": 10}}),
    ],
)
def test_the_export_rotation_moves_under_static_in_1_18(
    version: str, export: dict[str, Any]
) -> None:
    config = parse_stack_config(
        production_config(cilium={"chart": {"version": version}, "export": {"allowList": []}})
    )
    values = helm_values(config)["hubble"]["export"]
    values["static"] = {k: v for k, v in values["static"].items() if k != "filePath"}
    values["static"] = {k: v for k, v in values["static"].items() if k != "fieldMask"}
    assert values == export


def test_upgrade_compatibility_is_the_line_first_installed() -> None:
    config = parse_stack_config(production_config())
    assert helm_values(config)["upgradeCompatibility"] == "1.19"
    assert helm_values(config, first_installed="1.15.0")["upgradeCompatibility"] == "1.15"


def test_the_preflight_values_are_upstreams_kube_proxy_free_variant() -> None:
    assert preflight_values(parse_stack_config(production_config())) == {
        "preflight": {"enabled": True},
        "agent": False,
        "operator": {"enabled": False},
        "k8sServiceHost": "api.gtt-prod.internal",
        "k8sServicePort": 6443,
    }


def test_node_encryption_needs_wireguard() -> None:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(
            production_config(cilium={"encryption": "disabled", "nodeEncryption": True})
        )
    assert str(err.value) == (
        "invalid stack config:\n  aisp-cni:cilium.nodeEncryption: node-to-node encryption is a "
        "mode of WireGuard: set encryption: wireguard or nodeEncryption: false"
    )
    off = parse_stack_config(production_config(cilium={"nodeEncryption": False}))
    assert helm_values(off)["encryption"] == {
        "enabled": True,
        "type": "wireguard",
        "nodeEncryption": False,
    }


def test_redaction_can_be_turned_off_and_then_sets_nothing() -> None:
    config = parse_stack_config(production_config(cilium={"hubble": {"redact": False}}))
    assert "redact" not in helm_values(config)["hubble"]


# --- the upgrade path ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deployed", "following"),
    [("1.15.0", "1.15.19"), ("1.15.19", "1.16.19"), ("1.16.19", "1.17.17"),
     ("1.17.17", "1.18.11"), ("1.18.11", "1.19.7"), ("1.19.7", None),
     # A patch off the path: first the path's patch of that line.
     ("1.16.3", "1.16.19")],
)  # fmt: skip
def test_the_next_allowed_version(deployed: str, following: str | None) -> None:
    assert cilium_versions.next_allowed(deployed) == following


PATH_TEXT = "1.15.0 -> 1.15.19 -> 1.16.19 -> 1.17.17 -> 1.18.11 -> 1.19.7"


@pytest.mark.parametrize(
    ("deployed", "target", "message"),
    [
        ("1.15.0", "1.16.19",
         "cannot upgrade Cilium from 1.15.0 to 1.16.19: 1.15.0 is not the latest patch of 1.15 on "
         "the path. Upstream upgrades one minor at a time from the latest patch of each line "
         "(Documentation/operations/upgrade.rst); the next allowed version is 1.15.19 "
         f"(path: {PATH_TEXT})"),
        ("1.15.19", "1.17.17",
         "cannot upgrade Cilium from 1.15.19 to 1.17.17: it skips 1.16. Upstream upgrades one "
         "minor at a time from the latest patch of each line (Documentation/operations/"
         f"upgrade.rst); the next allowed version is 1.16.19 (path: {PATH_TEXT})"),
        ("1.15.19", "1.19.7",
         "cannot upgrade Cilium from 1.15.19 to 1.19.7: it skips 1.16, 1.17, 1.18. Upstream "
         "upgrades one minor at a time from the latest patch of each line (Documentation/"
         f"operations/upgrade.rst); the next allowed version is 1.16.19 (path: {PATH_TEXT})"),
        ("1.19.7", "1.17.17",
         "cannot downgrade Cilium from 1.19.7 to 1.17.17: a rollback goes back one minor at most "
         '(Documentation/operations/upgrade.rst, "Rolling Back"); the furthest allowed version '
         "is 1.18.11"),
    ],
)  # fmt: skip
def test_a_skip_or_a_long_downgrade_is_refused_naming_the_next_version(
    deployed: str, target: str, message: str
) -> None:
    assert cilium_versions.upgrade_problem(deployed, target) == message


@pytest.mark.parametrize(
    ("deployed", "target"),
    [(None, "1.19.7"), (None, "1.15.0"), ("1.15.0", "1.15.19"), ("1.15.19", "1.16.19"),
     ("1.19.7", "1.19.7"), ("1.19.7", "1.18.11"), ("1.16.3", "1.16.19")],
)  # fmt: skip
def test_allowed_changes(deployed: str | None, target: str) -> None:
    assert cilium_versions.upgrade_problem(deployed, target) is None


def test_a_version_off_the_matrix_is_refused_with_both_versions() -> None:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(
            homelab_config(
                cni="cilium",
                cilium={"chart": {"version": "1.15.19"}},
            )
        )
    assert str(err.value) == (
        "invalid stack config:\n  aisp-cni:cluster.k3sImage: Cilium 1.15.19 is not tested on "
        "Kubernetes 1.35.8 (k3sImage rancher/k3s:v1.35.8-k3s1): Cilium 1.15 supports Kubernetes "
        "1.26, 1.27, 1.28, 1.29 (Documentation/network/kubernetes/compatibility.rst of its module)"
    )


def test_an_existing_cluster_off_the_matrix_is_refused_with_its_server_version() -> None:
    config = parse_stack_config(production_config(cilium={"chart": {"version": "1.18.11"}}))
    with pytest.raises(UpgradeError) as err:
        plan_upgrade(config, None, ClusterFacts("v1.35.8"))
    assert str(err.value) == (
        "Cilium 1.18.11 is not tested on Kubernetes v1.35.8 (the API server's /version): Cilium "
        "1.18 supports Kubernetes 1.30, 1.31, 1.32, 1.33 (Documentation/network/kubernetes/"
        "compatibility.rst of its module). Move to a Cilium version that supports it, or the "
        "cluster to a Kubernetes version the Cilium version supports"
    )
    plan = plan_upgrade(config, None, ClusterFacts("v1.35.8"), allow_off_matrix=True)
    assert plan is not None
    assert plan.warnings == (
        "OFF-MATRIX, allowed by CNISTACK_TEST_ONLY_ALLOW_OFF_MATRIX=1 (a test-only setting, "
        "never for a real cluster): Cilium 1.18.11 is not tested on Kubernetes v1.35.8 (the API "
        "server's /version): Cilium 1.18 supports Kubernetes 1.30, 1.31, 1.32, 1.33 "
        "(Documentation/network/kubernetes/compatibility.rst of its module)",
    )


# --- the version deployed: the cluster's Helm release ---------------------------------------------


def helm_secret(release: str, revision: int, status: str, chart_version: str) -> dict[str, Any]:
    """A Helm storage Secret as the API returns it: data.release = base64 of Helm's own
    base64(gzip(JSON)) (helm pkg/storage/driver/util.go)."""
    record = {
        "name": release,
        "version": revision,
        "info": {"status": status},
        "chart": {"metadata": {"name": "cilium", "version": chart_version}},
    }
    helm = base64.b64encode(gzip.compress(json.dumps(record).encode()))
    return {
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"sh.helm.release.v1.{release}.v{revision}",
            "labels": {"owner": "helm", "name": release, "status": status,
                       "version": str(revision)},
        },
        "data": {"release": base64.b64encode(helm).decode()},
    }  # fmt: skip


def test_the_deployed_version_is_read_from_helms_release_secrets() -> None:
    revisions = revisions_from_secrets(
        [
            helm_secret("cilium", 2, "deployed", "1.15.19"),
            helm_secret("cilium", 1, "superseded", "1.15.0"),
            helm_secret("cilium-preflight", 1, "deployed", "1.16.19"),
        ]
    )
    assert revisions == (
        HelmRevision("cilium", 1, "superseded", "1.15.0"),
        HelmRevision("cilium", 2, "deployed", "1.15.19"),
        HelmRevision("cilium-preflight", 1, "deployed", "1.16.19"),
    )
    deployed = deployed_from_cluster(ClusterFacts("v1.29.14", revisions))
    assert deployed is not None
    assert (deployed.version, deployed.first_installed, deployed.preflight) == (
        "1.15.19",
        "1.15.0",
        "1.16.19",
    )


def _double(monkeypatch: pytest.MonkeyPatch, facts: ClusterFacts) -> None:
    monkeypatch.setattr(tests.conftest, "CLUSTER_FACTS_DOUBLE", facts)


def test_a_skip_read_from_the_clusters_release_stops_the_program(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    revisions = revisions_from_secrets([helm_secret("cilium", 4, "deployed", "1.17.17")])
    _double(monkeypatch, ClusterFacts("v1.35.8", revisions))
    with pytest.raises(UpgradeError) as err:
        run_program("production")
    assert str(err.value).endswith(
        "the next allowed version is 1.18.11 (path: "
        f"{PATH_TEXT}) (deployed version read from the cluster's Helm release "
        "kube-system/cilium (revision 4))"
    )


# --- the version deployed: the stack's state -----------------------------------------------------

HOMELAB_CILIUM_1_32 = {
    "cni": "cilium",
    "cluster": {"kind": "k3d", "k3sImage": "rancher/k3s:v1.32.9-k3s1"},
}


def test_a_skip_read_from_the_stacks_state_stops_the_program() -> None:
    # A k3d cluster is the stack's own: before its resources, the state is the only source.
    state = {
        "ciliumInstall": {"version": "1.17.17", "firstInstalled": "1.17.17", "preflight": None}
    }
    with pytest.raises(UpgradeError) as err:
        run_program("homelab", HOMELAB_CILIUM_1_32, stack_outputs=state)
    assert str(err.value).endswith(
        "the next allowed version is 1.18.11 (path: "
        f"{PATH_TEXT}) (deployed version read from the stack's state (output ciliumInstall))"
    )


def test_a_minor_step_first_runs_the_preflight_then_upgrades() -> None:
    # Stage 1: the preflight release at the target; the cilium release stays at 1.18.11.
    state = {"ciliumInstall": {"version": "1.18.11", "firstInstalled": "1.15.0", "preflight": None}}
    run = run_program(
        "homelab", {**HOMELAB_CILIUM_1_32, "cilium": {"chart": {"version": "1.19.7"}}},
        stack_outputs=state,
    )  # fmt: skip
    releases = {r.inputs["name"]: r for r in run.of_type(RELEASE)}
    assert sorted(releases) == ["cilium", "cilium-preflight"]
    assert releases["cilium-preflight"].inputs["version"] == "1.19.7"
    assert releases["cilium-preflight"].inputs["values"]["preflight"] == {"enabled": True}
    # The engine keeps the release's stored chart and values: nothing of it changes yet.
    assert releases["cilium"].options["ignoreChanges"] == [
        "chart",
        "version",
        "values",
        "repositoryOpts",
    ]
    assert any("this run installs upstream's preflight check" in w for w in run.warnings)
    assert run.exports["ciliumInstall"] == {
        "version": "1.18.11",
        "firstInstalled": "1.15.0",
        "preflight": "1.19.7",
    }
    # Stage 2: the preflight ran; the cilium release moves, the preflight goes.
    run = run_program(
        "homelab", {**HOMELAB_CILIUM_1_32, "cilium": {"chart": {"version": "1.19.7"}}},
        stack_outputs={"ciliumInstall": run.exports["ciliumInstall"]},
    )  # fmt: skip
    (release,) = run.of_type(RELEASE)
    assert release.inputs["name"] == "cilium"
    assert release.inputs["version"] == "1.19.7"
    assert release.options["ignoreChanges"] == []
    assert release.inputs["values"]["upgradeCompatibility"] == "1.15"
    assert run.exports["ciliumInstall"] == {
        "version": "1.19.7",
        "firstInstalled": "1.15.0",
        "preflight": None,
    }
