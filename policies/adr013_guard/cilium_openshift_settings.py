"""cilium-openshift-settings: Cilium on OpenShift keeps Multus and uses the cluster's pod network.

Applies when this policy's `openshift` config property is set (policies/config/production.json),
to a Cilium Helm release or OLM CiliumConfig alike:
- `cni.exclusive: false`, `cni.binPath: /var/lib/cni/bin`, `cni.confPath:
  /var/run/multus/cni/net.d`: Multus stays the cluster's CNI; with `exclusive: true` Cilium
  renames every other CNI config, Multus's included (chart 1.15.0 values.yaml);
- `ipam.mode: cluster-pool` with `ipam.operator.clusterPoolIPv4PodCIDRList` = the configured
  `clusterNetwork.cidr` and `clusterPoolIPv4MaskSize` = its `hostPrefix`: the chart's default pool
  10.0.0.0/8 collides with most on-prem networks (isovalent/olm-for-cilium install guide: these
  must match OpenShift's clusterNetwork).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .manifests import dig, items, port_number, release_values, shown, validate_cilium_release

NAME = "cilium-openshift-settings"
MULTUS_BIN_PATH = "/var/lib/cni/bin"
MULTUS_CONF_PATH = "/var/run/multus/cni/net.d"

CONFIG_SCHEMA = PolicyConfigSchema(
    properties={
        "openshift": {
            "type": "object",
            "description": "Set on OpenShift stacks: the cluster's clusterNetwork entry.",
            "properties": {
                "clusterNetwork": {
                    "type": "object",
                    "properties": {
                        "cidr": {"type": "string", "minLength": 1},
                        "hostPrefix": {"type": "integer", "minimum": 1, "maximum": 32},
                    },
                    "required": ["cidr", "hostPrefix"],
                    "additionalProperties": False,
                },
            },
            "required": ["clusterNetwork"],
            "additionalProperties": False,
        },
    },
)


def violations(props: Mapping[str, Any], openshift: Mapping[str, Any]) -> Iterator[str]:
    values = release_values(props)
    exclusive = dig(values, "cni", "exclusive")
    if exclusive is not False:
        yield (
            "Set the cilium value `cni.exclusive` to false on OpenShift: Multus stays the "
            f"cluster's CNI (found {shown(exclusive)}; the chart's default true renames its "
            "config)."
        )
    for key, expected in (("binPath", MULTUS_BIN_PATH), ("confPath", MULTUS_CONF_PATH)):
        found = dig(values, "cni", key)
        if found != expected:
            yield (
                f"Set the cilium value `cni.{key}` to {expected} on OpenShift "
                f"(found {shown(found)})."
            )
    network = dig(openshift, "clusterNetwork") or {}
    cidr, prefix = network.get("cidr"), port_number(network.get("hostPrefix"))
    mode = dig(values, "ipam", "mode")
    if mode != "cluster-pool":
        yield f"Set the cilium value `ipam.mode` to cluster-pool (found {shown(mode)})."
    pool = dig(values, "ipam", "operator", "clusterPoolIPv4PodCIDRList")
    if list(items(pool)) != [cidr]:
        yield (
            "Set the cilium value `ipam.operator.clusterPoolIPv4PodCIDRList` to "
            f'["{cidr}"], the cluster\'s clusterNetwork (found {shown(pool)}).'
        )
    size = dig(values, "ipam", "operator", "clusterPoolIPv4MaskSize")
    # The chart quotes it into the agent's config: 23, 23.0 (over the wire) and "23" all work.
    if port_number(size) != prefix:
        if isinstance(size, float) and size.is_integer():
            size = int(size)  # numbers travel as floats
        yield (
            "Set the cilium value `ipam.operator.clusterPoolIPv4MaskSize` to "
            f"{prefix}, the clusterNetwork's hostPrefix (found {shown(size)})."
        )


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    openshift = args.get_config().get("openshift")
    if not openshift:
        return  # not an OpenShift stack
    check = validate_cilium_release(lambda props: violations(props, openshift))
    check(args, report_violation)


POLICY = ResourceValidationPolicy(
    name=NAME,
    description=(
        "On OpenShift, Cilium leaves Multus in place (cni.exclusive false) and hands out the "
        "cluster's clusterNetwork, not the chart's 10.0.0.0/8."
    ),
    validate=validate,
    config_schema=CONFIG_SCHEMA,
)
