"""The network-policy intent: which workloads exist and which flows between them are allowed.

One model for every stack (ADR-013, "Mitigations": standard L3/L4 NetworkPolicies work everywhere);
the renderer decides from the capability profile how much of each flow a stack can enforce.

Every intent (namespace, workload, flow) names itself in its error messages, so a typo in a stack
file points at the flow to fix, not at `flows.3.ports.0`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from importlib import resources
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    StrictBool,
    Tag,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from cnistack.flavours import FlavourName
from cnistack.key_hints import allowed_keys, did_you_mean
from reachability import k8s_names
from reachability.k8s_names import NAMESPACE_NAME_LABEL

Protocol = Literal["TCP", "UDP", "SCTP"]
AppProtocol = Literal["http", "grpc"]
HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# strict: YAML `port: true` or `port: "80"` is a typo, not a port.
PortNumber = Annotated[int, Field(strict=True, ge=1, le=65535)]


def _check_label_value(value: str) -> str:
    problem = k8s_names.label_value_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# Values checked per item, so an error is located at `labels.KEY` as the analyzer locates it.
Labels = Mapping[str, Annotated[str, AfterValidator(_check_label_value)]]

DEFAULT_MODEL_RESOURCE = "ai-platform.yaml"
# Keys the renderer owns on Namespace objects; a model may not set them.
RESERVED_LABEL_PREFIXES = ("cnistack.io/",)
RESERVED_LABEL_KEYS = (NAMESPACE_NAME_LABEL, "app.kubernetes.io/managed-by")

_GRPC_SERVICE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_GRPC_METHOD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VALUE_ERROR_PREFIX = "Value error, "


class _Frozen(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _summarise(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    errors = exc.errors()
    parts = []
    for err in errors:
        loc = tuple(err["loc"])
        # A list whose items failed also reports "too short"; the item's error is the real one.
        if err["type"] == "too_short" and any(
            tuple(other["loc"])[: len(loc)] == loc and len(other["loc"]) > len(loc)
            for other in errors
        ):
            continue
        msg = str(err["msg"]).removeprefix(_VALUE_ERROR_PREFIX)
        if err["type"] == "extra_forbidden" and model is not None:
            msg = "unknown key" + did_you_mean(str(loc[-1]), allowed_keys(model, loc[:-1]))
        where = _format_loc(loc)
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)


def _named(
    label: str,
    data: Any,
    handler: ModelWrapValidatorHandler[Any],
    model: type[BaseModel] | None = None,
) -> Any:
    """Run the inner validation and prefix any error with the intent's name."""
    try:
        return handler(data)
    except ValidationError as exc:
        raise ValueError(f"{label}: {_summarise(exc, model)}") from None


def _raw_name(data: Any, key: str = "name") -> str | None:
    if isinstance(data, Mapping):
        value = data.get(key)
        return value if isinstance(value, str) else None
    return None


def _check_dns_label(value: str) -> str:
    problem = k8s_names.dns1123_label_error(value)
    if problem:
        raise ValueError(f"{k8s_names.shown(value)}: {problem}")
    return value


def _check_labels(labels: Labels) -> Labels:
    for key in labels:
        problem = k8s_names.label_key_problem(key)
        if problem:
            raise ValueError(problem)
    return labels


# --- namespaces -------------------------------------------------------------------------------


