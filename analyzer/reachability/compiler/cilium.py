"""CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy (cilium.io/v2) compiled into
direction-neutral rules: endpoints on identity labels, CIDRs, entities, ports and L7 HTTP rules,
read as the Cilium profile reads them (reachability/profiles.py)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

from reachability.compiler.addresses import cidr_ranges
from reachability.compiler.model import (
    ANY_PEER,
    PORT_NAME,
    CidrPeer,
    CompiledPolicy,
    Context,
    EntityPeer,
    Peer,
    PodPeer,
    PolicyRef,
    PortSpec,
    Rule,
    field_list,
    parse_policy_selector,
    port_number,
)
from reachability.inputs import CILIUM_NS_KEY, CILIUM_NS_LABEL_PREFIX, Manifest, Pod
from reachability.ports import PROTOCOLS, Http, compile_http_regex
from reachability.profiles import EnforcementProfile
from reachability.results import Rejected

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


def resolve_egress_named_ports(policies: list[CompiledPolicy], pods: Sequence[Pod]) -> None:
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


def _cilium_key(key: str) -> str:
    for prefix in ("k8s:", "any:"):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


# At most this many ports in one toPorts entry (pkg/policy/api/rule_validation.go maxPorts, 1.15
# and 1.19; the CRD sets no maxItems).
MAX_PORTS = 40


def compile_cilium_policy(
    manifest: Manifest, profile: EnforcementProfile, notes: list[str] | None
) -> list[CompiledPolicy] | Rejected:
    """The object's rules; or, when the agent would refuse to import it (pkg/policy/api
    rule_validation.go Rule.Sanitize, called by the CRD types' Parse), why. Errors the API
    server itself would raise (the CRD schema) or that the analyzer cannot model are InputError."""
    ctx = Context(manifest)
    clusterwide = manifest.kind == "CiliumClusterwideNetworkPolicy"
    namespace = None if clusterwide else manifest.namespace
    ref = PolicyRef(manifest.kind, namespace, manifest.name)
    doc = manifest.doc
    specs: list[tuple[Any, str]] = []
    if doc.get("spec") is not None:
        specs.append((doc["spec"], "spec"))
    specs.extend((s, f"specs[{i}]") for i, s in enumerate(field_list(ctx, doc, "specs", "")))
    if not specs:
        raise ctx.error("spec or specs is required")
    out: list[CompiledPolicy] = []
    for spec, where in specs:
        if not isinstance(spec, Mapping):
            raise ctx.error(f"{where}: must be a mapping")
        if spec.get("endpointSelector") is not None and spec.get("nodeSelector") is not None:
            # The CRD's oneOf: exactly one of the two (the API server refuses the object).
            raise ctx.error(f"{where}: give endpointSelector or nodeSelector, not both")
        if profile.rule_without_rules_rejected and not any(
            spec.get(key) for key in ("ingress", "ingressDeny", "egress", "egressDeny")
        ):
            ctx.reject(
                f"{where}: rule must have at least one of Ingress, IngressDeny, Egress, EgressDeny"
            )
        if spec.get("endpointSelector") is None:
            if namespace is not None and spec.get("nodeSelector") is not None:
                # CiliumNetworkPolicy.Parse (pkg/k8s/apis/cilium.io/v2/cnp_types.go): a host
                # policy is a CiliumClusterwideNetworkPolicy.
                ctx.reject(f"{where}: rule cannot have NodeSelector")
                continue
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
        selector = parse_policy_selector(
            ctx, subject, f"{where}.endpointSelector", cilium_key=_cilium_key
        )
        rules: dict[str, list[Rule]] = {"ingress": [], "egress": []}
        present = {"ingress": False, "egress": False}
        for key, direction, deny in (
            ("ingress", "ingress", False),
            ("ingressDeny", "ingress", True),
            ("egress", "egress", False),
            ("egressDeny", "egress", True),
        ):
            raw_rules = field_list(ctx, spec, key, f"{where}.")
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
                        profile=profile,
                    )
                )
        # `enableDefaultDeny` is a Cilium 1.16 field: the 1.15 CRD schema does not know it, so
        # the API server prunes it and every CNP with rules in a direction isolates it. Found by
        # the Cilium oracle (pkg/policy/api/rule.go at v1.15.0 has no such field). From 1.16 a
        # direction set to false adds its rules without isolating (pkg/policy/repository.go).
        isolates = dict(present)
        default_deny = spec.get("enableDefaultDeny")
        if profile.enable_default_deny and isinstance(default_deny, Mapping):
            for direction in ("ingress", "egress"):
                if default_deny.get(direction) is False:
                    isolates[direction] = False
        out.append(
            CompiledPolicy(
                ref=ref,
                namespace=namespace,
                selector=selector,
                cilium=True,
                isolates_ingress=isolates["ingress"],
                isolates_egress=isolates["egress"],
                ingress=rules["ingress"],
                egress=rules["egress"],
            )
        )
    if ctx.rejection is not None:
        return Rejected(ref.label, manifest.source, ctx.rejection)
    return out


def _check_rule(
    ctx: Context,
    raw: Mapping[str, Any],
    where: str,
    *,
    direction: str,
    profile: EnforcementProfile,
    l3_fields: list[str],
) -> None:
    """What the agent's IngressRule/EgressRule.sanitize refuses in one rule (the whole object is
    then refused): pkg/policy/api/rule_validation.go, v1.15.19 and v1.19.6."""
    used = [key for key in l3_fields if raw.get(key)]
    if len(used) > 1:
        # "Combining X and Y is not supported yet". Found by the Cilium oracle.
        ctx.reject(f"{where}: combining {used[0]} and {used[1]} is not supported")
    if (
        direction == "egress"
        and profile.to_services_with_to_ports_rejected
        and raw.get("toServices")
        and raw.get("toPorts")
    ):
        # l3DependentL4Support["ToServices"] = false (cilium/cilium#20067).
        ctx.reject(f"{where}: combining toServices and toPorts is not supported")
    if raw.get("icmps") and raw.get("toPorts"):
        ctx.reject(f"{where}: the icmps block may only be present without toPorts")


def _cnp_rule(
    ctx: Context,
    ref: PolicyRef,
    raw: Any,
    *,
    direction: str,
    deny: bool,
    where: str,
    profile: EnforcementProfile,
) -> Rule:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ctx.error(f"{where}: rule must be a mapping")
    side = "from" if direction == "ingress" else "to"
    l3_kinds = ["Endpoints", "CIDR", "CIDRSet", "Entities"]
    if direction == "egress":
        l3_kinds += ["Services", "FQDNs", "Groups"]
    # The agent sanitizes allow rules; deny rules from 1.16 only (profiles.py).
    sanitized = not deny or profile.sanitizes_deny_rules
    if sanitized:
        l3 = [f"{side}{k}" for k in l3_kinds]
        _check_rule(ctx, raw, where, direction=direction, profile=profile, l3_fields=l3)
    peers: list[Peer] = []
    has_l3 = False
    for i, sel in enumerate(field_list(ctx, raw, f"{side}Endpoints", f"{where}.")):
        has_l3 = True
        peers.append(_cnp_endpoint_peer(ctx, ref, sel, f"{where}.{side}Endpoints[{i}]", profile))
    for i, cidr in enumerate(field_list(ctx, raw, f"{side}CIDR", f"{where}.")):
        has_l3 = True
        peers.append(CidrPeer(cidr_ranges(ctx, cidr, [], f"{where}.{side}CIDR[{i}]"), False))
    for i, item in enumerate(field_list(ctx, raw, f"{side}CIDRSet", f"{where}.")):
        has_l3 = True
        w = f"{where}.{side}CIDRSet[{i}]"
        if not isinstance(item, Mapping) or "cidr" not in item:
            raise ctx.error(f"{w}: cidr is required (cidrGroupRef is not supported)")
        _check_excepts(ctx, item, w, sanitized)
        peers.append(
            CidrPeer(
                cidr_ranges(ctx, item["cidr"], field_list(ctx, item, "except", f"{w}."), w), False
            )
        )
    for i, entity in enumerate(field_list(ctx, raw, f"{side}Entities", f"{where}.")):
        has_l3 = True
        if not isinstance(entity, str) or entity not in ENTITIES:
            raise ctx.error(f"{where}.{side}Entities[{i}]: unknown entity {entity!r}")
        world = entity in ("world", "world-ipv4", "world-ipv6", "all")
        cluster = entity in ("cluster", "all")
        # host and remote-node match host-network pods; kube-apiserver, health, ...: no such
        # endpoint is modelled, they match nothing.
        host = entity in ("host", "remote-node")
        peers.append(EntityPeer(world=world, cluster=cluster, host=host))
    if raw.get(f"{side}Requires"):
        # A requirement narrows every rule of the subject, and a rule whose only peer is one,
        # with toPorts, allows where the analyzer would say deny: never under-report, refuse.
        why = (
            f"Cilium {profile.version}'s CRD refuses a non-empty {side}Requires (maxItems 0)"
            if profile.requires_refused_by_crd
            else f"{side}Requires (deprecated in Cilium 1.17, refused from 1.19) is not analysed"
        )
        raise ctx.error(f"{where}.{side}Requires: {why}; remove it")
    for key in (
        f"{side}Services",
        f"{side}Nodes",
        f"{side}Groups",
        f"{side}FQDNs",
    ):
        if raw.get(key):
            # Not modelled: these peers match none of the analysed endpoints.
            has_l3 = True
    if _has_empty_peer_list(raw, side, profile):
        # The rule selects no peer at all, whatever its other peer lists hold.
        has_l3 = True
        peers = []
    ports_raw = field_list(ctx, raw, "toPorts", f"{where}.")
    ports: tuple[PortSpec, ...] | None
    if ports_raw:
        specs: list[PortSpec] = []
        for i, entry in enumerate(ports_raw):
            specs.extend(
                _cnp_ports(
                    ctx,
                    entry,
                    f"{where}.toPorts[{i}]",
                    deny=deny,
                    profile=profile,
                    direction=direction,
                )
            )
        ports = tuple(specs)
        if not has_l3:
            # An L4-only rule applies to every peer (Cilium "L4 policy without L3").
            peers = [ANY_PEER]
    else:
        ports = () if raw.get("icmps") else None  # ICMP-only rules open no TCP/UDP/SCTP port
    # A rule with neither L3 nor L4 part (`- {}`) selects no peer: default deny, allows nothing.
    return Rule(ref, deny, tuple(peers), ports)


def _has_empty_peer_list(raw: Mapping[str, Any], side: str, profile: EnforcementProfile) -> bool:
    """Cilium 1.16: an empty non-nil peer list selects no identity (upgrade.rst), and the rule's
    other peer lists with it (pkg/policy/utils/parserules.go mergeEndpointSelectors of v1.19.7
    returns no selector). Found by the 1.19 oracle."""
    if not profile.empty_peer_list_selects_none:
        return False
    kinds = ("Endpoints", "Nodes", "CIDR", "CIDRSet", "Entities")
    return any(isinstance(raw.get(f"{side}{k}"), list) and not raw[f"{side}{k}"] for k in kinds)


def _cnp_endpoint_peer(
    ctx: Context, ref: PolicyRef, raw: Any, where: str, profile: EnforcementProfile
) -> PodPeer:
    sel = parse_policy_selector(ctx, raw, where, cilium_key=_cilium_key)
    keys = sel.keys()
    # Cilium scopes a selector without a namespace label to the policy's own namespace; from
    # 1.16 a selector on namespace labels is not scoped either (profile field).
    names_namespaces = CILIUM_NS_KEY in keys or (
        profile.namespace_label_peers_cross_namespaces
        and any(k.startswith(CILIUM_NS_LABEL_PREFIX) for k in keys)
    )
    if ref.namespace is not None and not names_namespaces:
        return PodPeer(frozenset({ref.namespace}), None, sel, cilium=True)
    return PodPeer(None, None, sel, cilium=True)


def _check_excepts(ctx: Context, item: Mapping[str, Any], where: str, sanitized: bool) -> None:
    """CIDRRule.sanitize: each `except` must lie inside the rule's `cidr` (the CRD checks only
    their syntax)."""
    if not sanitized:
        return
    try:
        net = ipaddress.ip_network(str(item["cidr"]), strict=False)
    except ValueError:
        return  # cidr_ranges names the bad CIDR
    for i, raw in enumerate(field_list(ctx, item, "except", f"{where}.")):
        try:
            addr = ipaddress.ip_interface(str(raw)).ip
        except ValueError:
            return
        if addr.version != net.version or addr not in net:
            ctx.reject(
                f"{where}.except[{i}]: allow CIDR prefix {item['cidr']} does not contain "
                f"exclude CIDR prefix {raw}"
            )


def _cnp_ports(
    ctx: Context,
    raw: Any,
    where: str,
    *,
    deny: bool,
    profile: EnforcementProfile,
    direction: str,
) -> list[PortSpec]:
    if not isinstance(raw, Mapping):
        raise ctx.error(f"{where}: must be a mapping")
    rules = raw.get("rules") if not deny else None
    if rules is not None and not isinstance(rules, Mapping):
        raise ctx.error(f"{where}.rules: must be a mapping")
    rules = rules or {}
    http_raw = field_list(ctx, rules, "http", f"{where}.rules.")
    http = _cnp_http(ctx, http_raw, where) if http_raw else None
    # What the agent's PortRule.sanitize refuses (pkg/policy/api/rule_validation.go, the same
    # in 1.15.19 and 1.19.6); each makes it refuse the whole object. Only HTTP rules are
    # enforced here; Kafka, DNS and generic L7 rules count for these checks only.
    l7_len = sum(len(field_list(ctx, rules, k, f"{where}.rules.")) for k in ("kafka", "dns", "l7"))
    has_l7 = bool(http_raw) or l7_len > 0
    has_dns = bool(rules.get("dns"))
    port_list = field_list(ctx, raw, "ports", f"{where}.")
    if not deny:
        ingress = direction == "ingress"
        _check_port_rule(ctx, raw, where, ingress=ingress, has_l7=has_l7, has_dns=has_dns)
    if (not deny or profile.sanitizes_deny_rules) and len(port_list) > MAX_PORTS:
        ctx.reject(f"{where}.ports: too many ports, the max is {MAX_PORTS}")
    out: list[PortSpec] = []
    zero_port = False
    # A toPorts entry without ports opens nothing: Cilium iterates its port list only
    # (pkg/policy/rule.go mergeIngress/mergeEgress). Found by the Cilium oracle.
    for i, port in enumerate(port_list):
        w = f"{where}.ports[{i}]"
        if not isinstance(port, Mapping):
            raise ctx.error(f"{w}: must be a mapping")
        protos, value, end_value = _port_spec(ctx, port, w, profile)
        zero_port = zero_port or str(port.get("port")) == "0"
        proto = str(port.get("protocol") or "ANY").upper()
        if has_l7 and not has_dns and protos != ("TCP",):
            # Found by the Cilium oracle (http-rules-without-protocol-tcp-reject-the-policy).
            ctx.reject(f"{w}: L7 rules can only apply to TCP (not {proto})")
        out.append(PortSpec(protos, value, end_value, http))
    if not deny and has_l7:
        _check_l7_rules(ctx, rules, where, zero_port, bool(port_list))
    return out


def _check_port_rule(
    ctx: Context, raw: Mapping[str, Any], where: str, *, ingress: bool, has_l7: bool, has_dns: bool
) -> None:
    """PortRule.sanitize on an allow rule's toPorts entry, before its ports."""
    server_names = field_list(ctx, raw, "serverNames", f"{where}.")
    if ingress and has_dns:
        ctx.reject(f"{where}: DNS rules are not allowed on ingress")
    if server_names and has_l7 and raw.get("terminatingTLS") is None:
        ctx.reject(f"{where}: serverNames are not allowed with L7 rules without TLS termination")
    if "" in server_names:
        ctx.reject(f"{where}.serverNames: empty server name is not allowed")
    listener = raw.get("listener")
    if isinstance(listener, Mapping):
        name = listener.get("name")
        if ingress:
            ctx.reject(f"{where}.listener: listener is not allowed on ingress ({name})")
        elif has_l7:
            ctx.reject(f"{where}.listener: listener is not allowed with L7 rules ({name})")


