"""Reading Kubernetes and Helm properties the way the policy engine hands them over.

Shared by the policy modules; it is not a policy. The engine gives a policy a read-only view of the
properties: nested values are `Mapping`/`Sequence` proxies (not `dict`/`list`), numbers arrive as
floats (they travel as a protobuf `Struct`), and reading a value that is still unknown during
preview raises pulumi_policy's `UnknownValueError`. Every check here therefore tests for the
abstract types, and `judged` turns "unknown" into "can't judge" during preview and into "cannot
verify" during the update (visibility.py) instead of a crash.

This module deliberately knows nothing of the program (`cnistack`, `components`): the pack is an
independent guard over what the engine sees.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pulumi_policy import (
    PolicyProviderResource,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
)

# Not re-exported by pulumi_policy's package root, but it is what the proxies raise.
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

# `judged` lives with the pack's other "can I see this value" answers; re-exported for the policies.
from .visibility import judged, report_unknown

RELEASE = "kubernetes:helm.sh/v3:Release"
NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
CILIUM_NETWORK_POLICY = "kubernetes:cilium.io/v2:CiliumNetworkPolicy"
CILIUM_CLUSTERWIDE_NETWORK_POLICY = "kubernetes:cilium.io/v2:CiliumClusterwideNetworkPolicy"
CILIUM_POLICY_TYPES = frozenset({CILIUM_NETWORK_POLICY, CILIUM_CLUSTERWIDE_NETWORK_POLICY})
# Isovalent's OLM operator installs Cilium on OpenShift from a CiliumConfig whose spec is the
# chart's values (isovalent/olm-for-cilium, CRD ciliumconfigs.cilium.io v1alpha1); the program
# applies it as a CustomResourcePatch, whose engine type ends in `Patch`.
CILIUM_CONFIG = "kubernetes:cilium.io/v1alpha1:CiliumConfig"
CILIUM_CONFIG_TYPES = frozenset({CILIUM_CONFIG, f"{CILIUM_CONFIG}Patch"})

SENSITIVE_LABEL = "cnistack.io/sensitive"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# Label Cilium gives every endpoint with its namespace, with and without the source prefix.
CILIUM_NAMESPACE_LABELS = frozenset(
    {"io.kubernetes.pod.namespace", "k8s:io.kubernetes.pod.namespace"}
)


def mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def items(value: object) -> Sequence[Any]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return value
    return ()


def dig(value: object, *keys: str) -> Any:
    """`value[k1][k2]...`, or None as soon as a key is missing or a level is not a mapping."""
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def shown(value: object) -> str:
    """A property value as it reads in a violation message."""
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        value = {k: value[k] for k in value}
    elif isinstance(value, Sequence) and not isinstance(value, str):
        value = list(value)
    return json.dumps(value, default=str)


def port_number(value: object) -> int | None:
    """A port given as 53, 53.0 (Struct float) or "53"; None for names and junk."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and 1 <= value <= 65535:
        return value
    return None


def is_everywhere(cidr: object) -> bool:
    """True for 0.0.0.0/0 and ::/0 (whatever the host bits)."""
    if not isinstance(cidr, str):
        return False
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


# --- resources ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class K8sObject:
    """Where a namespaced object lives, for messages and grouping."""

    kind: str
    name: str
    namespace: str

    @property
    def ref(self) -> str:
        if self.namespace:
            return f"{self.kind} `{self.namespace}/{self.name}`"
        return f"{self.kind} `{self.name}`"


def k8s_object(
    props: Mapping[str, Any], kind: str, *, namespaced: bool = True, default: str = "default"
) -> K8sObject:
    metadata = mapping(props.get("metadata"))
    name = metadata.get("name")
    namespace = metadata.get("namespace") if namespaced else ""
    return K8sObject(
        kind=kind,
        name=name if isinstance(name, str) else "?",
        # An object without metadata.namespace is created in the provider's namespace
        # (`default` unless the provider says otherwise, see default_namespace).
        namespace=(namespace if isinstance(namespace, str) and namespace else default)
        if namespaced
        else "",
    )


def default_namespace(provider: PolicyProviderResource | None) -> str:
    """Where the provider puts an object without metadata.namespace.

    The kubernetes provider's `namespace` input is "the default namespace to use" for namespaced
    objects that name none (pulumi-kubernetes provider config); without it, `default`. Raises
    UnknownValueError while that input is unknown.
    """
    if provider is None or provider.resource_type != "pulumi:providers:kubernetes":
        return "default"
    namespace = mapping(provider.props).get("namespace")
    return namespace if isinstance(namespace, str) and namespace else "default"


def namespace_name(props: Mapping[str, Any]) -> str | None:
    name = dig(props, "metadata", "name")
    return name if isinstance(name, str) and name else None


# `helm pull cilium/cilium --version 1.15.0` writes cilium-1.15.0.tgz: Helm names a packaged chart
# <name>-<version>.tgz (helm.sh/docs/helm/helm_package). Versions are SemVer 2, prerelease included.
_PACKAGED_CILIUM = re.compile(r"cilium-\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?\.tgz")


def is_cilium_chart(chart: object) -> bool:
    """The Cilium chart as helm.v3.Release's `chart` can name it.

    `cilium` (with `repositoryOpts`) or `cilium/cilium` (repo/chart); a local chart directory
    named `cilium` (Helm names a local chart by its directory); a packaged `cilium-<version>.tgz`;
    an OCI reference `oci://registry/path/cilium`, with or without a `:tag` or `@digest`.
    """
    if not isinstance(chart, str):
        return False
    reference = chart.rstrip("/")
    if reference.startswith("oci://"):
        last = reference.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
        return last == "cilium"
    last = reference.rsplit("/", 1)[-1]
    return last == "cilium" or _PACKAGED_CILIUM.fullmatch(last) is not None


