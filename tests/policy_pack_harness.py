"""Run the ADR-013 CrossGuard pack (`policies/`) on plain resource descriptions, engine-free.

`evaluate_pack(resources, config)` does what `pulumi preview --policy-pack policies
--policy-pack-config <config>` does with the pack, without an engine:

1. reconciles the pack config like the engine (pulumi/pulumi pkg/resource/analyzer/config.go):
   schema defaults, then the `"all"` enforcement level, then each policy's own entry, then JSON
   schema validation of each policy's properties (an invalid config raises `PolicyConfigError`,
   as the CLI refuses to run);
2. sends every resource's properties over the wire the way the engine does (a protobuf `Struct`:
   numbers become floats) and wraps them in pulumi_policy's unknown-checking proxy;
3. runs every resource validation on every resource (`Analyze`), then every stack validation on
   the whole list (`AnalyzeStack`), at each policy's configured enforcement level (`disabled`
   skipped, `remediate` reported as `mandatory`), and turns an `UnknownValueError` escaping a
   policy into the advisory "can't run policy" diagnostic the SDK emits.

`run_policy(policy, resources, properties)` runs a single policy the same way, for unit tests.
A value the engine would not know during preview is written as `UNKNOWN` (or the other sentinels
re-exported below) in `PackResource.props`. Both run as a preview by default; `preview=False` runs
them as the update half of `pulumi up`, where the language host sets `PULUMI_DRY_RUN=false` in the
pack's environment (see policies/adr013_guard/visibility.py).

The module puts `policies/` on `sys.path` so `adr013_guard` imports as it does inside the pack.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from google.protobuf import json_format, struct_pb2

POLICIES_DIR = Path(__file__).resolve().parent.parent / "policies"
if str(POLICIES_DIR) not in sys.path:
    sys.path.insert(0, str(POLICIES_DIR))

from adr013_guard import PACK_ENFORCEMENT_LEVEL, PACK_NAME, POLICIES  # noqa: E402
from adr013_guard.visibility import DRY_RUN_ENV  # noqa: E402
from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties  # noqa: E402
from pulumi_policy.policy import _NotApplicableError  # noqa: E402
from pulumi_policy.proxy import (  # noqa: E402
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
    unknown_checking_proxy,
)

__all__ = [
    "CONFIG_DIR",
    "PACK_NAME",
    "POLICIES",
    "UNKNOWN",
    "UNKNOWN_BOOLEAN_VALUE",
    "UNKNOWN_NUMBER_VALUE",
    "UNKNOWN_OBJECT_VALUE",
    "PackResource",
    "PolicyConfigError",
    "Violation",
    "changed",
    "evaluate_pack",
    "load_pack_config",
    "mandatory",
    "policy_named",
    "reconcile_config",
    "resource_args",
    "run_policy",
    "stack_args",
]

CONFIG_DIR = POLICIES_DIR / "config"
UNKNOWN = UNKNOWN_STRING_VALUE
PROJECT = "cnistack"
STACK = "policy-test"
# What the SDK reports as the pack version (the CLI shows PulumiPolicy.yaml's instead).
_SDK_PACK_VERSION = "0.0.1"


@dataclass(frozen=True)
class PackResource:
    """A resource as the engine sees it: type token, name, input properties (camelCase)."""

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""
    # The explicit provider resource it is registered with (`pulumi:providers:kubernetes`), if any.
    provider: PackResource | None = None

    def __post_init__(self) -> None:
        if not self.urn:
            object.__setattr__(
                self, "urn", f"urn:pulumi:{STACK}::{PROJECT}::{self.type}::{self.name}"
            )


@dataclass(frozen=True)
class Violation:
    """One diagnostic. `message` is the policy's sentence; the CLI prints it after the
    policy's description."""

    policy_name: str
    message: str
    enforcement_level: EnforcementLevel
    urn: str


class PolicyConfigError(ValueError):
    """The pack config would make `pulumi preview --policy-pack-config` refuse to start."""


@dataclass(frozen=True)
class _PolicyConfig:
    enforcement_level: EnforcementLevel
    properties: Mapping[str, Any] = field(default_factory=dict)


# --- config ------------------------------------------------------------------------------------


