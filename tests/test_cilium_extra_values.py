"""`cilium.extraValues`: checked against the keys of the chart being installed, ADR decisions
refused, merged last into the Release's values."""

from __future__ import annotations

from typing import Any

import pytest

from cnistack.cilium import helm_values
from cnistack.config import ConfigError
from cnistack.stack_checks import validate_stack_config
from tests.conftest import run_program
from tests.factories import HUBBLE_METRICS, PRODUCTION_VALUES, homelab_config, production_config

RELEASE = "kubernetes:helm.sh/v3:Release"
PROD_CILIUM = {"k8sServiceHost": "api.gtt-prod.internal", "k8sServicePort": 6443}


def _values(extra: dict[str, Any]) -> dict[str, Any]:
    return helm_values(validate_stack_config(production_config(cilium={"extraValues": extra})))


def test_extra_values_are_merged_last_into_the_adr_values() -> None:
    extra = {
        "operator": {"replicas": 1},
        "bpf": {"masquerade": True},
        "routingMode": "native",
        "tolerations": [{"operator": "Exists"}],
        "hubble": {"metrics": {"enabled": ["drop", "flow"]}},
    }
    expected = {
        **PRODUCTION_VALUES,
        "operator": {"prometheus": {"enabled": True}, "replicas": 1},
        "bpf": {"masquerade": True},
        "routingMode": "native",
        "tolerations": [{"operator": "Exists"}],
        "hubble": {
            **PRODUCTION_VALUES["hubble"],
            # A list replaces the program's list, as a later `helm -f` file does.
            "metrics": {"enabled": ["drop", "flow"], "enableOpenMetrics": True},
        },
    }
    assert _values(extra) == expected
    assert PRODUCTION_VALUES["hubble"]["metrics"]["enabled"] == HUBBLE_METRICS


