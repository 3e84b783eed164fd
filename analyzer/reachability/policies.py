"""NetworkPolicy and CiliumNetworkPolicy objects compiled into direction-neutral rules.

The enforcement profile is decided here, once:
- kube-router enforces NetworkPolicy only; an `ipBlock` also matches pod IPs (upstream e2e
  behaviour); `endPort` ranges are enforced.
- cilium enforces NetworkPolicy and CiliumNetworkPolicy; CIDR rules (and `ipBlock`) match only
  addresses outside the cluster (Cilium identifies pods by identity, not IP); `endPort` is ignored,
  only the start port is enforced (Cilium < 1.16; we deploy 1.15).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reachability.errors import InputError
from reachability.inputs import CILIUM_NS_KEY, ContainerPort, Enforcement, Manifest, Pod
from reachability.ports import (
    MAX_PORT,
    MIN_PORT,
    PROTOCOLS,
    Http,
    PortSet,
    compile_http_regex,
)
from reachability.selectors import Selector, parse_selector

V6_OFFSET = 1 << 32
LINE_END = V6_OFFSET + (1 << 128) - 1
_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")
ENTITIES = frozenset(
    {
        "world",
        "world-ipv4",
        "world-ipv6",
        "cluster",
        "all",
        "host",
        "remote-node",
        "kube-apiserver",
        "health",
        "init",
        "unmanaged",
        "ingress",
        "none",
    }
)


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


def compile_policies(
    manifests: list[Manifest],
    enforcement: Enforcement,
    notes: list[str] | None = None,
    pods: Sequence[Pod] = (),
) -> list[CompiledPolicy]:
    """Compile every policy (so bad input is always reported); keep those the profile enforces."""
    out: list[CompiledPolicy] = []
    for manifest in manifests:
        if manifest.kind == "NetworkPolicy":
            compiled = _compile_np(manifest, enforcement)
        else:
            compiled = _compile_cnp(manifest, enforcement, notes)
        for policy in compiled:
            if enforcement == "cilium" or not policy.cilium:
                out.append(policy)
    if enforcement == "cilium":
        _resolve_egress_named_ports(out, pods)
    return out


def _resolve_egress_named_ports(policies: list[CompiledPolicy], pods: Sequence[Pod]) -> None:
    """Cilium 1.15 resolves an egress named port against the named ports of ALL pods, not of
    the destination (pkg/endpoint/policy.go GetNamedPort: egress uses the cluster-wide
    NamedPortMultiMap): the one port number that every pod declaring that name (for that
    protocol) agrees on, opened towards every selected peer; nothing when pods disagree
    (pkg/types/portmap.go: ErrDuplicateNamedPorts). Found by the Cilium oracle."""
    declared: dict[tuple[str, str], set[int]] = {}
    for pod in pods:
        for cp in pod.ports:
            if cp.name:
                declared.setdefault((cp.name, cp.protocol), set()).add(cp.port)
    for policy in policies:
        for rule in policy.egress:
            if not rule.uses_named_ports or rule.ports is None:
                continue
            specs: list[PortSpec] = []
            for spec in rule.ports:
                if not isinstance(spec.port, str):
                    specs.append(spec)
                    continue
                for proto in spec.protocols:
                    numbers = declared.get((spec.port, proto), set())
                    if len(numbers) == 1:
                        specs.append(PortSpec((proto,), next(iter(numbers)), None, spec.http))
            rule.ports = tuple(specs)


class _Ctx:
    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest

    def error(self, message: str) -> InputError:
        return InputError(message, source=self.manifest.source, obj=self.manifest.label)


def _list(ctx: _Ctx, raw: Mapping[str, Any], key: str, where: str) -> list[Any]:
    """`raw[key]` as a list (absent, null or empty: []); any other type names the field."""
    value = raw.get(key) or []
    if not isinstance(value, list):
        raise ctx.error(f"{where}{key}: must be a list (got {type(value).__name__})")
    return value


# --- NetworkPolicy ---------------------------------------------------------------------------


def _compile_np(manifest: Manifest, enforcement: Enforcement) -> list[CompiledPolicy]:
    ctx = _Ctx(manifest)
    spec = manifest.doc.get("spec")
    if not isinstance(spec, Mapping):
        raise ctx.error("spec is missing")
    ref = PolicyRef("NetworkPolicy", manifest.namespace, manifest.name)
    selector = _selector(ctx, spec.get("podSelector"), "spec.podSelector")
    ingress_raw = _list(ctx, spec, "ingress", "spec.")
    egress_raw = _list(ctx, spec, "egress", "spec.")
    types = _list(ctx, spec, "policyTypes", "spec.")
    if not types:
        # Kubernetes defaulting: Ingress always, Egress iff the policy has egress rules.
        types = ["Ingress"] + (["Egress"] if egress_raw else [])
    for t in types:
        if t not in ("Ingress", "Egress"):
            raise ctx.error(f"spec.policyTypes: invalid value {t!r}")
    ingress = [
        _np_rule(ctx, ref, r, peer_key="from", where=f"spec.ingress[{i}]", enforcement=enforcement)
        for i, r in enumerate(ingress_raw)
    ]
    egress = [
        _np_rule(ctx, ref, r, peer_key="to", where=f"spec.egress[{i}]", enforcement=enforcement)
        for i, r in enumerate(egress_raw)
    ]
    isolates_ingress = "Ingress" in types
    isolates_egress = "Egress" in types
    if enforcement == "cilium":
        # Cilium 1.15 (pkg/k8s/network_policy.go ParseNetworkPolicy) reads the ingress and egress
        # rules whatever policyTypes says: rules present in a direction are enforced even when
        # policyTypes omits it; policyTypes only adds a default deny for a direction without
        # rules. Found by the Cilium oracle; the profile follows what 1.15 enforces.
        isolates_ingress = bool(ingress_raw) or isolates_ingress
        isolates_egress = bool(egress_raw) or isolates_egress
    return [
        CompiledPolicy(
            ref=ref,
            namespace=manifest.namespace,
            selector=selector,
            cilium=False,
            isolates_ingress=isolates_ingress,
            isolates_egress=isolates_egress,
            ingress=ingress if isolates_ingress else [],
            egress=egress if isolates_egress else [],
        )
    ]


def _np_rule(
    ctx: _Ctx, ref: PolicyRef, raw: Any, *, peer_key: str, where: str, enforcement: Enforcement
) -> Rule:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ctx.error(f"{where}: rule must be a mapping")
    peers_raw = _list(ctx, raw, peer_key, f"{where}.")
    peers: tuple[Peer, ...]
    # An empty or missing from/to matches every peer, in and outside the cluster.
    peers = (
        tuple(
            _np_peer(ctx, ref, p, f"{where}.{peer_key}[{i}]", enforcement)
            for i, p in enumerate(peers_raw)
        )
        if peers_raw
        else (ANY_PEER,)
    )
    ports_raw = _list(ctx, raw, "ports", f"{where}.")
    ports = (
        tuple(_np_port(ctx, p, f"{where}.ports[{i}]", enforcement) for i, p in enumerate(ports_raw))
        if ports_raw
        else None
    )
    return Rule(ref, False, peers, ports)


def _np_peer(ctx: _Ctx, ref: PolicyRef, raw: Any, where: str, enforcement: Enforcement) -> Peer:
    if not isinstance(raw, Mapping):
        raise ctx.error(f"{where}: peer must be a mapping")
    has_pod = raw.get("podSelector") is not None
    has_ns = raw.get("namespaceSelector") is not None
    if raw.get("ipBlock") is not None:
        if has_pod or has_ns:
            raise ctx.error(
                f"{where}: ipBlock cannot be combined with podSelector/namespaceSelector"
            )
        block = raw["ipBlock"]
        if not isinstance(block, Mapping) or "cidr" not in block:
            raise ctx.error(f"{where}.ipBlock: cidr is required")
        return CidrPeer(
            _cidr_ranges(
                ctx,
                block["cidr"],
                _list(ctx, block, "except", f"{where}.ipBlock."),
                f"{where}.ipBlock",
            ),
            matches_pods=enforcement == "kube-router",
        )
    if not has_pod and not has_ns:
        raise ctx.error(f"{where}: peer needs podSelector, namespaceSelector or ipBlock")
    pods = _selector(ctx, raw.get("podSelector"), f"{where}.podSelector")
    if has_ns:
        ns_sel = _selector(ctx, raw.get("namespaceSelector"), f"{where}.namespaceSelector")
        return PodPeer(None, ns_sel, pods, cilium=False)
    return PodPeer(frozenset({ref.namespace or ""}), None, pods, cilium=False)


def _np_port(ctx: _Ctx, raw: Any, where: str, enforcement: Enforcement) -> PortSpec:
    if not isinstance(raw, Mapping):
        raise ctx.error(f"{where}: port must be a mapping")
    proto = str(raw.get("protocol") or "TCP")
    if proto not in PROTOCOLS:
        raise ctx.error(f"{where}: invalid protocol {proto!r} (expected TCP, UDP or SCTP)")
    port = raw.get("port")
    value: int | str | None
    if port is None:
        value = None
    elif isinstance(port, int) and not isinstance(port, bool):
        value = _port_number(ctx, port, where)
    elif isinstance(port, str) and port.isdigit():
        value = _port_number(ctx, int(port), where)
    elif isinstance(port, str) and _SVC_NAME.match(port) and not port.isdigit():
        value = port
    else:
        raise ctx.error(f"{where}: invalid port {port!r}")
    end = raw.get("endPort")
    if end is not None:
        if not isinstance(value, int):
            raise ctx.error(f"{where}: endPort requires a numeric port")
        if not isinstance(end, int) or isinstance(end, bool) or not value <= end <= MAX_PORT:
            raise ctx.error(f"{where}: invalid endPort {end!r} (must be >= port and <= 65535)")
        if enforcement == "cilium":
            end = None  # Cilium 1.15 enforces the start port only.
    return PortSpec((proto,), value, end, None)


# --- CiliumNetworkPolicy -----------------------------------------------------------------------


def _cilium_key(key: str) -> str:
    for prefix in ("k8s:", "any:"):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _compile_cnp(
    manifest: Manifest, enforcement: Enforcement, notes: list[str] | None
) -> list[CompiledPolicy]:
    ctx = _Ctx(manifest)
    clusterwide = manifest.kind == "CiliumClusterwideNetworkPolicy"
    namespace = None if clusterwide else manifest.namespace
    ref = PolicyRef(manifest.kind, namespace, manifest.name)
    doc = manifest.doc
    specs: list[tuple[Any, str]] = []
    if doc.get("spec") is not None:
        specs.append((doc["spec"], "spec"))
    specs.extend((s, f"specs[{i}]") for i, s in enumerate(_list(ctx, doc, "specs", "")))
    if not specs:
        raise ctx.error("spec or specs is required")
    out: list[CompiledPolicy] = []
    for spec, where in specs:
        if not isinstance(spec, Mapping):
            raise ctx.error(f"{where}: must be a mapping")
        if spec.get("endpointSelector") is None:
            if notes is not None and spec.get("nodeSelector") is not None:
                notes.append(
                    f"{manifest.source}: {manifest.label}: host policy (nodeSelector) not analysed"
                )
                continue
            raise ctx.error(f"{where}: endpointSelector is required")
        subject = spec["endpointSelector"]
        if namespace is not None and isinstance(subject, Mapping):
            labels = subject.get("matchLabels")
            if isinstance(labels, Mapping) and "k8s:" + CILIUM_NS_KEY in labels:
                # The agent overwrites a `k8s:` namespace match with the policy's namespace
                # (pkg/k8s/apis/cilium.io/utils ParseToCiliumRule: AddMatch). Found by the oracle.
                subject = {
                    **subject,
                    "matchLabels": {k: v for k, v in labels.items() if k != "k8s:" + CILIUM_NS_KEY},
                }
        selector = _selector(ctx, subject, f"{where}.endpointSelector", cilium=True)
        rules: dict[str, list[Rule]] = {"ingress": [], "egress": []}
        present = {"ingress": False, "egress": False}
        for key, direction, deny in (
            ("ingress", "ingress", False),
            ("ingressDeny", "ingress", True),
            ("egress", "egress", False),
            ("egressDeny", "egress", True),
        ):
            raw_rules = _list(ctx, spec, key, f"{where}.")
            if raw_rules:
                present[direction] = True
            for i, raw in enumerate(raw_rules):
                rules[direction].append(
                    _cnp_rule(
                        ctx,
                        ref,
                        raw,
                        direction=direction,
                        deny=deny,
                        where=f"{where}.{key}[{i}]",
                        enforcement=enforcement,
                    )
                )
        # `enableDefaultDeny` is a Cilium 1.16 field: the 1.15 CRD schema does not know it, so
        # the API server prunes it and every CNP with rules in a direction isolates it. Found by
        # the Cilium oracle (pkg/policy/api/rule.go at v1.15.0 has no such field).
        out.append(
            CompiledPolicy(
                ref=ref,
                namespace=namespace,
                selector=selector,
                cilium=True,
                isolates_ingress=present["ingress"],
                isolates_egress=present["egress"],
                ingress=rules["ingress"],
                egress=rules["egress"],
            )
        )
    return out


def _cnp_rule(
    ctx: _Ctx,
    ref: PolicyRef,
    raw: Any,
    *,
    direction: str,
    deny: bool,
    where: str,
    enforcement: Enforcement,
) -> Rule:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ctx.error(f"{where}: rule must be a mapping")
    side = "from" if direction == "ingress" else "to"
    l3_kinds = ["Endpoints", "CIDR", "CIDRSet", "Entities"]
    if direction == "egress":
        l3_kinds += ["Services", "FQDNs", "Groups"]
    used = [f"{side}{k}" for k in l3_kinds if raw.get(f"{side}{k}")]
    if len(used) > 1 and not deny:
        # pkg/policy/api/rule_validation.go: "Combining X and Y is not supported yet"; the agent
        # refuses the policy (deny rules are not validated). Found by the Cilium oracle.
        raise ctx.error(
            f"{where}: Cilium 1.15 rejects combining {used[0]} and {used[1]} in one rule"
        )
    peers: list[Peer] = []
    has_l3 = False
    for i, sel in enumerate(_list(ctx, raw, f"{side}Endpoints", f"{where}.")):
        has_l3 = True
        peers.append(_cnp_endpoint_peer(ctx, ref, sel, f"{where}.{side}Endpoints[{i}]"))
    for i, cidr in enumerate(_list(ctx, raw, f"{side}CIDR", f"{where}.")):
        has_l3 = True
        peers.append(CidrPeer(_cidr_ranges(ctx, cidr, [], f"{where}.{side}CIDR[{i}]"), False))
    for i, item in enumerate(_list(ctx, raw, f"{side}CIDRSet", f"{where}.")):
        has_l3 = True
        w = f"{where}.{side}CIDRSet[{i}]"
        if not isinstance(item, Mapping) or "cidr" not in item:
            raise ctx.error(f"{w}: cidr is required (cidrGroupRef is not supported)")
        peers.append(
            CidrPeer(_cidr_ranges(ctx, item["cidr"], _list(ctx, item, "except", f"{w}."), w), False)
        )
    for i, entity in enumerate(_list(ctx, raw, f"{side}Entities", f"{where}.")):
        has_l3 = True
        if not isinstance(entity, str) or entity not in ENTITIES:
            raise ctx.error(f"{where}.{side}Entities[{i}]: unknown entity {entity!r}")
        world = entity in ("world", "world-ipv4", "world-ipv6", "all")
        cluster = entity in ("cluster", "all")
        # host and remote-node match host-network pods; kube-apiserver, health, ...: no such
        # endpoint is modelled, they match nothing.
        host = entity in ("host", "remote-node")
        peers.append(EntityPeer(world=world, cluster=cluster, host=host))
    for key in (
        f"{side}Services",
        f"{side}Nodes",
        f"{side}Groups",
        f"{side}FQDNs",
        f"{side}Requires",
    ):
        if raw.get(key):
            # Not modelled: these peers match none of the analysed endpoints.
            has_l3 = True
    ports_raw = _list(ctx, raw, "toPorts", f"{where}.")
    ports: tuple[PortSpec, ...] | None
    if ports_raw:
        specs: list[PortSpec] = []
        for i, entry in enumerate(ports_raw):
            specs.extend(_cnp_ports(ctx, entry, f"{where}.toPorts[{i}]", deny, enforcement))
        ports = tuple(specs)
        if not has_l3:
            # An L4-only rule applies to every peer (Cilium "L4 policy without L3").
            peers = [ANY_PEER]
    else:
        ports = () if raw.get("icmps") else None  # ICMP-only rules open no TCP/UDP/SCTP port
    # A rule with neither L3 nor L4 part (`- {}`) selects no peer: default deny, allows nothing.
    return Rule(ref, deny, tuple(peers), ports)


def _cnp_endpoint_peer(ctx: _Ctx, ref: PolicyRef, raw: Any, where: str) -> PodPeer:
    sel = _selector(ctx, raw, where, cilium=True)
    # Cilium scopes a selector without a namespace label to the policy's own namespace.
    if ref.namespace is not None and CILIUM_NS_KEY not in sel.keys():  # noqa: SIM118
        return PodPeer(frozenset({ref.namespace}), None, sel, cilium=True)
    return PodPeer(None, None, sel, cilium=True)


def _cnp_ports(
    ctx: _Ctx, raw: Any, where: str, deny: bool, enforcement: Enforcement
) -> list[PortSpec]:
    if not isinstance(raw, Mapping):
        raise ctx.error(f"{where}: must be a mapping")
    rules = raw.get("rules")
    http_raw = (
        _list(ctx, rules, "http", f"{where}.rules.")
        if rules and not deny and isinstance(rules, Mapping)
        else None
    )
    rules_http = bool(http_raw)
    http = _cnp_http(ctx, http_raw, where) if http_raw else None
    out: list[PortSpec] = []
    # A toPorts entry without ports opens nothing: Cilium iterates its port list only
    # (pkg/policy/rule.go mergeIngress/mergeEgress). Found by the Cilium oracle.
    port_list = _list(ctx, raw, "ports", f"{where}.")
    for i, port in enumerate(port_list):
        w = f"{where}.ports[{i}]"
        if not isinstance(port, Mapping):
            raise ctx.error(f"{w}: must be a mapping")
        proto = str(port.get("protocol") or "ANY").upper()
        if proto == "ANY":
            protos = PROTOCOLS  # Cilium: a port without protocol means every protocol
        elif proto in PROTOCOLS:
            protos = (proto,)
        else:
            raise ctx.error(f"{w}: invalid protocol {proto!r} (expected TCP, UDP, SCTP or ANY)")
        raw_port = port.get("port")
        value: int | str | None
        text = "" if raw_port is None else str(raw_port)
        if text == "":
            # Required by the CRD schema; the agent's sanitize refuses it too.
            raise ctx.error(f'{w}: port is required ("0" means every port)')
        if text == "0":
            value = None
        elif text.isdigit():
            value = _port_number(ctx, int(text), w)
        elif _SVC_NAME.match(text):
            value = text
        else:
            raise ctx.error(f"{w}: invalid port {raw_port!r}")
        end = port.get("endPort")
        if end is not None and (not isinstance(end, int) or isinstance(end, bool)):
            raise ctx.error(f"{w}: invalid endPort {end!r}")
        # Cilium 1.15 enforces only the start port of a range.
        effective_end = None if enforcement == "cilium" else end
        if isinstance(value, int) and effective_end is not None and effective_end < value:
            effective_end = None
        end_value = effective_end if isinstance(value, int) else None
        if rules_http and (protos != ("TCP",) or value is None):
            # The agent refuses such a policy whole (pkg/policy/api/rule_validation.go
            # PortRule.sanitize); found by the Cilium oracle.
            why = "L7 rules can only apply to TCP" if protos != ("TCP",) else "port is 0"
            raise ctx.error(
                f"{w}: Cilium 1.15 rejects this policy ({why}): HTTP rules need protocol TCP "
                "and a non-zero port"
            )
        out.append(PortSpec(protos, value, end_value, http))
    return out


def _cnp_http(ctx: _Ctx, http_raw: Any, where: str) -> Http:
    alts: set[tuple[tuple[str, str], ...]] = set()
    for i, raw_item in enumerate(http_raw):
        item = raw_item or {}
        if not isinstance(item, Mapping):
            raise ctx.error(f"{where}.rules.http[{i}]: must be a mapping")
        method = str(item.get("method") or "")
        path = str(item.get("path") or "")
        for label, pattern in (("method", method), ("path", path)):
            try:
                compile_http_regex(pattern)  # the same cached compile as the matching
            except re.error as exc:
                raise ctx.error(
                    f"{where}.rules.http[{i}].{label}: invalid regex {pattern!r}: {exc}"
                ) from exc
        alts.add(((method, path),))
    # An HTTP rule with neither method nor path matches every request.
    return None if (("", ""),) in alts else frozenset(alts)


# --- shared ------------------------------------------------------------------------------------


def _selector(ctx: _Ctx, raw: Any, where: str, cilium: bool = False) -> Selector:
    try:
        return parse_selector(raw, where, _cilium_key if cilium else None)
    except InputError as exc:
        raise ctx.error(str(exc)) from exc


def _port_number(ctx: _Ctx, value: int, where: str) -> int:
    if not MIN_PORT <= value <= MAX_PORT:
        raise ctx.error(f"{where}: port {value} out of range 1-65535")
    return value


def address_to_line(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    return int(addr) if addr.version == 4 else V6_OFFSET + int(addr)


def network_range(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[int, int]:
    lo = address_to_line(net.network_address)
    return lo, lo + net.num_addresses - 1


def _parse_net(ctx: _Ctx, cidr: Any, where: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(str(cidr), strict=False)
    except ValueError as exc:
        raise ctx.error(f"{where}: invalid CIDR {cidr!r}") from exc


def _cidr_ranges(ctx: _Ctx, cidr: Any, excepts: Any, where: str) -> tuple[tuple[int, int], ...]:
    # ipaddress parsing dominates compiling ipBlock-heavy policy sets; the same blocks repeat.
    memo = (str(cidr), tuple(map(str, excepts)) if isinstance(excepts, list) else repr(excepts))
    known = _CIDR_RANGES.get(memo)
    if known is not None:
        return known
    result = _CIDR_RANGES[memo] = _cidr_ranges_uncached(ctx, cidr, excepts, where)
    return result


_CIDR_RANGES: dict[tuple[str, object], tuple[tuple[int, int], ...]] = {}


def _cidr_ranges_uncached(
    ctx: _Ctx, cidr: Any, excepts: Any, where: str
) -> tuple[tuple[int, int], ...]:
    net = _parse_net(ctx, cidr, where)
    lo, hi = network_range(net)
    holes = sorted(
        network_range(_parse_net(ctx, e, f"{where}.except[{i}]")) for i, e in enumerate(excepts)
    )
    out: list[tuple[int, int]] = []
    cur = lo
    for hlo, hhi in holes:
        if hhi < cur or hlo > hi:
            continue
        if hlo > cur:
            out.append((cur, hlo - 1))
        cur = max(cur, hhi + 1)
    if cur <= hi:
        out.append((cur, hi))
    return tuple(out)