def load_pack_config(name: str) -> dict[str, Any]:
    """`policies/config/<name>.json`, e.g. `load_pack_config("production")`."""
    loaded: dict[str, Any] = json.loads((CONFIG_DIR / f"{name}.json").read_text())
    return loaded


def _level(key: str, value: object) -> EnforcementLevel:
    try:
        return EnforcementLevel(value)
    except ValueError:
        raise PolicyConfigError(
            f"parsing enforcement level for {key!r}: {value!r} is not a valid enforcement level"
        ) from None


def _parse(config: Mapping[str, Any]) -> dict[str, tuple[EnforcementLevel | None, dict[str, Any]]]:
    parsed: dict[str, tuple[EnforcementLevel | None, dict[str, Any]]] = {}
    for key, value in config.items():
        if isinstance(value, str):
            parsed[key] = (_level(key, value), {})
        elif isinstance(value, Mapping):
            properties = dict(value)
            raw_level = properties.pop("enforcementLevel", None)
            parsed[key] = (None if raw_level is None else _level(key, raw_level), properties)
        else:
            raise PolicyConfigError(f"parsing {key!r}: {value!r} must be a string or object")
    return parsed


def _schema(policy: Policy) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    if policy.config_schema is not None:
        schema["properties"] = dict(policy.config_schema.properties)
        if policy.config_schema.required:
            schema["required"] = list(policy.config_schema.required)
    return schema


def reconcile_config(
    config: Mapping[str, Any], policies: Sequence[Policy] = POLICIES
) -> dict[str, _PolicyConfig]:
    """Each policy's enforcement level and properties, as the engine computes them."""
    result: dict[str, _PolicyConfig] = {}
    for policy in policies:
        defaults = {
            key: copy.deepcopy(prop["default"])
            for key, prop in _schema(policy).get("properties", {}).items()
            if "default" in prop
        }
        level = policy.enforcement_level or PACK_ENFORCEMENT_LEVEL
        result[policy.name] = _PolicyConfig(level, defaults)
    parsed = _parse(config)
    all_level = parsed.get("all", (None, {}))[0]
    if all_level is not None:
        result = {name: _PolicyConfig(all_level, c.properties) for name, c in result.items()}
    for name, (level, properties) in parsed.items():
        if name not in result:
            continue  # the engine carries unknown keys along; no policy ever reads them
        current = result[name]
        result[name] = _PolicyConfig(
            level or current.enforcement_level, {**current.properties, **properties}
        )
    errors = [
        f"{policy.name}: {error.message}"
        for policy in policies
        for error in jsonschema.Draft7Validator(_schema(policy)).iter_errors(
            dict(result[policy.name].properties)
        )
    ]
    if errors:
        raise PolicyConfigError("; ".join(errors))
    return result


# --- the wire ----------------------------------------------------------------------------------


