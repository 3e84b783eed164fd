"""cilium-l7-http-rules: CiliumNetworkPolicy HTTP rules say exactly which requests pass.

ADR-013 uses Cilium L7 rules to allow named HTTP routes and gRPC methods. Cilium treats `method`
and `path` as regular expressions, so the pack requires them written as anchored expressions:
`^GET$` from an allow-list of verbs, `^/api/v1/models$`. An empty rule (`http: [{}]`) matches every
request and defeats the L7 policy. gRPC rides on HTTP/2 as `POST /package.Service/Method`; in such a
path an unescaped `.` matches any character, so the service's dots must be written `\\.`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from .manifests import (
    CILIUM_CLUSTERWIDE_NETWORK_POLICY,
    CILIUM_POLICY_TYPES,
    cilium_specs,
    http_rules,
    judged,
    k8s_object,
    mapping,
    shown,
)

NAME = "cilium-l7-http-rules"

ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_METHOD = re.compile(r"\^(?:{})\$".format("|".join(ALLOWED_METHODS)))
# Fields that narrow an HTTP rule; a rule with none of them matches every request.
_RULE_FIELDS = ("method", "path", "host", "headers", "headerMatches")
# `^/pkg.Service/Method$` with each dot escaped or not: the shape of a gRPC route.
_GRPC_PATH = re.compile(r"\^/(?P<service>[A-Za-z_]\w*(?:\\?\.[A-Za-z_]\w*)+)/[A-Za-z_]\w*\$")
_UNESCAPED_DOT = re.compile(r"(?<!\\)\.")


def _is_anchored_path(path: str) -> bool:
    # The closing `$` must not itself be escaped (`\$` matches a literal dollar).
    trailing_backslashes = len(path[:-1]) - len(path[:-1].rstrip("\\"))
    return path.startswith("^/") and path.endswith("$") and trailing_backslashes % 2 == 0


def rule_violations(where: str, rule: Mapping[str, Any]) -> Iterator[str]:
    if not any(field in rule for field in _RULE_FIELDS):
        yield (
            f"Replace the empty HTTP rule at {where} with an explicit method and path: "
            "`{}` allows every request."
        )
        return
    method = rule.get("method")
    if method is None:
        yield (
            f"Add a `method` such as ^GET$ to the HTTP rule at {where}: without it any verb passes."
        )
    elif not (isinstance(method, str) and _METHOD.fullmatch(method)):
        yield (
            f"Write the method at {where} as one anchored verb such as ^GET$ "
            f"(found {shown(method)}; allowed: {', '.join(ALLOWED_METHODS)})."
        )
    path = rule.get("path")
    if path is None:
        yield (
            f"Add a `path` such as ^/api/v1/models$ to the HTTP rule at {where}: "
            "without it any path passes."
        )
        return
    if not (isinstance(path, str) and _is_anchored_path(path)):
        yield f"Write the path at {where} as an anchored expression ^/...$ (found {shown(path)})."
        return
    try:
        re.compile(path)
    except re.error as error:
        yield f"Fix the path regular expression at {where} ({error})."
        return
    grpc = _GRPC_PATH.fullmatch(path)
    if method == "^POST$" and grpc and _UNESCAPED_DOT.search(grpc["service"]):
        service = grpc["service"]
        fixed = path.replace(service, _UNESCAPED_DOT.sub(r"\\.", service), 1)
        yield f"Escape the dots of the gRPC service in the path at {where}: write {fixed}."


def violations(resource_type: str, props: Mapping[str, Any]) -> Iterator[str]:
    kind = resource_type.rsplit(":", 1)[-1]
    policy = k8s_object(props, kind, namespaced=resource_type != CILIUM_CLUSTERWIDE_NETWORK_POLICY)
    for spec_path, spec in cilium_specs(props):
        for rule_path, rule in http_rules(spec):
            where = f"{policy.ref} {spec_path}.{rule_path}"
            yield from rule_violations(where, mapping(rule))


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in CILIUM_POLICY_TYPES:
        return
    for message in judged(violations(args.resource_type, args.props)):
        report_violation(message, args.urn)


POLICY = ResourceValidationPolicy(
    name=NAME,
    description=(
        "CiliumNetworkPolicy HTTP/gRPC rules name an allowed verb and an anchored path "
        "(ADR-013, Cilium L7 examples)."
    ),
    validate=validate,
)
