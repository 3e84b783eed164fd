"""The pack on OpenShift, engine-free: DNS from its config, CiliumConfig as "runs Cilium" with the
same checks, and the mandatory Hubble flow-export rule."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.policy_pack_harness import (
    PackResource,
    allow_dns,
    changed,
    cilium_release,
    evaluate_pack,
    load_pack_config,
    mandatory,
    production_stack,
    run_policy,
)

CILIUM_CONFIG_PATCH = "kubernetes:cilium.io/v1alpha1:CiliumConfigPatch"
PRODUCTION_DNS = load_pack_config("production")["namespace-default-deny"]


def cilium_config(values: dict[str, Any] | None = None) -> PackResource:
    """What the program registers with installMethod: olm (a CustomResourcePatch). The
    operator ships the 1.15 line, whose chart reads the export rotation outside `static`."""
    spec = copy.deepcopy(dict(values or cilium_release(openshift=True).props["values"]))
    if values is None:
        static = spec["hubble"]["export"]["static"]
        for key in ("fileMaxSizeMb", "fileMaxBackups"):
            spec["hubble"]["export"][key] = static.pop(key)
    return PackResource(
        CILIUM_CONFIG_PATCH,
        "cni-ciliumconfig",
        {
            "apiVersion": "cilium.io/v1alpha1",
            "kind": "CiliumConfig",
            "metadata": {"name": "cilium", "namespace": "cilium"},
            "spec": spec,
        },
    )


def olm_production() -> list[PackResource]:
    return [cilium_config() if r.name == "cilium" else r for r in production_stack(openshift=True)]


def test_olm_production_passes_the_whole_pack() -> None:
    assert evaluate_pack(olm_production(), load_pack_config("production")) == []


def test_olm_production_is_held_to_the_same_settings() -> None:
    weakened = changed(cilium_config(), "spec.encryption.enabled", False)
    weakened = changed(weakened, "spec.hubble.export.static.enabled", False)
    stack = [weakened if r.name == "cni-ciliumconfig" else r for r in olm_production()]
    violations = mandatory(evaluate_pack(stack, load_pack_config("production")))
    assert [(v.policy_name, v.message) for v in violations] == [
        (
            "cilium-wireguard-encryption",
            "Set the cilium value `encryption.enabled` to true (found false).",
        ),
        (
            "cilium-hubble-flow-export",
            "Set the cilium value `hubble.export.static.enabled` to true: C4-C5 data needs an "
            "audit trail of flows, not only metrics (found false).",
        ),
    ]


def test_a_ciliumconfig_counts_as_running_cilium() -> None:
    assert (
        run_policy("production-runs-cilium", olm_production(), {"environment": "production"}) == []
    )


def test_openshift_dns_expectation_refuses_the_kube_dns_rule() -> None:
    # kube-dns on 53 cuts DNS on OpenShift (its DNS pods listen on 5353 in openshift-dns,
    # docs/openshift.md); the production config says so.
    stack = [
        allow_dns("ai-apps") if r.name == "ai-apps-allow-dns" else r
        for r in production_stack(openshift=True)
    ]
    assert run_policy("namespace-default-deny", stack, PRODUCTION_DNS) == [
        "Add a NetworkPolicy to namespace `ai-apps` with `podSelector: {}` allowing egress on UDP "
        "port 5353 and TCP port 5353 to the DNS pods (dns.operator.openshift.io/daemonset-dns: "
        "default in openshift-dns): default-deny egress otherwise breaks DNS."
    ]


def test_openshift_dns_rule_passes_only_with_both_protocols_on_5353() -> None:
    udp_only = changed(
        allow_dns("ai-apps", openshift=True),
        "spec.egress.0.ports",
        [{"port": 5353, "protocol": "UDP"}],
    )
    stack = [udp_only if r.name == udp_only.name else r for r in production_stack(openshift=True)]
    assert len(run_policy("namespace-default-deny", stack, PRODUCTION_DNS)) == 1
    assert (
        run_policy("namespace-default-deny", production_stack(openshift=True), PRODUCTION_DNS) == []
    )


def _export(path: str, value: Any) -> list[str]:
    release = changed(cilium_release(), f"values.hubble.export.{path}", value)
    return run_policy("cilium-hubble-flow-export", release)


def test_compliant_exporter_passes() -> None:
    assert run_policy("cilium-hubble-flow-export", cilium_release()) == []


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("static.filePath", "events.log",
         'Set the cilium value `hubble.export.static.filePath` to an absolute path on the node '
         '(found "events.log").'),
        ("static.fileMaxBackups", 0,
         "Set the cilium value `hubble.export.static.fileMaxBackups` to a positive number: the "
         "export file must rotate (found 0)."),
        ("static.allowList", ['{"event_type":[{"type":129}]}'],
         'Add `{"verdict":["DROPPED"]}` (alone in its filter) to the cilium value '
         "`hubble.export.static.allowList`: every denied flow belongs in the audit trail."),
        ("static.allowList", ['{"verdict":["DROPPED"],"source_pod":["ai-apps/"]}',
                              '{"event_type":[{"type":129}]}'],
         'Add `{"verdict":["DROPPED"]}` (alone in its filter) to the cilium value '
         "`hubble.export.static.allowList`: every denied flow belongs in the audit trail."),
        ("static.allowList", ['{"verdict":["DROPPED"]}'],
         'Add `{"event_type":[{"type":129}]}` (alone in its filter) to the cilium value '
         "`hubble.export.static.allowList`: L7 (HTTP/gRPC) records belong in the audit trail."),
        ("static.denyList", ['{"verdict":["DROPPED"]}'],
         'Remove `{"verdict": ["DROPPED"]}` from the cilium value '
         "`hubble.export.static.denyList`: it drops denials or L7 records from the trail."),
        ("static.fieldMask", ["time", "source"],
         "Keep destination, verdict in the cilium value `hubble.export.static.fieldMask`: an "
         "audit record names when, who, to whom and the verdict."),
        ("static.allowList", ["not json"],
         "Write every `hubble.export.static` allowList/denyList entry as a JSON object."),
    ],
)  # fmt: skip
def test_exporter_changed_by_one_field(path: str, value: Any, message: str) -> None:
    assert _export(path, value) == [message]


def test_chart_1_17_reads_the_rotation_only_outside_static() -> None:
    # cilium-configmap.yaml of v1.17.17 renders hubble-export-file-max-size-mb from
    # `hubble.export.fileMaxSizeMb` alone: sizes under `static` leave the file unrotated there.
    release = changed(cilium_release(), "version", "1.17.17")
    assert run_policy("cilium-hubble-flow-export", release) == [
        "Set the cilium value `hubble.export.fileMaxSizeMb` to a positive number: the export "
        "file must rotate (found nothing).",
        "Set the cilium value `hubble.export.fileMaxBackups` to a positive number: the export "
        "file must rotate (found nothing).",
    ]
    moved = changed(changed(release, "values.hubble.export.fileMaxSizeMb", 50),
                    "values.hubble.export.fileMaxBackups", 10)  # fmt: skip
    assert run_policy("cilium-hubble-flow-export", moved) == []


def test_chart_1_19_reads_the_top_level_rotation_first() -> None:
    # v1.19.7: `hubble.export.fileMaxSizeMb | default hubble.export.static.fileMaxSizeMb`.
    release = changed(cilium_release(), "values.hubble.export.fileMaxSizeMb", 0)
    assert run_policy("cilium-hubble-flow-export", release) == [
        "Set the cilium value `hubble.export.fileMaxSizeMb` to a positive number: the export "
        "file must rotate (found 0)."
    ]


def test_empty_allow_list_exports_everything_and_passes() -> None:
    assert _export("static.allowList", []) == []


def test_exporter_missing_entirely() -> None:
    release = changed(cilium_release(), "values.hubble.export")
    assert run_policy("cilium-hubble-flow-export", release) == [
        "Set the cilium value `hubble.export.static.enabled` to true: C4-C5 data needs an audit "
        "trail of flows, not only metrics (found nothing)."
    ]


def test_committed_pack_configs_validate_against_the_policy_schema() -> None:
    for stack in ("production", "homelab"):
        dns = load_pack_config(stack)["namespace-default-deny"]["dns"]
        assert json.loads(json.dumps(dns)) == dns
        assert run_policy("namespace-default-deny", [], {"dns": dns}) == []


OPENSHIFT_SETTINGS = load_pack_config("production")["cilium-openshift-settings"]


def test_openshift_settings_config_is_openshifts_default_cluster_network() -> None:
    assert OPENSHIFT_SETTINGS == {
        "openshift": {"clusterNetwork": {"cidr": "10.128.0.0/14", "hostPrefix": 23}}
    }
    assert "cilium-openshift-settings" not in load_pack_config("homelab")


def test_openshift_settings_config_agrees_with_the_production_stack() -> None:
    from cnistack.stack_files import load_stack  # the test may import the program; the pack not

    network = load_stack("production").cluster_network
    assert network is not None
    assert OPENSHIFT_SETTINGS["openshift"]["clusterNetwork"] == {
        "cidr": network.cidr,
        "hostPrefix": network.host_prefix,
    }


@pytest.mark.parametrize("install", ["helm", "olm"])
def test_compliant_openshift_cilium_passes(install: str) -> None:
    resource = cilium_release(openshift=True) if install == "helm" else cilium_config()
    assert run_policy("cilium-openshift-settings", resource, OPENSHIFT_SETTINGS) == []


def test_openshift_settings_are_not_checked_off_openshift() -> None:
    assert run_policy("cilium-openshift-settings", cilium_release()) == []


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("cni.exclusive", True,
         "Set the cilium value `cni.exclusive` to false on OpenShift: Multus stays the cluster's "
         "CNI (found true; the chart's default true renames its config)."),
        ("cni.confPath", "/etc/cni/net.d",
         "Set the cilium value `cni.confPath` to /var/run/multus/cni/net.d on OpenShift "
         '(found "/etc/cni/net.d").'),
        ("ipam.mode", "kubernetes",
         'Set the cilium value `ipam.mode` to cluster-pool (found "kubernetes").'),
        ("ipam.operator.clusterPoolIPv4PodCIDRList", ["10.0.0.0/8"],
         "Set the cilium value `ipam.operator.clusterPoolIPv4PodCIDRList` to "
         '["10.128.0.0/14"], the cluster\'s clusterNetwork (found ["10.0.0.0/8"]).'),
        ("ipam.operator.clusterPoolIPv4MaskSize", 24,
         "Set the cilium value `ipam.operator.clusterPoolIPv4MaskSize` to 23, the "
         "clusterNetwork's hostPrefix (found 24)."),
    ],
)  # fmt: skip
@pytest.mark.parametrize("install", ["helm", "olm"])
def test_openshift_settings_changed_by_one_field(
    install: str, path: str, value: Any, message: str
) -> None:
    if install == "helm":
        resource = changed(cilium_release(openshift=True), f"values.{path}", value)
    else:
        resource = changed(cilium_config(), f"spec.{path}", value)
    assert run_policy("cilium-openshift-settings", resource, OPENSHIFT_SETTINGS) == [message]