class Namespace(_Frozen):
    name: str
    # Holds C4-C5 data (ADR-013, "Context"); rendered as the `cnistack.io/sensitive` label.
    sensitive: StrictBool = False
    # Unmanaged namespaces (kube-system) can be flow endpoints but get no Namespace object and no
    # isolation: a default-deny there would cut the cluster's own components off.
    managed: StrictBool = True
    labels: Labels = Field(default_factory=dict)

    _name_is_label = field_validator("name")(_check_dns_label)

    @field_validator("labels")
    @classmethod
    def _labels_valid_and_unreserved(cls, labels: Labels) -> Labels:
        _check_labels(labels)
        for key in labels:
            if key in RESERVED_LABEL_KEYS or key.startswith(RESERVED_LABEL_PREFIXES):
                raise ValueError(f"label {key!r} is set by the renderer, not by the model")
        return labels

    @model_validator(mode="after")
    def _managed_not_system(self) -> Self:
        if self.managed and self.name.startswith("kube-"):
            raise ValueError(
                "kube-* namespaces belong to the cluster; declare it with managed: false"
            )
        if self.sensitive and not self.managed:
            raise ValueError("a sensitive namespace must be managed (isolated by default-deny)")
        return self

    # Last, so it wraps every other validator of the class and names the intent.
    @model_validator(mode="wrap")
    @classmethod
    def _name_errors(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        name = _raw_name(data)
        result: Self = _named(f"namespace {name!r}" if name else "namespace", data, handler, cls)
        return result


# --- workloads --------------------------------------------------------------------------------


class NamedPort(_Frozen):
    name: str
    port: PortNumber
    protocol: Protocol = "TCP"
    app_protocol: AppProtocol | None = Field(default=None, alias="appProtocol")

    @field_validator("name")
    @classmethod
    def _iana_name(cls, name: str) -> str:
        problem = k8s_names.port_name_error(name)
        if problem:
            raise ValueError(f"{k8s_names.shown(name)}: {problem}")
        return name

    @model_validator(mode="after")
    def _app_protocol_over_tcp(self) -> Self:
        if self.app_protocol and self.protocol != "TCP":
            raise ValueError(
                f"port {self.name!r}: appProtocol {self.app_protocol} needs TCP, "
                f"got {self.protocol}"
            )
        return self

    def __str__(self) -> str:
        return f"{self.protocol}/{self.port}"


class WorkloadRef(_Frozen):
    """`namespace/workload` in YAML."""

    namespace: str
    workload: str

    @model_validator(mode="before")
    @classmethod
    def _parse_slash_form(cls, data: Any) -> Any:
        if isinstance(data, str):
            namespace, slash, workload = data.partition("/")
            if not slash or not namespace or not workload or "/" in workload:
                raise ValueError(f"expected 'namespace/workload', got {data!r}")
            return {"namespace": namespace, "workload": workload}
        return data

    _names_are_labels = field_validator("namespace", "workload")(_check_dns_label)

    @model_serializer
    def _as_slash_form(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.workload}"


class Workload(_Frozen):
    name: str
    namespace: str
    labels: Labels = Field(min_length=1)
    ports: tuple[NamedPort, ...] = ()

    _names_are_labels = field_validator("name", "namespace")(_check_dns_label)
    _labels_valid = field_validator("labels")(_check_labels)

    @model_validator(mode="after")
    def _ports_unique(self) -> Self:
        names: set[str] = set()
        numbers: set[tuple[int, str]] = set()
        for port in self.ports:
            if port.name in names:
                raise ValueError(f"port name {port.name!r} is declared twice")
            if (port.port, port.protocol) in numbers:
                raise ValueError(f"port {port} is declared twice")
            names.add(port.name)
            numbers.add((port.port, port.protocol))
        return self

    @property
    def ref(self) -> WorkloadRef:
        return WorkloadRef(namespace=self.namespace, workload=self.name)

    def port(self, number: int, protocol: str) -> NamedPort | None:
        return next((p for p in self.ports if (p.port, p.protocol) == (number, protocol)), None)

    # Last, so it wraps every other validator of the class and names the intent.
    @model_validator(mode="wrap")
    @classmethod
    def _name_errors(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        name, namespace = _raw_name(data), _raw_name(data, "namespace")
        label = f"workload '{namespace}/{name}'" if name and namespace else "workload"
        if name and not namespace:
            label = f"workload {name!r}"
        result: Self = _named(label, data, handler, cls)
        return result


# --- flows ------------------------------------------------------------------------------------


class NamespaceRef(_Frozen):
    """Every pod of a namespace: `{namespace: ai-apps}` in YAML."""

    namespace: str

    _name_is_label = field_validator("namespace")(_check_dns_label)

    def __str__(self) -> str:
        return f"namespace {self.namespace}"


class HostNetworkRef(_Frozen):
    """Processes on the nodes' network namespace, attributed to a namespace: `{hostNetwork: NS}`.

    The OpenShift router on bare metal publishes with `HostNetwork` (IngressController
    endpointPublishingStrategy), so its packets leave from the node's address and carry no pod
    identity: a pod selector cannot match them. Standard NetworkPolicy on OpenShift admits them
    through the flavour's namespace label; Cilium sees them as the `host`/`remote-node` entities.
    Only a source: NetworkPolicy does not apply to the host network namespace (OpenShift
    "About network policy"), so there is no egress side to render.
    """

    host_network: str = Field(alias="hostNetwork")

    _name_is_label = field_validator("host_network")(_check_dns_label)

    @property
    def namespace(self) -> str:
        return self.host_network

    def __str__(self) -> str:
        return f"host network of {self.host_network}"


def _peer_kind(value: Any) -> str | None:
    if isinstance(value, str | WorkloadRef):
        return "workload"
    if isinstance(value, NamespaceRef):
        return "namespace"
    if isinstance(value, HostNetworkRef):
        return "hostNetwork"
    if isinstance(value, Mapping):
        if "hostNetwork" in value or "host_network" in value:
            return "hostNetwork"
        return "workload" if "workload" in value else "namespace"
    return None


Peer = Annotated[
    Annotated[WorkloadRef, Tag("workload")]
    | Annotated[NamespaceRef, Tag("namespace")]
    | Annotated[HostNetworkRef, Tag("hostNetwork")],
    Discriminator(
        _peer_kind,
        custom_error_type="invalid_peer",
        custom_error_message=(
            "expected 'namespace/workload', {namespace: NAME} or {hostNetwork: NAMESPACE}"
        ),
    ),
]


class FlowPort(_Frozen):
    port: PortNumber
    protocol: Protocol = "TCP"

    def __str__(self) -> str:
        return f"{self.protocol}/{self.port}"


class HttpRule(_Frozen):
    """One allowed request. Method and path are literal; the renderer anchors and escapes them."""

    method: HttpMethod
    path: str = Field(min_length=1)

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"path {path!r} must start with '/'")
        if any(ch.isspace() for ch in path):
            raise ValueError(f"path {path!r} must not contain whitespace")
        return path

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


class GrpcRule(_Frozen):
    """One allowed RPC; gRPC is HTTP/2 `POST /<package.Service>/<Method>`."""

    service: str
    method: str

    @field_validator("service")
    @classmethod
    def _dotted_service(cls, service: str) -> str:
        if not _GRPC_SERVICE.fullmatch(service):
            raise ValueError(f"service {service!r} is not a fully-qualified gRPC service name")
        return service

    @field_validator("method")
    @classmethod
    def _method_identifier(cls, method: str) -> str:
        if not _GRPC_METHOD.fullmatch(method):
            raise ValueError(f"method {method!r} is not a gRPC method name")
        return method

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.method}"

    def __str__(self) -> str:
        return f"gRPC {self.service}/{self.method}"