def _over_the_wire(value: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-like properties after a protobuf Struct round trip (ints arrive as floats)."""
    struct = struct_pb2.Struct()
    struct.update(dict(value))
    result: dict[str, Any] = json_format.MessageToDict(struct)
    return result


def _engine_props(props: Mapping[str, Any]) -> Mapping[str, Any]:
    proxied: Mapping[str, Any] = unknown_checking_proxy(
        deserialize_properties(_over_the_wire(props))
    )
    return proxied


def _provider(resource: PackResource) -> PolicyProviderResource | None:
    """What the SDK builds from the request's `provider` field (type, inputs, URN, name)."""
    p = resource.provider
    return (
        None if p is None else PolicyProviderResource(p.type, _engine_props(p.props), p.urn, p.name)
    )


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


@dataclass(frozen=True)
class _Report:
    message: str
    urn: str | None
    # True for the SDK's "can't run policy ... during preview" note, which is always advisory.
    unknown: bool = False


@contextmanager
def _phase(preview: bool) -> Iterator[None]:
    """`PULUMI_DRY_RUN` as the Python language host sets it for the pack's process."""
    saved = os.environ.get(DRY_RUN_ENV)
    os.environ[DRY_RUN_ENV] = "true" if preview else "false"
    try:
        yield
    finally:
        if saved is None:
            del os.environ[DRY_RUN_ENV]
        else:
            os.environ[DRY_RUN_ENV] = saved


def _run(policy: Policy, args: ResourceValidationArgs | StackValidationArgs) -> list[_Report]:
    reported: list[_Report] = []

    def report_violation(message: str, urn: str | None = None) -> None:
        reported.append(_Report(message, urn))

    try:
        result = policy.validate(args, report_violation)  # type: ignore[attr-defined]
        if inspect.isawaitable(result):
            asyncio.run(_awaited(result))
    except UnknownValueError as error:
        message = (
            f"can't run policy '{policy.name}' from policy pack "
            f"'{PACK_NAME}@v{_SDK_PACK_VERSION}' during preview: {error.message}"
        )
        reported.append(_Report(message, "", unknown=True))
    except _NotApplicableError:
        pass
    return reported


async def _awaited(result: Any) -> None:
    await result


def resource_args(resource: PackResource, properties: Mapping[str, Any]) -> ResourceValidationArgs:
    """The `ResourceValidationArgs` the SDK builds for this resource and policy config."""
    # The SDK hands the policy None (read back as {}) when its config has no properties.
    config = _over_the_wire(properties) if properties else None
    return ResourceValidationArgs(
        resource.type,
        _engine_props(resource.props),
        resource.urn,
        resource.name,
        _options(),
        _provider(resource),
        config,
        {},
    )


def stack_args(
    resources: Sequence[PackResource], properties: Mapping[str, Any]
) -> StackValidationArgs:
    """The `StackValidationArgs` the SDK builds for these resources and policy config."""
    config = _over_the_wire(properties) if properties else None
    policy_resources = [
        PolicyResource(
            r.type, _engine_props(r.props), r.urn, r.name, _options(), _provider(r), None, [], {}
        )
        for r in resources
    ]
    return StackValidationArgs(policy_resources, config, {})


def _diagnostics(
    policy: Policy, resources: Sequence[PackResource], properties: Mapping[str, Any]
) -> list[_Report]:
    if isinstance(policy, ResourceValidationPolicy):
        # For a resource validation the engine reports the analysed resource's URN.
        return [
            _Report(r.message, "" if r.unknown else resource.urn, r.unknown)
            for resource in resources
            for r in _run(policy, resource_args(resource, properties))
        ]
    if isinstance(policy, StackValidationPolicy):
        return [
            _Report(r.message, r.urn or "", r.unknown)
            for r in _run(policy, stack_args(resources, properties))
        ]
    return []


# --- public API --------------------------------------------------------------------------------


def evaluate_pack(
    resources: Sequence[PackResource], config: Mapping[str, Any], *, preview: bool = True
) -> list[Violation]:
    """Every diagnostic the assembled pack reports for these resources under this pack config."""
    with _phase(preview):
        return _evaluate_pack(resources, config)


def _evaluate_pack(resources: Sequence[PackResource], config: Mapping[str, Any]) -> list[Violation]:
    reconciled = reconcile_config(config)
    violations: list[Violation] = []
    ordered = [p for p in POLICIES if isinstance(p, ResourceValidationPolicy)] + [
        p for p in POLICIES if isinstance(p, StackValidationPolicy)
    ]
    for policy in ordered:
        policy_config = reconciled[policy.name]
        level = policy_config.enforcement_level
        if level is EnforcementLevel.DISABLED:
            continue
        if level is EnforcementLevel.REMEDIATE:
            level = EnforcementLevel.MANDATORY
        violations.extend(
            Violation(
                policy.name,
                report.message,
                EnforcementLevel.ADVISORY if report.unknown else level,
                report.urn or "",
            )
            for report in _diagnostics(policy, resources, policy_config.properties)
        )
    return violations


def mandatory(violations: Sequence[Violation]) -> list[Violation]:
    return [v for v in violations if v.enforcement_level is EnforcementLevel.MANDATORY]


def policy_named(name: str) -> Policy:
    policies: Sequence[Policy] = POLICIES
    for policy in policies:
        if policy.name == name:
            return policy
    raise KeyError(name)


def run_policy(
    policy: Policy | str,
    resources: PackResource | Sequence[PackResource],
    properties: Mapping[str, Any] | None = None,
    *,
    preview: bool = True,
) -> list[str]:
    """The messages one policy reports, with its config `properties` over its schema defaults."""
    if isinstance(policy, str):
        policy = policy_named(policy)
    if isinstance(resources, PackResource):
        resources = [resources]
    reconciled = reconcile_config({policy.name: dict(properties or {})}, [policy])
    with _phase(preview):
        diagnostics = _diagnostics(policy, resources, reconciled[policy.name].properties)
    return [r.message for r in diagnostics]


_DELETE = object()


def changed(resource: PackResource, path: str, value: Any = _DELETE) -> PackResource:
    """A copy of `resource` with one property changed, e.g.
    `changed(release, "values.encryption.enabled", False)`; without `value` the key is removed.
    Numeric path parts index lists (`spec.ingress.0.toPorts`)."""
    props = copy.deepcopy(dict(resource.props))
    *parents, last = path.split(".")
    target: Any = props
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
    if isinstance(target, list):
        if value is _DELETE:
            del target[int(last)]
        else:
            target[int(last)] = value
    elif value is _DELETE:
        target.pop(last, None)
    else:
        target[last] = value
    return PackResource(resource.type, resource.name, props)


# --- compliant examples --------------------------------------------------------------------------
# Hand-built stacks that satisfy every policy; tests start from them and change one field.

RELEASE = "kubernetes:helm.sh/v3:Release"
NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
CILIUM_NETWORK_POLICY = "kubernetes:cilium.io/v2:CiliumNetworkPolicy"


OPENSHIFT_VALUES: dict[str, Any] = {
    "cni": {"binPath": "/var/lib/cni/bin", "confPath": "/var/run/multus/cni/net.d",
            "exclusive": False},
    "ipam": {"mode": "cluster-pool", "operator": {
        "clusterPoolIPv4PodCIDRList": ["10.128.0.0/14"], "clusterPoolIPv4MaskSize": 23}},
}  # fmt: skip


def cilium_release(*, openshift: bool = False) -> PackResource:
    """A compliant Cilium release; `openshift=True` adds Multus's CNI paths and the IPAM pool."""
    release = _cilium_release()
    if openshift:
        release.props["values"].update(copy.deepcopy(OPENSHIFT_VALUES))
    return release


def _cilium_release() -> PackResource:
    return PackResource(
        RELEASE,
        "cilium",
        {
            "name": "cilium",
            "chart": "cilium",
            "version": "1.19.7",
            "namespace": "kube-system",
            "repositoryOpts": {"repo": "https://helm.cilium.io/"},
            "values": {
                "kubeProxyReplacement": True,
                "k8sServiceHost": "api.example",
                "k8sServicePort": 6443,
                "encryption": {"enabled": True, "type": "wireguard", "nodeEncryption": True},
                "hubble": {
                    "enabled": True,
                    # No secrets in the audit trail (cilium-hubble-redact).
                    "redact": {
                        "enabled": True,
                        "http": {
                            "urlQuery": True,
                            "userInfo": True,
                            "headers": {
                                "deny": [
                                    "Authorization",
                                    "Proxy-Authorization",
                                    "Cookie",
                                    "Set-Cookie",
                                ]
                            },
                        },
                        "kafka": {"apiKey": True},
                    },
                    "relay": {"enabled": True},
                    "ui": {"enabled": True},
                    "tls": {"auto": {"method": "cronJob"}},
                    "metrics": {"enabled": ["dns", "drop", "tcp", "flow", "http"]},
                    # The audit trail (cilium-hubble-flow-export).
                    "export": {
                        "static": {
                            "fileMaxSizeMb": 50,
                            "fileMaxBackups": 10,
                            "enabled": True,
                            "filePath": "/var/run/cilium/hubble/events.log",
                            "allowList": [
                                '{"verdict":["DROPPED","ERROR"]}',
                                '{"event_type":[{"type":129}]}',
                            ],
                        },
                    },
                },
                "prometheus": {"enabled": True},
            },
        },
    )


def namespace(name: str, *, sensitive: bool = False) -> PackResource:
    labels = {"kubernetes.io/metadata.name": name}
    if sensitive:
        labels["cnistack.io/sensitive"] = "true"
    return PackResource(NAMESPACE, name, {"metadata": {"name": name, "labels": labels}})


def network_policy(namespace_: str, name: str, spec: Mapping[str, Any]) -> PackResource:
    return PackResource(
        NETWORK_POLICY,
        f"{namespace_}-{name}",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace_},
            "spec": dict(spec),
        },
    )


