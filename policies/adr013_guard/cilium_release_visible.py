"""cilium-release-visible: the pack can see everything that decides what the Cilium release renders.

Every other release rule reads `values`. The pulumi-kubernetes provider renders more than that
(provider/pkg/provider/helm_release.go):
- `valueYamlFiles`: assets read by the provider and merged UNDER `values` (`mergeMaps(values from
  files, release.Values, ...)`), so a file can set `encryption.enabled: false` that no rule sees;
- `postrender`: a command the provider runs on the rendered manifests before applying them;
- `reuseValues: true`: Helm merges the values of the release already installed, which live only in
  the cluster;
- `allowNullValues: true`: nulls reach Helm, whose merge then deletes the chart default at that key
  (so `hubble.enabled: null` removes the chart's `true`), where the rules read "not set";
- inside `values`, `extraConfig` entries are appended to the cilium-config ConfigMap "to override
  existing properties" (cilium v1.15.0 templates/cilium-configmap.yaml), so
  `extraConfig: {enable-wireguard: "false"}` undoes `encryption.enabled`; `extraArgs` and `extraEnv`
  reach the agent's command line and environment the same way.
Any of these makes the release unverifiable: in production that is a mandatory violation (the pack
fails closed, see visibility), advisory in the homelab through its pack config. An input still
unknown during the update is reported the same way; during preview it is left to the update.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import ResourceValidationPolicy
from pulumi_policy.proxy import UnknownValueError

from .manifests import items, mapping, shown, validate_cilium_release
from .visibility import cannot_verify, unknown_in

NAME = "cilium-release-visible"
# Release inputs that change what is rendered or applied; each is read in full.
RENDER_INPUTS = (
    "chart",
    "version",
    "repositoryOpts",
    "values",
    "valueYamlFiles",
    "postrender",
    "reuseValues",
    "allowNullValues",
)


def _asset(entry: object) -> str:
    for field in ("path", "uri"):
        value = getattr(entry, field, None)
        if isinstance(value, str):
            return value
    return "an inline asset" if hasattr(entry, "text") else shown(entry)


def _nulls(value: object, path: str) -> Iterator[str]:
    if value is None:
        yield path
    elif isinstance(value, Mapping):
        for key in value:
            yield from _nulls(value[key], f"{path}.{key}")
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for index in range(len(value)):
            yield from _nulls(value[index], f"{path}[{index}]")


def violations(props: Mapping[str, Any]) -> Iterator[str]:
    unknown: dict[str, UnknownValueError] = {}
    for name in RENDER_INPUTS:
        if name in props and (error := unknown_in(props, name)) is not None:
            unknown[name] = error
            if (message := cannot_verify(error)) is not None:
                yield message

    def known(name: str) -> Any:
        return None if name in unknown else props.get(name)

    for index, entry in enumerate(items(known("valueYamlFiles"))):
        yield (
            f"Cannot verify the cilium values: `valueYamlFiles[{index}]` ({_asset(entry)}) is "
            "merged into them by the provider and the policy pack cannot read it; move its "
            "settings into `values`."
        )
    postrender = known("postrender")
    if isinstance(postrender, str) and postrender.strip():
        yield (
            f"Cannot verify the cilium manifests: `postrender` ({shown(postrender)}) rewrites "
            "what the chart renders after the policy pack has checked the values; remove it."
        )
    if known("reuseValues") is True:
        yield (
            "Cannot verify the cilium values: `reuseValues: true` merges the values of the "
            "release already installed, which the policy pack cannot see; remove it."
        )
    values = known("values")
    for key in mapping(mapping(values).get("extraConfig")):
        yield (
            f"Cannot verify the cilium values: `values.extraConfig.{key}` overrides the agent "
            "configuration the chart renders from the values the policy pack checks; set it "
            "through its chart value instead."
        )
    for name in ("extraArgs", "extraEnv"):
        if items(mapping(values).get(name)):
            yield (
                f"Cannot verify the cilium values: `values.{name}` reaches the cilium agent "
                "directly, past the values the policy pack checks; remove it."
            )
    if known("allowNullValues") is True:
        for path in _nulls(known("values"), "values"):
            yield (
                f"Cannot verify the cilium values: `{path}` is null with `allowNullValues: true`, "
                "so Helm deletes the chart default there; set a value or remove the key."
            )


POLICY = ResourceValidationPolicy(
    name=NAME,
    description=(
        "The policy pack sees every input that decides what the Cilium release renders "
        "(ADR-013 settings cannot hide in value files, post-renderers or reused values)."
    ),
    validate=validate_cilium_release(violations),
)
