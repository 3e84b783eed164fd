"""sensitive-namespace-not-open: nothing opens a sensitive namespace to everyone.

ADR-013 protects C4-C5 data (the `storage` namespace in its NetworkPolicy example only admits
`ai-apps`). A namespace is sensitive when it is listed in this policy's `sensitiveNamespaces`
config (default: storage) or when the stack's Namespace carries the label
`cnistack.io/sensitive: "true"`. No NetworkPolicy or CiliumNetworkPolicy may open it to:
- all namespaces: a NetworkPolicy peer with `namespaceSelector: {}`, a Cilium `fromEndpoints`
  selector matching any namespace, or the `cluster` entity;
- every source: a NetworkPolicy ingress rule without `from`, a Cilium ingress rule with ports but
  no source selector;
- the internet: an `ipBlock`, `fromCIDR` or `fromCIDRSet` of 0.0.0.0/0 (or ::/0), or the `world` or
  `all` entity.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from .manifests import (
    CILIUM_CLUSTERWIDE_NETWORK_POLICY,
    CILIUM_NAMESPACE_LABELS,
    CILIUM_NETWORK_POLICY,
    NAMESPACE,
    NETWORK_POLICY,
    SENSITIVE_LABEL,
    K8sObject,
    cilium_specs,
    default_namespace,
    dig,
    effective_policy_types,
    is_empty_selector,
    is_everywhere,
    items,
    judged,
    k8s_object,
    mapping,
    namespace_name,
    report_unknown,
    shown,
)
from .selector_reach import (
    any_namespace_in_clusterwide,
    clusterwide_targets,
    covered_everything,
    opens_all_namespaces,
)

NAME = "sensitive-namespace-not-open"
DEFAULT_SENSITIVE_NAMESPACES = ("storage",)
OPEN_ENTITIES = {
    "world": "the internet",
    # Split entities of 1.15 (cilium v1.15.0 pkg/policy/api/entity.go).
    "world-ipv4": "the internet",
    "world-ipv6": "the internet",
    "all": "every source",
    "cluster": "all namespaces",
}
# Cilium source selectors: a rule with none of them (but with ports) admits every source.
CILIUM_SOURCES = (
    "fromEndpoints",
    "fromEntities",
    "fromCIDR",
    "fromCIDRSet",
    "fromGroups",
    "fromNodes",
)

CONFIG_SCHEMA = PolicyConfigSchema(
    properties={
        "sensitiveNamespaces": {
            "type": "array",
            "items": {"type": "string"},
            "default": list(DEFAULT_SENSITIVE_NAMESPACES),
            "description": "Namespaces holding C4-C5 data, in addition to labelled Namespaces.",
        },
    },
)


def _ref(obj: K8sObject) -> str:
    # A clusterwide policy is judged per sensitive namespace it selects, but lives in none.
    if obj.kind == "CiliumClusterwideNetworkPolicy":
        return f"{obj.kind} `{obj.name}`"
    return obj.ref


def _opening(obj: K8sObject, where: str, what: str, whom: str) -> str:
    return (
        f"Remove {what} from {where} of {_ref(obj)}: it opens sensitive namespace "
        f"`{obj.namespace}` to {whom}."
    )


def network_policy_violations(obj: K8sObject, spec: Mapping[str, Any]) -> Iterator[str]:
    if "Ingress" not in effective_policy_types(spec):
        return
    for i, rule in enumerate(items(spec.get("ingress"))):
        where = f"ingress rule {i}"
        peers = items(mapping(rule).get("from"))
        if not peers:
            yield (
                f"Add `from` peers to {where} of {obj.ref}: without them it opens sensitive "
                f"namespace `{obj.namespace}` to every source."
            )
            continue
        for j, entry in enumerate(peers):
            peer = mapping(entry)
            if not peer:
                yield _opening(obj, where, f"the empty peer {j}", "every source")
            if "namespaceSelector" in peer and is_empty_selector(peer["namespaceSelector"]):
                yield _opening(obj, where, "`namespaceSelector: {}`", "all namespaces")
            elif "namespaceSelector" in peer and opens_all_namespaces(peer["namespaceSelector"]):
                yield _opening(
                    obj, where, "the namespaceSelector matching every namespace", "all namespaces"
                )
            cidr = dig(peer, "ipBlock", "cidr")
            if is_everywhere(cidr):
                yield _opening(obj, where, f"ipBlock {cidr}", "the internet")
        cidrs = [dig(mapping(p), "ipBlock", "cidr") for p in peers]
        everything = covered_everything(c for c in cidrs if not is_everywhere(c))
        if everything is not None:
            yield _opening(obj, where, f"the ipBlocks covering {everything}", "the internet")


def _any_namespace(selector: object) -> bool:
    for entry in items(mapping(selector).get("matchExpressions")):
        expression = mapping(entry)
        if expression.get("key") in CILIUM_NAMESPACE_LABELS and expression.get("operator") in (
            "Exists",
            "NotIn",
        ):
            return True
    return False


def cilium_rule_violations(
    obj: K8sObject, where: str, rule: Mapping[str, Any], clusterwide: bool = False
) -> Iterator[str]:
    if rule.get("toPorts") is not None and not any(rule.get(k) for k in CILIUM_SOURCES):
        yield (
            f"Add a source selector (fromEndpoints, fromEntities, ...) to {where} of {_ref(obj)}: "
            f"ports alone open sensitive namespace `{obj.namespace}` to every source."
        )
    for entity in items(rule.get("fromEntities")):
        if entity in OPEN_ENTITIES:
            yield _opening(obj, where, f"fromEntities {entity}", OPEN_ENTITIES[entity])
    for cidr in items(rule.get("fromCIDR")):
        if is_everywhere(cidr):
            yield _opening(obj, where, f"fromCIDR {cidr}", "the internet")
    for cidr_rule in items(rule.get("fromCIDRSet")):
        cidr = mapping(cidr_rule).get("cidr")
        if is_everywhere(cidr):
            yield _opening(obj, where, f"fromCIDRSet {cidr}", "the internet")
        group = mapping(cidr_rule).get("cidrGroupRef")
        if group is not None:
            # The CIDRs live in a CiliumCIDRGroup object the pack does not resolve: fail closed.
            yield (
                f"Cannot verify fromCIDRSet cidrGroupRef {shown(group)} in {where} of {_ref(obj)} "
                f"on sensitive namespace `{obj.namespace}`: list its CIDRs in the policy instead."
            )
    for selector in items(rule.get("fromEndpoints")):
        if _any_namespace(selector) or (clusterwide and any_namespace_in_clusterwide(selector)):
            yield _opening(obj, where, "the any-namespace fromEndpoints selector", "all namespaces")
        # A reserved label selects that identity whatever the namespace (cilium v1.15.0
        # pkg/k8s/apis/cilium.io/utils/utils.go getEndpointSelector); reserved:world = internet.
        labels = mapping(mapping(selector).get("matchLabels"))
        for world in ("reserved:world", "reserved:world-ipv4", "reserved:world-ipv6"):
            if world in labels:
                yield _opening(obj, where, f"fromEndpoints {world}", "the internet")


def cilium_policy_violations(
    obj: K8sObject, props: Mapping[str, Any], sensitive: set[str], clusterwide: bool
) -> Iterator[str]:
    for spec_path, spec in cilium_specs(props):
        targets = (
            [K8sObject(obj.kind, obj.name, ns) for ns in clusterwide_targets(spec, sensitive)]
            if clusterwide
            else [obj]
        )
        for target in targets:
            for i, rule in enumerate(items(spec.get("ingress"))):
                yield from cilium_rule_violations(
                    target, f"{spec_path} ingress rule {i}", mapping(rule), clusterwide
                )


def _configured(args: StackValidationArgs) -> set[str]:
    configured = args.get_config().get("sensitiveNamespaces", DEFAULT_SENSITIVE_NAMESPACES)
    return {n for n in items(configured) if isinstance(n, str)}


def _sensitive_namespaces(args: StackValidationArgs, report_violation: ReportViolation) -> set[str]:
    sensitive = _configured(args)
    for resource in args.resources:
        if resource.resource_type != NAMESPACE:
            continue
        try:
            name = namespace_name(resource.props)
            label = dig(resource.props, "metadata", "labels", SENSITIVE_LABEL)
        except UnknownValueError as error:
            report_unknown(error, report_violation, resource.urn)
            continue
        if name and label == "true":
            sensitive.add(name)
        elif name in _configured(args):
            # The label is what other policies (and people) select C4-C5 namespaces by.
            report_violation(
                f'Label Namespace `{name}` with `{SENSITIVE_LABEL}: "true"`: it is listed in '
                f"`sensitiveNamespaces` of the `{NAME}` pack config (found {shown(label)}).",
                resource.urn,
            )
    return sensitive


def resource_violations(resource: PolicyResource, sensitive: set[str]) -> Iterator[str]:
    kind = resource.resource_type.rsplit(":", 1)[-1]
    props = resource.props
    if resource.resource_type == NETWORK_POLICY:
        obj = k8s_object(props, kind, default=default_namespace(resource.provider))
        if obj.namespace in sensitive:
            yield from network_policy_violations(obj, mapping(props.get("spec")))
    elif resource.resource_type == CILIUM_NETWORK_POLICY:
        obj = k8s_object(props, kind, default=default_namespace(resource.provider))
        if obj.namespace in sensitive:
            yield from cilium_policy_violations(obj, props, sensitive, clusterwide=False)
    elif resource.resource_type == CILIUM_CLUSTERWIDE_NETWORK_POLICY:
        obj = k8s_object(props, kind, namespaced=False)
        yield from cilium_policy_violations(obj, props, sensitive, clusterwide=True)


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    sensitive = _sensitive_namespaces(args, report_violation)
    for resource in args.resources:
        for message in judged(resource_violations(resource, sensitive)):
            report_violation(message, resource.urn)


POLICY = StackValidationPolicy(
    name=NAME,
    description=(
        "No NetworkPolicy or CiliumNetworkPolicy opens a sensitive namespace to all namespaces, "
        "every source or the internet (ADR-013: C4-C5 data)."
    ),
    validate=validate,
    config_schema=CONFIG_SCHEMA,
)