def default_deny(namespace_: str) -> PackResource:
    return network_policy(
        namespace_, "default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    )


def allow_dns(namespace_: str, *, openshift: bool = False) -> PackResource:
    """Egress to cluster DNS: kube-dns on 53, or OpenShift's dns-default pods on 5353."""
    dns_namespace, labels, port = (
        ("openshift-dns", {"dns.operator.openshift.io/daemonset-dns": "default"}, 5353)
        if openshift
        else ("kube-system", {"k8s-app": "kube-dns"}, 53)
    )
    return network_policy(
        namespace_,
        "allow-dns",
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": dns_namespace}
                            },
                            "podSelector": {"matchLabels": labels},
                        }
                    ],
                    "ports": [
                        {"port": port, "protocol": "UDP"},
                        {"port": port, "protocol": "TCP"},
                    ],
                }
            ],
        },
    )


def allow_postgresql() -> PackResource:
    """ADR-013's L3/L4 example: storage admits ai-apps on 5432 only."""
    return network_policy(
        "storage",
        "allow-postgresql",
        {
            "podSelector": {"matchLabels": {"app": "postgresql"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "ai-apps"}
                            }
                        }
                    ],
                    "ports": [{"port": 5432, "protocol": "TCP"}],
                }
            ],
        },
    )