class Flow(_Frozen):
    name: str
    source: Peer = Field(alias="from")
    destination: WorkloadRef = Field(alias="to")
    ports: tuple[FlowPort, ...] = Field(min_length=1)
    http: tuple[HttpRule, ...] = ()
    grpc: tuple[GrpcRule, ...] = ()
    # Cluster flavours this flow exists on (empty: all). Traefik ships with K3s only, the router
    # with OpenShift only: a stack renders only the flows of its own flavour.
    flavours: tuple[FlavourName, ...] = ()

    _name_is_label = field_validator("name")(_check_dns_label)

    def exists_on(self, flavour: FlavourName) -> bool:
        return not self.flavours or flavour in self.flavours

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        seen: set[FlowPort] = set()
        for port in self.ports:
            if port in seen:
                raise ValueError(f"port {port} is listed twice")
            seen.add(port)
        if self.http and self.grpc:
            raise ValueError("give either http or grpc rules, not both")
        if self.needs_l7_policy:
            for port in self.ports:
                if port.protocol != "TCP":
                    raise ValueError(
                        f"{self.l7_kind} rules need TCP ports, got {port} "
                        "(L7 rules only apply to TCP)"
                    )
        return self

    @property
    def needs_l7_policy(self) -> bool:
        """The flow carries HTTP or gRPC rules: only an enforcer with `l7_policy` applies them."""
        return bool(self.http or self.grpc)

    @property
    def l7_kind(self) -> AppProtocol | None:
        if self.http:
            return "http"
        return "grpc" if self.grpc else None

    @property
    def l7_rules(self) -> tuple[str, ...]:
        """Human-readable rules, e.g. `GET /api/v1/models` or `gRPC pkg.Svc/Method`."""
        return tuple(str(rule) for rule in (*self.http, *self.grpc))

    # Last, so it wraps every other validator of the class and names the intent.
    @model_validator(mode="wrap")
    @classmethod
    def _name_errors(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        name = _raw_name(data)
        result: Self = _named(f"flow {name!r}" if name else "flow", data, handler, cls)
        return result


# --- the whole model --------------------------------------------------------------------------


def _covers(broad: WorkloadRef | NamespaceRef | HostNetworkRef, narrow: object) -> bool:
    """Whether every pod matched by `narrow` is also matched by `broad`."""
    if isinstance(broad, NamespaceRef):
        return (
            isinstance(narrow, WorkloadRef | NamespaceRef) and broad.namespace == narrow.namespace
        )
    return broad == narrow


class PolicyModel(_Frozen):
    namespaces: tuple[Namespace, ...] = ()
    workloads: tuple[Workload, ...] = ()
    flows: tuple[Flow, ...] = ()

    @model_validator(mode="after")
    def _references_resolve(self) -> Self:
        problems = [
            *self._namespace_problems(),
            *self._workload_problems(),
            *self._flow_problems(),
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _namespace_problems(self) -> list[str]:
        seen: set[str] = set()
        problems = []
        for ns in self.namespaces:
            if ns.name in seen:
                problems.append(f"namespace {ns.name!r} is declared twice")
            seen.add(ns.name)
        return problems

    def _workload_problems(self) -> list[str]:
        declared = {ns.name for ns in self.namespaces}
        seen: set[WorkloadRef] = set()
        problems = []
        for wl in self.workloads:
            if wl.namespace not in declared:
                problems.append(f"workload '{wl.ref}': unknown namespace {wl.namespace!r}")
            if wl.ref in seen:
                problems.append(f"workload '{wl.ref}' is declared twice")
            seen.add(wl.ref)
        for a in self.workloads:
            for b in self.workloads:
                if a is b or a.namespace != b.namespace or a.ref == b.ref:
                    continue
                if dict(a.labels).items() <= dict(b.labels).items():
                    problems.append(
                        f"workload '{a.ref}': its labels {dict(a.labels)} also select the pods "
                        f"of workload '{b.ref}'; give each workload a distinguishing label"
                    )
        return problems

    def _flow_problems(self) -> list[str]:
        namespaces = {ns.name: ns for ns in self.namespaces}
        workloads = {wl.ref: wl for wl in self.workloads}
        seen: set[str] = set()
        problems = []
        for flow in self.flows:
            label = f"flow {flow.name!r}"
            if flow.name in seen:
                problems.append(f"{label} is declared twice")
            seen.add(flow.name)
            src = flow.source
            if isinstance(src, HostNetworkRef):
                if src.namespace not in namespaces:
                    problems.append(f"{label}: unknown namespace {src.namespace!r} in from")
                elif namespaces[src.namespace].managed:
                    problems.append(
                        f"{label}: hostNetwork namespace {src.namespace!r} must be managed: false "
                        "(host-network pods get no NetworkPolicy; isolation cannot apply)"
                    )
            elif isinstance(src, NamespaceRef):
                if src.namespace not in namespaces:
                    problems.append(f"{label}: unknown namespace {src.namespace!r} in from")
            elif src not in workloads:
                problems.append(f"{label}: unknown workload '{src}' in from")
            dst = workloads.get(flow.destination)
            if dst is None:
                problems.append(f"{label}: unknown workload '{flow.destination}' in to")
                continue
            problems.extend(self._port_problems(label, flow, dst))
            src_ns, dst_ns = namespaces.get(src.namespace), namespaces.get(dst.namespace)
            if src_ns and dst_ns and not (src_ns.managed or dst_ns.managed):
                problems.append(f"{label}: neither side is in a managed namespace")
        problems.extend(self._bypass_problems())
        return problems

    @staticmethod
    def _port_problems(label: str, flow: Flow, dst: Workload) -> list[str]:
        problems = []
        for fp in flow.ports:
            served = dst.port(fp.port, fp.protocol)
            if served is None:
                problems.append(f"{label}: '{dst.ref}' does not declare port {fp}")
            elif flow.l7_kind and served.app_protocol != flow.l7_kind:
                problems.append(
                    f"{label}: {flow.l7_kind} rules on port {fp} of '{dst.ref}', whose port "
                    f"{served.name!r} has appProtocol {served.app_protocol}"
                )
        return problems

    def _bypass_problems(self) -> list[str]:
        # Allow rules are additive: a whole-port L4 grant to the same peer would silently defeat
        # the L7 rules of another flow on that port.
        problems = []
        for l7 in (f for f in self.flows if f.needs_l7_policy):
            for l4 in (f for f in self.flows if not f.needs_l7_policy):
                shared = set(l7.ports) & set(l4.ports)
                if l4.destination == l7.destination and shared and _covers(l4.source, l7.source):
                    port = min(shared, key=lambda p: (p.protocol, p.port))
                    problems.append(
                        f"flow {l4.name!r}: opens the whole port {port} of '{l7.destination}' "
                        f"to {l7.source}, which defeats the L7 rules of flow {l7.name!r}"
                    )
        return problems

    # --- lookups used by the renderer ---

    def namespace(self, name: str) -> Namespace:
        return next(ns for ns in self.namespaces if ns.name == name)

    def workload(self, ref: WorkloadRef) -> Workload:
        return next(wl for wl in self.workloads if wl.ref == ref)

    @property
    def managed_namespaces(self) -> tuple[Namespace, ...]:
        return tuple(ns for ns in self.namespaces if ns.managed)

    def is_managed(self, namespace: str) -> bool:
        return self.namespace(namespace).managed


def parse_policy_model(data: Mapping[str, Any]) -> PolicyModel:
    """Validate a `networkPolicy` mapping (stack config or YAML file) into a `PolicyModel`."""
    return PolicyModel.model_validate(dict(data))


@functools.cache
def default_policy_model() -> PolicyModel:
    """The AI Security Platform's flows (ADR-013 examples plus what they need to work)."""
    text = resources.files("cnistack.netpol").joinpath(DEFAULT_MODEL_RESOURCE).read_text("utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, Mapping):
        raise ValueError(f"{DEFAULT_MODEL_RESOURCE}: expected a mapping at the top level")
    return parse_policy_model(data)