def test_no_extra_values_leave_the_adr_values_unchanged() -> None:
    assert _values({}) == PRODUCTION_VALUES


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"ipam": {"mod": "kubernetes"}},
            "aisp-cni:cilium.extraValues.ipam.mod: not a value of the cilium chart 1.19.7; "
            "did you mean 'ipam.mode'?",
        ),
        (
            {"operatr": {"replicas": 1}},
            "aisp-cni:cilium.extraValues.operatr.replicas: not a value of the cilium chart "
            "1.19.7; did you mean 'operator.replicas'?",
        ),
        (
            {"encryption": {"enabled": False}},
            "aisp-cni:cilium.extraValues.encryption.enabled: decided by the program from "
            "cilium.encryption (ADR-013); change that setting instead, where the policy pack "
            "checks it",
        ),
        (
            {"kubeProxyReplacement": False},
            "aisp-cni:cilium.extraValues.kubeProxyReplacement: decided by the program from "
            "cilium.kubeProxyReplacement (ADR-013)",
        ),
        (
            {"hubble": {"tls": {"auto": {"method": "helm"}}}},
            "aisp-cni:cilium.extraValues.hubble.tls.auto.method: decided by the program from "
            "cilium.hubble.tlsMethod (ADR-013)",
        ),
        (
            # A parent replaces everything under it, the decisions included.
            {"hubble": None},
            "aisp-cni:cilium.extraValues.hubble: decided by the program from "
            "cilium.hubble.enabled (ADR-013)",
        ),
        (
            {"cni": {"binPath": "/opt/cni/bin"}},
            "aisp-cni:cilium.extraValues.cni.binPath: decided by the program from "
            "cluster.openshift (ADR-013)",
        ),
        (
            # OpenShift's IPAM follows its clusterNetwork (docs/openshift.md): not a free knob.
            {"ipam": {"mode": "kubernetes"}},
            "aisp-cni:cilium.extraValues.ipam.mode: decided by the program from "
            "cluster.clusterNetwork (OpenShift) (ADR-013)",
        ),
        (
            {"hubble": {"export": {"static": {"enabled": False}}}},
            "aisp-cni:cilium.extraValues.hubble.export.static.enabled: decided by the program "
            "from cilium.export (ADR-013)",
        ),
    ],
    ids=[
        "typo-leaf",
        "typo-root",
        "wireguard",
        "kpr",
        "hubble-tls",
        "parent",
        "openshift-cni",
        "openshift-ipam",
        "flow-export",
    ],
)
def test_bad_extra_values_are_refused_with_the_key_path(
    extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(production_config(cilium={"extraValues": extra}))
    assert message in str(caught.value)


POD_CIDRS = {"ipam": {"operator": {"clusterPoolIPv4PodCIDRList": ["10.128.0.0/14"]}}}


def test_a_value_is_owned_only_where_the_program_decides_it() -> None:
    # On k3d the pod CIDR list follows cluster.podCidr; on an existing cluster it is free to tune.
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(homelab_config(cni="cilium", cilium={"extraValues": POD_CIDRS}))
    assert (
        "aisp-cni:cilium.extraValues.ipam.operator.clusterPoolIPv4PodCIDRList: decided by the "
        "program from cluster.podCidr (k3d) or cluster.clusterNetwork (OpenShift) (ADR-013)"
    ) in str(caught.value)
    plain_pools = production_config(cluster={"openshift": False}, cilium={"extraValues": POD_CIDRS})
    assert helm_values(validate_stack_config(plain_pools))["ipam"] == POD_CIDRS["ipam"]
    # The CNI paths are OpenShift's; a plain Kubernetes cluster may set its own.
    plain = production_config(
        cluster={"openshift": False}, cilium={"extraValues": {"cni": {"binPath": "/opt/cni/bin"}}}
    )
    assert helm_values(validate_stack_config(plain))["cni"] == {"binPath": "/opt/cni/bin"}


def test_every_bad_extra_value_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(
            production_config(cilium={"extraValues": {"l7Proxy": False, "routingMod": "x"}})
        )
    assert str(caught.value).splitlines()[1:] == [
        "  aisp-cni:cilium.extraValues.routingMod: not a value of the cilium chart 1.19.7; "
        "did you mean 'routingMode'?",
        "  aisp-cni:cilium.extraValues.l7Proxy: decided by the program from cilium.l7Proxy "
        "(ADR-013); change that setting instead, where the policy pack checks it",
    ]


def test_a_chart_version_without_derived_data_is_refused() -> None:
    # Its keys, values and CRDs could not be checked: only versions on the path have data.
    raw = production_config(
        cilium={"chart": {"version": "1.16.0"}, "extraValues": {"routingMode": "native"}}
    )
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(raw)
    assert str(caught.value) == (
        "invalid stack config:\n  aisp-cni:cilium.chart.version: Cilium 1.16.0 is not on this "
        "program's upgrade path, so its chart cannot be checked; the known versions are 1.15.0, "
        "1.15.19, 1.16.19, 1.17.17, 1.18.11, 1.19.7 (add it to "
        "cnistack/data/cilium-upgrade-path.yaml and run scripts/derive_cilium_versions.py) "
        "(got '1.16.0')"
    )


@pytest.mark.parametrize(
    ("version", "extra", "unknown"),
    [
        # Removed in 1.16 for encryption.ipsec.* (upgrade.rst of v1.16.19).
        ("1.15.19", {"encryption": {"keyFile": "keys"}}, None),
        ("1.16.19", {"encryption": {"keyFile": "keys"}}, "encryption.keyFile"),
        # The WireGuard userspace fallback, removed in 1.17.
        ("1.16.19", {"encryption": {"wireguard": {"userspaceFallback": True}}}, None),
        ("1.17.17", {"encryption": {"wireguard": {"userspaceFallback": True}}},
         "encryption.wireguard.userspaceFallback"),
        # tcx attachment appears in 1.16 (on by default on kernels >= 6.6).
        ("1.15.19", {"bpf": {"enableTCX": False}}, "bpf.enableTCX"),
        ("1.16.19", {"bpf": {"enableTCX": False}}, None),
        # Hubble's TLS certificates from an existing Secret, from 1.16.
        ("1.15.19", {"hubble": {"relay": {"tls": {"server": {"existingSecret": "s"}}}}},
         "hubble.relay.tls.server.existingSecret"),
        ("1.17.17", {"hubble": {"relay": {"tls": {"server": {"existingSecret": "s"}}}}}, None),
    ],
)  # fmt: skip
def test_extra_values_are_checked_against_the_chart_being_installed(
    version: str, extra: dict[str, Any], unknown: str | None
) -> None:
    # Each version's chart data, derived from its module (scripts/derive_cilium_versions.py).
    raw = production_config(
        cluster={"openshift": False}, cilium={"chart": {"version": version}, "extraValues": extra}
    )
    if unknown is None:
        validate_stack_config(raw)
        return
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(raw)
    assert f"aisp-cni:cilium.extraValues.{unknown}: not a value of the cilium chart {version}" in (
        str(caught.value)
    )


@pytest.mark.parametrize(
    ("version", "refused"), [("1.15.19", False), ("1.16.19", True), ("1.19.7", True)]
)
def test_a_cluster_name_cilium_refuses_is_refused_from_1_16(version: str, refused: bool) -> None:
    raw = production_config(
        cilium={"chart": {"version": version}, "extraValues": {"cluster": {"name": "GTT_Prod"}}}
    )
    if not refused:
        assert helm_values(validate_stack_config(raw))["cluster"] == {"name": "GTT_Prod"}
        return
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(raw)
    assert str(caught.value) == (
        f"invalid stack config:\n  aisp-cni:cilium.extraValues.cluster.name: Cilium {version} "
        "refuses cluster name 'GTT_Prod': at most 32 lower-case alphanumerics and '-', starting "
        "and ending alphanumeric (upgrade.rst, 1.16/1.17)"
    )


def test_the_release_the_program_registers_carries_the_extra_values() -> None:
    cilium = {**PROD_CILIUM, "extraValues": {"operator": {"replicas": 1}}}
    release = run_program("production", {"cilium": cilium}).one(RELEASE)
    assert release.inputs["values"]["operator"] == {"prometheus": {"enabled": True}, "replicas": 1}
    assert release.inputs["values"]["encryption"] == {
        "enabled": True,
        "type": "wireguard",
        "nodeEncryption": True,
    }


def test_a_label_map_of_the_chart_takes_any_label() -> None:
    # operator.nodeSelector defaults to {kubernetes.io/os: linux}: other labels are just as valid.
    extra = {"operator": {"nodeSelector": {"node-role.kubernetes.io/infra": ""}}}
    assert _values(extra)["operator"]["nodeSelector"] == {"node-role.kubernetes.io/infra": ""}