def is_cilium_release(resource_type: str, props: Mapping[str, Any]) -> bool:
    """Raises UnknownValueError when the chart itself is not known yet.

    A Release always has a `chart` (a required input). One without it is a Release whose inputs
    the engine does not show yet (for example while its provider is being replaced in a
    preview): that is "not known yet", not "not Cilium".
    """
    if resource_type != RELEASE:
        return False
    if "chart" not in props:
        raise UnknownValueError(UNKNOWN_STRING_VALUE, ["chart"])
    return is_cilium_chart(props["chart"])


def is_preflight_check(props: Mapping[str, Any]) -> bool:
    """Upstream's preflight release before a minor upgrade (`preflight.enabled=true agent=false`,
    Documentation/operations/upgrade.rst): no agent, so no datapath and no CNI settings to check;
    it pulls the new image and validates policies. A release with an agent is never one."""
    values = release_values(props)
    return dig(values, "preflight", "enabled") is True and dig(values, "agent") is False


def is_cilium_install(resource_type: str, props: Mapping[str, Any]) -> bool:
    """A Cilium Helm release or an OLM CiliumConfig: either way the stack runs Cilium. A
    preflight check is not an install (it runs no agent)."""
    if resource_type in CILIUM_CONFIG_TYPES:
        return True
    return is_cilium_release(resource_type, props) and not is_preflight_check(props)


def validate_cilium_release(
    violations: Callable[[Mapping[str, Any]], Iterable[str]],
    *,
    helm_only: bool = False,
) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    """A resource validation running `violations` on Cilium releases (and, unless `helm_only`,
    CiliumConfigs: `release_values` reads their spec), so both install methods are held to the
    same settings.

    A Release whose chart is still unknown may or may not be Cilium: not judged during preview,
    "cannot verify" during the update (see visibility).
    """

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        try:
            if helm_only and not is_cilium_release(args.resource_type, args.props):
                return
            if not is_cilium_install(args.resource_type, args.props):
                return
        except UnknownValueError as error:
            report_unknown(error, report_violation, args.urn)
            return
        for message in judged(violations(args.props)):
            report_violation(message, args.urn)

    return validate


def release_values(props: Mapping[str, Any]) -> Mapping[str, Any]:
    """A Release's `values`, or a CiliumConfig's `spec` (the values the OLM operator renders)."""
    if "values" not in props and props.get("kind") == "CiliumConfig":
        return mapping(props.get("spec"))
    return mapping(props.get("values"))


class Presence(Enum):
    PRESENT = "present"
    ABSENT = "absent"
    # Some Release's chart is unknown during preview: it may be Cilium.
    UNDECIDED = "undecided"


def cilium_releases(resources: Sequence[PolicyResource]) -> tuple[list[PolicyResource], Presence]:
    found: list[PolicyResource] = []
    undecided = False
    for resource in resources:
        try:
            if is_cilium_install(resource.resource_type, resource.props):
                found.append(resource)
        except UnknownValueError:
            undecided = True
    if found:
        return found, Presence.PRESENT
    return found, Presence.UNDECIDED if undecided else Presence.ABSENT


def of_type(resources: Sequence[PolicyResource], *types: str) -> Iterator[PolicyResource]:
    return (r for r in resources if r.resource_type in types)


# --- Cilium policy structure ---------------------------------------------------------------------


def cilium_specs(props: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """A CiliumNetworkPolicy carries one `spec`, a list of `specs`, or both."""
    if isinstance(props.get("spec"), Mapping):
        yield "spec", props["spec"]
    for index, spec in enumerate(items(props.get("specs"))):
        if isinstance(spec, Mapping):
            yield f"specs[{index}]", spec


def http_rules(spec: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every `toPorts[].rules.http[]` entry of a spec's ingress and egress rules, with its path."""
    for direction in ("ingress", "egress"):
        for i, rule in enumerate(items(spec.get(direction))):
            for j, to_port in enumerate(items(mapping(rule).get("toPorts"))):
                rules = mapping(mapping(to_port).get("rules"))
                for k, http in enumerate(items(rules.get("http"))):
                    yield f"{direction}[{i}].toPorts[{j}].rules.http[{k}]", http


def has_http_rules(props: Mapping[str, Any]) -> bool:
    return any(True for _, spec in cilium_specs(props) for _ in http_rules(spec))


# --- label selectors -----------------------------------------------------------------------------


def is_empty_selector(selector: object) -> bool:
    """`{}` (or a selector with empty matchLabels and matchExpressions) selects everything."""
    if not isinstance(selector, Mapping):
        return False
    return not items(selector.get("matchExpressions")) and not mapping(selector.get("matchLabels"))


def selector_pins(selector: object, key: str, value: str) -> bool:
    """True when the selector only admits objects labelled key=value."""
    if mapping(mapping(selector).get("matchLabels")).get(key) == value:
        return True
    for entry in items(mapping(selector).get("matchExpressions")):
        expression = mapping(entry)
        if (
            expression.get("key") == key
            and expression.get("operator") == "In"
            and list(items(expression.get("values"))) == [value]
        ):
            return True
    return False


def effective_policy_types(spec: Mapping[str, Any]) -> set[str]:
    """Without policyTypes a NetworkPolicy is Ingress, plus Egress if it has egress rules."""
    declared = items(spec.get("policyTypes"))
    if declared:
        return {t for t in declared if isinstance(t, str)}
    return {"Ingress", "Egress"} if items(spec.get("egress")) else {"Ingress"}
