"""What the compilers produce: direction-neutral rules of one policy, its peers and ports.

Shared by the NetworkPolicy compiler (networkpolicy.py), the CiliumNetworkPolicy/CCNP compiler
(cilium.py) and the address arithmetic (addresses.py); the engine reads only these types.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reachability.errors import InputError
from reachability.inputs import ContainerPort, Manifest
from reachability.ports import MAX_PORT, MIN_PORT, PROTOCOLS, Http, PortSet
from reachability.selectors import Selector, parse_selector

# A port's name, as Kubernetes' IANA_SVC_NAME: 1-15 lowercase letters, digits and '-'.
PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")


@dataclass(frozen=True)
class PolicyRef:
    kind: str
    namespace: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @property
    def label(self) -> str:
        return f"{self.kind} {self}"


@dataclass(frozen=True)
class PodPeer:
    """Pods in `namespaces` (None = any) whose namespace matches `ns_selector` and labels `pods`."""

    namespaces: frozenset[str] | None
    ns_selector: Selector | None
    pods: Selector
    cilium: bool


@dataclass(frozen=True)
class CidrPeer:
    """Addresses on the unified line (IPv4 as is, IPv6 shifted past 2**32), excepts removed."""

    ranges: tuple[tuple[int, int], ...]
    matches_pods: bool


@dataclass(frozen=True)
class EntityPeer:
    world: bool
    cluster: bool
    # host / remote-node: the nodes, host-network pods included (Cilium 1.15
    # Documentation/security/policy/language.rst, "Entities Based").
    host: bool = False


ANY_PEER = EntityPeer(world=True, cluster=True)
Peer = PodPeer | CidrPeer | EntityPeer


@dataclass(frozen=True)
class PortSpec:
    protocols: tuple[str, ...]
    port: int | str | None  # None = every port
    end: int | None
    http: Http


@dataclass(eq=False)
class Rule:
    policy: PolicyRef
    deny: bool
    peers: tuple[Peer, ...]
    ports: tuple[PortSpec, ...] | None  # None = every port of every protocol
    _fixed: PortSet | None = field(default=None, repr=False)

    @property
    def uses_named_ports(self) -> bool:
        return self.ports is not None and any(isinstance(p.port, str) for p in self.ports)

    def resolve(self, dst_ports: tuple[ContainerPort, ...] | None) -> PortSet:
        """Ports this rule opens towards a destination (named ports looked up on it)."""
        if self._fixed is not None:
            return self._fixed
        entries: list[tuple[str, int, int, Http]] = []
        for spec in self.ports or ():
            for proto in spec.protocols:
                if spec.port is None:
                    entries.append((proto, MIN_PORT, MAX_PORT, spec.http))
                elif isinstance(spec.port, int):
                    entries.append((proto, spec.port, spec.end or spec.port, spec.http))
                else:
                    entries.extend(
                        (proto, cp.port, cp.port, spec.http)
                        for cp in dst_ports or ()
                        if cp.name == spec.port and cp.protocol == proto
                    )
        if self.ports is None:
            entries = [(proto, MIN_PORT, MAX_PORT, None) for proto in PROTOCOLS]
        result = PortSet.build(entries)
        if not self.uses_named_ports:
            self._fixed = result
        return result


@dataclass
class CompiledPolicy:
    ref: PolicyRef
    namespace: str | None  # None = cluster-wide
    selector: Selector
    cilium: bool
    isolates_ingress: bool
    isolates_egress: bool
    ingress: list[Rule]
    egress: list[Rule]


class Context:
    """The manifest being compiled: errors name its source and object; `reject` records why the
    agent would refuse the object (the first reason, as the agent's sanitize stops there) and
    lets compiling go on, so that an error the API server itself would raise still wins."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.rejection: str | None = None

    def error(self, message: str) -> InputError:
        return InputError(message, source=self.manifest.source, obj=self.manifest.label)

    def reject(self, message: str) -> None:
        if self.rejection is None:
            self.rejection = message


def field_list(ctx: Context, raw: Mapping[str, Any], key: str, where: str) -> list[Any]:
    """`raw[key]` as a list (absent, null or empty: []); any other type names the field."""
    value = raw.get(key) or []
    if not isinstance(value, list):
        raise ctx.error(f"{where}{key}: must be a list (got {type(value).__name__})")
    return value


def parse_policy_selector(
    ctx: Context, raw: Any, where: str, cilium_key: Callable[[str], str] | None = None
) -> Selector:
    """A label selector of a policy (`cilium_key`: how CiliumNetworkPolicy keys are read)."""
    try:
        return parse_selector(raw, where, cilium_key)
    except InputError as exc:
        raise ctx.error(str(exc)) from exc


def port_number(ctx: Context, value: int, where: str) -> int:
    if not MIN_PORT <= value <= MAX_PORT:
        raise ctx.error(f"{where}: port {value} out of range 1-65535")
    return value
