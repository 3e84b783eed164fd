"""Stack config as one typed model, validated once at the edge.

Every default lives here (STYLE.md principle 4). What must be chosen per
environment has no default: the CNI, the cluster kind, and for an existing
cluster with kube-proxy replacement the API server's address (ADR-013,
"Production Enterprise (GTT) : Cilium").

The raw input is the project's config as Pulumi hands it over (scalars as strings,
objects as JSON strings) or as a stack file holds it (native YAML); both go through
:func:`parse_stack_config`, so the program, the ``render`` CLI and the tests agree.

This module only models: each field checked on its own and the keys checked against each other.
What needs rendering (Helm values, extraValues against the chart, the policies for this cluster)
is checked after the model is built, by cnistack/stack_checks.py.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from cnistack import cilium_versions
from cnistack.capabilities import FLANNEL_WITH_KUBE_ROUTER, CapabilityProfile, cilium_profile
from cnistack.flavours import (
    K3S,
    KUBERNETES,
    OPENSHIFT,
    ClusterFlavour,
)
from cnistack.key_hints import allowed_keys, did_you_mean
from cnistack.netpol.overlay import OverlayError, apply_overlay, is_overlay
from cnistack.netpol.policy_model import PolicyModel, default_policy_model

PROJECT = "aisp-cni"

# The production pin: scripts/toolchain.sh CILIUM_V, recorded by scripts/derive_cilium_versions.py.
# ADR-013 pinned 1.15.0, whose line is out of support since 2025-07-29; a cluster still on it moves
# up the path of cnistack/data/cilium-upgrade-path.yaml, one `pulumi up` per step (README).
CILIUM_CHART_VERSION = cilium_versions.default_version()
CILIUM_REPOSITORY = "https://helm.cilium.io/"
# K3s's default cluster CIDR, which Cilium's cluster-pool IPAM must reuse on k3d.
K3S_POD_CIDR = "10.42.0.0/16"
K3S_SERVICE_CIDR = "10.43.0.0/16"
# Pinned so that a homelab rebuilt next month runs the same Kubernetes: 1.35, supported until
# 2027-02-28 and inside the production Cilium's e2e-tested range (cnistack/data/
# kubernetes-support.yaml), so the lab can move to Cilium (ADR-013) without changing Kubernetes.
K3S_IMAGE = "rancher/k3s:v1.35.8-k3s1"
# `cilium.rolloutTimeoutSeconds`: with one agent at a time (cnistack/cilium.py,
# AGENT_MAX_UNAVAILABLE), a rollout takes nodes x (pod restart + BPF compile + endpoint
# regeneration, 60-90 s per agent on a loaded node). 900 s covers the ADR's 6 nodes at 90 s each
# with margin; raise it for larger clusters.
ROLLOUT_TIMEOUT_S = 900

_EXACT_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class ConfigError(ValueError):
    """A stack config the program refuses, with every offending key named."""


def to_camel(name: str) -> str:
    # pydantic's own to_camel upper-cases a letter after a digit (k8SServiceHost);
    # the Cilium chart spells these k8sServiceHost and l7Proxy.
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
    )


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.IPv4Network(value, strict=True))
    except ValueError as err:
        raise ValueError(f"not an IPv4 CIDR ({err})") from None


def _dns_label(value: str) -> str:
    if len(value) > 32 or not _DNS_LABEL.match(value):
        raise ValueError("must be a lower-case DNS label of at most 32 characters")
    return value


class K3dCluster(_Model):
    """Homelab: a K3d cluster on the laptop, 1 server + 2 agents (ADR-013 "Home Lab")."""

    kind: Literal["k3d"]
    name: str = "aisp-homelab"
    servers: int = Field(default=1, ge=1)
    agents: int = Field(default=2, ge=0)
    k3s_image: str = K3S_IMAGE
    api_port: int = Field(default=6550, ge=1024, le=65535)
    pod_cidr: str = K3S_POD_CIDR
    service_cidr: str = K3S_SERVICE_CIDR

    _check_name = field_validator("name")(_dns_label)
    _check_cidrs = field_validator("pod_cidr", "service_cidr")(_cidr)

    @property
    def api_server_node(self) -> str:
        # k3d names its first server container k3d-<cluster>-server-0; inside the
        # cluster network the API server listens there on 6443.
        return f"k3d-{self.name}-server-0"

    @property
    def flavour(self) -> ClusterFlavour:
        # k3d runs K3s: the flavour is the cluster kind's, nothing to declare.
        return K3S


class ClusterNetworkSettings(_Model):
    """OpenShift's `networking.clusterNetwork` entry: the pod network Cilium's IPAM must use."""

    cidr: str
    host_prefix: int = Field(ge=1, le=32)

    _check_cidr = field_validator("cidr")(_cidr)

    @model_validator(mode="after")
    def _prefix_inside(self) -> ClusterNetworkSettings:
        prefix = ipaddress.IPv4Network(self.cidr).prefixlen
        if self.host_prefix < prefix:
            raise ValueError(f"hostPrefix /{self.host_prefix} is wider than cidr {self.cidr}")
        return self


class ExistingCluster(_Model):
    """Production: an on-premise OpenShift/Kubernetes cluster that already exists."""

    kind: Literal["existing"]
    name: str
    # kube context to use from the kubeconfig (secret `kubeconfig`); without a kubeconfig the
    # context names one in the user's own kubeconfig. One of the two is required (safe targeting).
    context: str | None = None
    openshift: bool = False
    # The API server this stack must talk to, e.g. https://api.gtt-prod.internal:6443. Checked
    # against the kubeconfig before any resource is registered (cnistack/targeting.py).
    server: str | None = None
    # OpenShift's clusterNetwork (install-config `networking.clusterNetwork`); default 10.128.0.0/14
    # with hostPrefix 23 (cnistack/flavours.py).
    cluster_network: ClusterNetworkSettings | None = None
    # Mirrors the cluster network operator's `spec.deployKubeProxy` (operator.openshift.io/v1
    # Network). Unset, the CNO deploys kube-proxy for a third-party network plugin (openshift/api
    # operator/v1 types_network.go), which Cilium's kube-proxy replacement would fight.
    deploy_kube_proxy: bool | None = None

    _check_name = field_validator("name")(_dns_label)

    @field_validator("server")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https://[^/\s]+(:\d+)?/?", value):
            raise ValueError("must be the API server's https:// URL, e.g. https://api.example:6443")
        return value

    @property
    def flavour(self) -> ClusterFlavour:
        # The one place `openshift` is read: everything else asks StackConfig.flavour.
        return OPENSHIFT if self.openshift else KUBERNETES


Cluster = Annotated[K3dCluster | ExistingCluster, Field(discriminator="kind")]


class ChartSource(_Model):
    """Where the chart comes from: the public repository, an OCI registry or a directory."""

    repository: str | None = None
    oci: str | None = None
    path: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ChartSource:
        given = [name for name in ("repository", "oci", "path") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(
                f"set exactly one of repository, oci, path (got {', '.join(given) or 'none'})"
            )
        if self.oci is not None and not self.oci.startswith("oci://"):
            raise ValueError(f"oci must start with oci:// (got {self.oci!r})")
        if self.repository is not None and not self.repository.startswith(("https://", "http://")):
            raise ValueError(f"repository must be an http(s) URL (got {self.repository!r})")
        return self


class CiliumChart(_Model):
    version: str = CILIUM_CHART_VERSION
    source: ChartSource = ChartSource(repository=CILIUM_REPOSITORY)

    @field_validator("version")
    @classmethod
    def _exact_pin(cls, value: str) -> str:
        if not _EXACT_SEMVER.match(value):
            raise ValueError(
                f"chart version must be an exact pin such as {CILIUM_CHART_VERSION!r}, "
                "not a range or tag"
            )
        # The values the program sends, extraValues and the CRDs are checked against the
        # version's own chart: a version without derived data cannot be checked.
        if value not in cilium_versions.known_versions():
            raise ValueError(
                f"Cilium {value} is not on this program's upgrade path, so its chart cannot be "
                f"checked; the known versions are {', '.join(cilium_versions.known_versions())} "
                "(add it to cnistack/data/cilium-upgrade-path.yaml and run "
                "scripts/derive_cilium_versions.py)"
            )
        return value


class Hubble(_Model):
    enabled: bool = True
    relay: bool = True
    ui: bool = True
    # The chart's default `helm` method issues new certificates at every render, so
    # no preview is ever clean. Ref: cilium/cilium#36012.
    tls_method: Literal["cronJob", "certmanager"] = "cronJob"
    cert_manager_issuer: str | None = None
    # The flow export is the audit trail of C4-C5 data (ADR-013 "Conformité"): it must not carry
    # secrets. On: URL query, user info, Authorization/Cookie-style headers and Kafka API keys
    # are redacted before a flow leaves the agent (chart `hubble.redact`, Documentation/
    # observability/hubble/configuration/... "Redacting sensitive information").
    redact: bool = True

    @model_validator(mode="after")
    def _coherent(self) -> Hubble:
        if self.ui and not self.relay:
            raise ValueError("Hubble UI reads flows from Hubble Relay: set relay: true")
        if (self.relay or self.ui) and not self.enabled:
            raise ValueError("relay and ui need hubble enabled: set enabled: true")
        if self.tls_method == "certmanager" and not self.cert_manager_issuer:
            raise ValueError("tlsMethod certmanager needs certManagerIssuer (a ClusterIssuer)")
        return self


class FlowExport(_Model):
    """Cilium 1.15's static Hubble exporter: flows written to a file on each node.

    ADR-013 "Conformité : Audit via Hubble" for C4-C5: metrics are not an audit trail, flows
    are. Keys of chart 1.15.0 `hubble.export` (values.yaml): fileMaxSizeMb, fileMaxBackups,
    static.{enabled,filePath,fieldMask,allowList,denyList}. Filters are Hubble FlowFilter JSON
    objects (cilium/cilium api/v1/flow/flow.proto), OR-ed within a list.
    """

    enabled: bool = True
    file_path: str = "/var/run/cilium/hubble/events.log"
    # Who talked to whom, the verdict and why, and the L7 request: enough to audit a decision.
    field_mask: tuple[str, ...] = (
        "time",
        "node_name",
        "source",
        "destination",
        "IP",
        "l4",
        "verdict",
        "drop_reason_desc",
        "Type",
        "l7",
        "traffic_direction",
        "policy_match_type",
        "is_reply",
        "Summary",
    )
    # Dropped and errored flows (every denial), and every L7 record (event_type 129 is
    # MessageTypeAccessLog, i.e. L7; pkg/monitor/api/types.go).
    allow_list: tuple[str, ...] = (
        '{"verdict":["DROPPED","ERROR","AUDIT"]}',
        '{"event_type":[{"type":129}]}',
    )
    deny_list: tuple[str, ...] = ()
    file_max_size_mb: int = Field(default=50, ge=1)
    file_max_backups: int = Field(default=10, ge=1)

    @field_validator("allow_list", "deny_list")
    @classmethod
    def _json_objects(cls, filters: tuple[str, ...]) -> tuple[str, ...]:
        for item in filters:
            try:
                parsed = json.loads(item)
            except json.JSONDecodeError as err:
                raise ValueError(f"filter {item!r} is not JSON ({err.msg})") from None
            if not isinstance(parsed, dict) or not parsed:
                raise ValueError(f"filter {item!r} must be a non-empty JSON object")
        return filters

    @field_validator("file_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must be an absolute path on the node")
        return value


class CiliumSettings(_Model):
    """ADR-013's Cilium install, as settings (defaults = the ADR's production flags)."""

    # helm: a Helm release (Kubernetes, or OpenShift installed without a CNI); olm: a CiliumConfig
    # for Isovalent's certified OLM operator, the supported path on OpenShift
    # (isovalent/olm-for-cilium).
    install_method: Literal["helm", "olm"] = "helm"
    chart: CiliumChart = CiliumChart()
    kube_proxy_replacement: bool = True
    # A host name or address: no blank (found by fuzzing: "" passed, then helm_values failed).
    k8s_service_host: str | None = Field(default=None, pattern=r"^\S+$")
    k8s_service_port: int | None = Field(default=None, ge=1, le=65535)
    encryption: Literal["wireguard", "disabled"] = "wireguard"
    # WireGuard encrypts pod-to-pod traffic only; node-to-node also covers node<->pod and
    # node<->node (chart `encryption.nodeEncryption`, Documentation/security/network/
    # encryption-wireguard.rst "Node-to-Node Encryption (beta)"). On, because host-network
    # sources (OpenShift's router, docs/openshift.md) carry C4-C5 data to pods on other nodes.
    # Control-plane nodes opt out upstream (node-encryption-opt-out-labels); the API server's
    # own traffic stays under Kubernetes' mTLS.
    # Unset: on with WireGuard, nothing without encryption.
    node_encryption: bool | None = None
    hubble: Hubble = Hubble()
    # The chart's own `l7Proxy` value, named as the chart names it; the capability it gives the
    # enforcer is `l7_policy` (cnistack/capabilities.py).
    l7_proxy: bool = True
    prometheus: bool = True
    # ServiceMonitors for agent, operator and Hubble metrics; needs the Prometheus operator
    # (OpenShift user-workload monitoring) or the chart fails on the missing CRD.
    service_monitors: bool = False
    export: FlowExport = FlowExport()
    # Staged rollout: policies are evaluated and logged as AUDIT verdicts, nothing is dropped
    # (chart 1.15.0 `policyAuditMode`, cilium-configmap.yaml `policy-audit-mode`).
    policy_audit_mode: bool = False
    # Helm values merged last, for what the settings above do not cover (IPAM, replicas, ...).
    extra_values: dict[str, Any] = Field(default_factory=dict)
    # How long an install or upgrade may take to roll out (agents, operator, Hubble) before
    # `up` fails naming the pods that are not ready (cnistack/cni_rollout.py). Also Helm's own
    # timeout, which then bounds only the chart's hooks.
    rollout_timeout_seconds: int = Field(default=ROLLOUT_TIMEOUT_S, ge=10, le=7200)


class StackConfig(_Model):
    """The whole stack config of project ``aisp-cni``."""

    cni: Literal["flannel", "cilium"]
    cluster: Cluster
    cilium: CiliumSettings | None = None
    network_policy: PolicyModel = Field(default_factory=default_policy_model)
    # Only for an existing cluster; held as a secret and never printed.
    kubeconfig: SecretStr | None = None

    @field_validator("network_policy", mode="before")
    @classmethod
    def _overlay_on_the_default_model(cls, value: Any) -> Any:
        # `extends: default`: the stack changes the platform's model instead of replacing it.
        if not is_overlay(value):
            return value
        try:
            return apply_overlay(value)
        except OverlayError as err:
            raise _OtherKeyError(
                ".".join(("networkPolicy", err.key)).rstrip("."), str(err)
            ) from None

    @model_validator(mode="before")
    @classmethod
    def _empty_sections_are_absent(cls, data: Any) -> Any:
        # Pulumi.yaml declares the optional keys with an empty default (`{}`, "") so
        # that `pulumi config` lists them; an empty value means "not set".
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v not in ({}, "", None)}
        return data

    @model_validator(mode="after")
    def _cross_checks(self) -> StackConfig:
        if self.cni == "flannel" and self.cilium is not None:
            raise _OtherKeyError(
                "cilium", "cilium settings on a flannel stack: remove them or set cni: cilium"
            )
        if isinstance(self.cluster, K3dCluster) and self.kubeconfig is not None:
            raise _OtherKeyError(
                "kubeconfig", "a k3d cluster writes its own kubeconfig: remove the key"
            )
        if (
            isinstance(self.cluster, ExistingCluster)
            and self.kubeconfig is None
            and self.cluster.context is None
        ):
            raise _OtherKeyError(
                "kubeconfig",
                "an existing cluster needs an explicit kubeconfig (pulumi config set --secret "
                f"{PROJECT}:kubeconfig < FILE) or cluster.context; the ambient kube context "
                "may point at another cluster",
            )
        if isinstance(self.cluster, ExistingCluster) and self.cluster.server is None:
            raise _OtherKeyError(
                "cluster.server",
                "declare the API server this stack targets (e.g. "
                "https://api.gtt-prod.internal:6443); the program refuses a kubeconfig that "
                "points elsewhere",
            )
        settings = self.cilium_settings
        if settings and settings.node_encryption is True and settings.encryption == "disabled":
            raise _OtherKeyError(
                "cilium.nodeEncryption",
                "node-to-node encryption is a mode of WireGuard: set encryption: wireguard or "
                "nodeEncryption: false",
            )
        if settings and isinstance(self.cluster, K3dCluster):
            # The homelab's Kubernetes is the K3s image's; refuse a Cilium not tested on it.
            kubernetes = cilium_versions.k3s_image_kubernetes(self.cluster.k3s_image)
            if kubernetes is None:
                raise _OtherKeyError(
                    "cluster.k3sImage",
                    f"cannot read a Kubernetes version from {self.cluster.k3s_image!r} (expected "
                    "a rancher/k3s tag such as v1.35.8-k3s1); Cilium needs it to be checked",
                )
            problem = cilium_versions.kubernetes_problem(
                settings.chart.version, kubernetes, f"k3sImage {self.cluster.k3s_image}"
            )
            if problem:
                raise _OtherKeyError("cluster.k3sImage", problem)
        if settings and settings.install_method == "olm" and self.flavour is not OPENSHIFT:
            raise _OtherKeyError(
                "cilium.installMethod",
                "olm installs through OpenShift's Operator Lifecycle Manager: set "
                "cluster.openshift: true or installMethod: helm",
            )
        if (
            settings
            and settings.install_method == "olm"
            and settings.chart.version not in cilium_versions.olm_operator_versions()
        ):
            raise _OtherKeyError(
                "cilium.installMethod",
                f"the certified OLM operator does not ship Cilium {settings.chart.version}: its "
                f"bundles stop at {cilium_versions.olm_operator_versions()[-1]} "
                "(isovalent/olm-for-cilium manifests/; #100: its maintainers point to Helm; "
                "cilium/cilium#38885). Set installMethod: helm: the SCC bindings, the Multus "
                "settings and the clusterNetwork IPAM are rendered the same (docs/openshift.md)",
            )
        if (
            settings
            and settings.kube_proxy_replacement
            and self.flavour is OPENSHIFT
            and isinstance(self.cluster, ExistingCluster)
            and self.cluster.deploy_kube_proxy is not False
        ):
            raise _OtherKeyError(
                "cluster.deployKubeProxy",
                "kube-proxy replacement on OpenShift needs kube-proxy off in the cluster network "
                "operator (networks.operator.openshift.io/cluster spec.deployKubeProxy: false); "
                "turn it off there, then declare deployKubeProxy: false here, or set "
                "cilium.kubeProxyReplacement: false",
            )
        if (
            settings
            and settings.kube_proxy_replacement
            and isinstance(self.cluster, ExistingCluster)
        ):
            missing = [
                name
                for name, value in (
                    ("k8sServiceHost", settings.k8s_service_host),
                    ("k8sServicePort", settings.k8s_service_port),
                )
                if value is None
            ]
            if missing:
                raise _OtherKeyError(
                    f"cilium.{missing[0]}",
                    "kube-proxy replacement needs the API server's host and port "
                    f"(missing {', '.join(missing)}): without kube-proxy, Cilium cannot "
                    "reach the API server through its Service IP",
                )
        return self

    @property
    def cilium_settings(self) -> CiliumSettings | None:
        if self.cni != "cilium":
            return None
        return self.cilium or CiliumSettings()

    @property
    def replaces_kube_proxy(self) -> bool:
        settings = self.cilium_settings
        return settings is not None and settings.kube_proxy_replacement

    @property
    def protect_cluster_network(self) -> bool:
        # On a cluster we did not create (production), deleting the CNI release or the
        # policies would cut or open every workload's network: make it a two-step act.
        return isinstance(self.cluster, ExistingCluster)

    @property
    def flavour(self) -> ClusterFlavour:
        return self.cluster.flavour

    @property
    def cluster_network(self) -> ClusterNetworkSettings | None:
        """The pod network the CNI must hand out on OpenShift; None where the CNI chooses."""
        default = self.flavour.cluster_network
        if default is None:
            return None
        if isinstance(self.cluster, ExistingCluster) and self.cluster.cluster_network is not None:
            return self.cluster.cluster_network
        return ClusterNetworkSettings(cidr=default.cidr, host_prefix=default.host_prefix)

    @property
    def pod_cidr(self) -> str | None:
        """The cluster's pod network where the stack knows it: k3d's cluster CIDR, OpenShift's
        clusterNetwork; None on a plain Kubernetes cluster (its CNI's own choice)."""
        if isinstance(self.cluster, K3dCluster):
            return self.cluster.pod_cidr
        network = self.cluster_network
        return network.cidr if network is not None else None

    @property
    def capabilities(self) -> CapabilityProfile:
        settings = self.cilium_settings
        if settings is None:
            return FLANNEL_WITH_KUBE_ROUTER
        return cilium_profile(
            encryption=None if settings.encryption == "disabled" else settings.encryption,
            hubble=settings.hubble.enabled,
            l7_policy=settings.l7_proxy,
        )


class _OtherKeyError(ValueError):
    """Raised inside validators to point at a key other than the one being validated."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}::{message}")


def _decode(value: Any) -> Any:
    # Pulumi hands objects and arrays to the program as JSON strings.
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _describe(error: Mapping[str, Any], allowed: list[str]) -> list[str]:
    """One line per bad key; a key or value with a line break must not start a new one."""
    return [line.replace("\n", "\\n") for line in _describe_lines(error, allowed)]


def _describe_lines(error: Mapping[str, Any], allowed: list[str]) -> list[str]:
    loc = tuple(error["loc"])
    if loc[:1] == ("cluster",) and loc[1:2] in (("k3d",), ("existing",)):
        loc = loc[:1] + loc[2:]  # the discriminator's tag is not a key of the file
    message = str(error["msg"]).removeprefix("Value error, ")
    if "::" in message:
        pairs = (line.split("::", 1) for line in message.split("\n"))
        return [f"{PROJECT}:{key}: {text}" for key, text in pairs]
    key = ".".join(str(part) for part in loc) or "(stack)"
    if error["type"] == "extra_forbidden":
        siblings = allowed if len(loc) == 1 else allowed_keys(StackConfig, error["loc"][:-1])
        suggestion = did_you_mean(str(loc[-1]), siblings)
        choices = f" Allowed keys: {', '.join(siblings)}." if siblings else ""
        return [f"{PROJECT}:{key}: unknown key{suggestion or '.'}{choices}"]
    if error["type"] == "missing":
        return [f"{PROJECT}:{key}: required, no default (it must be chosen per environment)"]
    given = error.get("input")
    if isinstance(given, Mapping | list):
        return [f"{PROJECT}:{key}: {message}"]
    shown = "<secret>" if loc[:1] == ("kubeconfig",) else repr(given)
    return [f"{PROJECT}:{key}: {message} (got {shown})"]


# Keys whose value must be stored encrypted in the stack file.
SECRET_KEYS = ("kubeconfig",)


def parse_stack_config(
    raw: Mapping[str, Any], secret_keys: Collection[str] | None = None
) -> StackConfig:
    """Validate the project's config; raise one ConfigError naming every bad key.

    ``secret_keys`` are the keys the engine holds encrypted; when given, a kubeconfig
    stored in plain text is refused (ADR-013: production holds C4-C5 data).
    """
    # A kubeconfig may be JSON (kubectl accepts it): it stays the string it was given.
    data = {key: value if key in SECRET_KEYS else _decode(value) for key, value in raw.items()}
    if secret_keys is not None:
        for key in SECRET_KEYS:
            if data.get(key) and key not in secret_keys:
                raise ConfigError(
                    f"invalid stack config:\n  {PROJECT}:{key}: stored in plain text; "
                    f"set it with `pulumi config set --secret {PROJECT}:{key}`"
                )
    try:
        return StackConfig.model_validate(data)
    except ValidationError as err:
        allowed = sorted(field.alias or name for name, field in StackConfig.model_fields.items())
        lines = [line for e in err.errors() for line in _describe(e, allowed)]
        raise ConfigError("invalid stack config:\n  " + "\n  ".join(lines)) from None


def config_error(problems: Iterable[tuple[str, str]]) -> ConfigError:
    """One ConfigError, one line per key (``aisp-cni:<key>: <why>``), as parse_stack_config words
    them; a line break inside a message must not start a new line."""
    lines = [f"{PROJECT}:{key}: {why}".replace("\n", "\\n") for key, why in problems]
    return ConfigError("invalid stack config:\n  " + "\n  ".join(lines))


def project_config(all_config: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the keys of this project (``aisp-cni:x``) out of the engine's whole config."""
    prefix = f"{PROJECT}:"
    return {
        key.removeprefix(prefix): value
        for key, value in all_config.items()
        if key.startswith(prefix)
    }