def cilium_policy(namespace_: str, name: str, spec: Mapping[str, Any]) -> PackResource:
    return PackResource(
        CILIUM_NETWORK_POLICY,
        f"{namespace_}-{name}",
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": name, "namespace": namespace_},
            "spec": dict(spec),
        },
    )


def _l7_ingress(source: str, port: str, http: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "fromEndpoints": [{"matchLabels": {"app": source}}],
        "toPorts": [{"ports": [{"port": port, "protocol": "TCP"}], "rules": {"http": http}}],
    }


def allow_api_readonly() -> PackResource:
    """ADR-013's L7 HTTP example, with anchored expressions."""
    return cilium_policy(
        "ai-apps",
        "allow-api-readonly",
        {
            "endpointSelector": {"matchLabels": {"app": "api-server"}},
            "ingress": [
                _l7_ingress(
                    "frontend",
                    "8080",
                    [
                        {"method": "^GET$", "path": "^/api/v1/models$"},
                        {"method": "^GET$", "path": "^/api/v1/health$"},
                    ],
                )
            ],
        },
    )


def allow_inference_grpc() -> PackResource:
    """ADR-013's L7 gRPC example, with the service's dots escaped."""
    return cilium_policy(
        "ai-apps",
        "allow-inference-grpc",
        {
            "endpointSelector": {"matchLabels": {"app": "vllm"}},
            "ingress": [
                _l7_ingress(
                    "open-webui",
                    "8001",
                    [{"method": "^POST$", "path": r"^/inference\.InferenceService/Generate$"}],
                )
            ],
        },
    )


def kubernetes_provider() -> PackResource:
    return PackResource("pulumi:providers:kubernetes", "k8s", {"kubeconfig": UNKNOWN})


def isolated_namespaces(*, openshift: bool = False) -> list[PackResource]:
    resources: list[PackResource] = []
    for name, sensitive in (("ai-apps", False), ("storage", True)):
        resources += [
            namespace(name, sensitive=sensitive),
            default_deny(name),
            allow_dns(name, openshift=openshift),
        ]
    return [*resources, allow_postgresql()]


def production_stack(*, openshift: bool = False) -> list[PackResource]:
    """A compliant production stack; `openshift=True` resolves through OpenShift's DNS, as
    policies/config/production.json demands."""
    return [
        kubernetes_provider(),
        cilium_release(openshift=openshift),
        *isolated_namespaces(openshift=openshift),
        allow_api_readonly(),
        allow_inference_grpc(),
    ]


def homelab_stack() -> list[PackResource]:
    k3d = PackResource(
        "command:local:Command",
        "k3d-cluster",
        {"create": "k3d cluster create cnistack --servers 1 --agents 2"},
    )
    return [k3d, kubernetes_provider(), *isolated_namespaces()]