def _port_spec(
    ctx: Context, port: Mapping[str, Any], w: str, profile: EnforcementProfile
) -> tuple[tuple[str, ...], int | str | None, int | None]:
    """One `ports` entry: its protocols, port (None: every port, str: a name) and range end."""
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
        value = port_number(ctx, int(text), w)
    elif PORT_NAME.match(text):
        value = text
    else:
        raise ctx.error(f"{w}: invalid port {raw_port!r}")
    end = port.get("endPort")
    if end is not None and (not isinstance(end, int) or isinstance(end, bool)):
        raise ctx.error(f"{w}: invalid endPort {end!r}")
    # Cilium 1.15 enforces only the start port of a range.
    effective_end = end if profile.end_port else None
    if isinstance(value, int) and effective_end is not None and effective_end < value:
        effective_end = None
    end_value = effective_end if isinstance(value, int) else None
    return protos, value, end_value


def _check_l7_rules(
    ctx: Context, rules: Mapping[str, Any], where: str, zero_port: bool, has_ports: bool
) -> None:
    """PortRule.sanitize on an entry with L7 rules, then L7Rules.sanitize."""
    if zero_port:
        ctx.reject(f"{where}: L7 rules can not be used when a port is 0")
    if rules.get("dns") is not None and not has_ports:
        ctx.reject(f"{where}.rules.dns: port 53 must be specified for DNS rules")
    if rules.get("l7") is not None and not rules.get("l7proto"):
        ctx.reject(f"{where}.rules.l7: 'l7' may only be specified when a 'l7proto' is also given")
    kinds = [k for k in ("http", "kafka", "dns") if rules.get(k) is not None]
    if rules.get("l7proto"):
        kinds.append("l7proto")
    if len(kinds) > 1:
        ctx.reject(
            f"{where}.rules: multiple L7 protocol rule types specified in single rule "
            f"({', '.join(kinds)})"
        )


def _cnp_http(ctx: Context, http_raw: Any, where: str) -> Http:
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
