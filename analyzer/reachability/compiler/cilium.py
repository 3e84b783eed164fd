"""CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy (cilium.io/v2) compiled into
direction-neutral rules: endpoints on identity labels, CIDRs, entities, ports and L7 HTTP rules,
read as the Cilium profile reads them (reachability/profiles.py)."""

from __future__ import annotations

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


def compile_cilium_policy(
    manifest: Manifest, profile: EnforcementProfile, notes: list[str] | None
) -> list[CompiledPolicy]:
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
        if profile.cnp_rules_required and not any(present.values()):
            # pkg/policy/api/rule_validation.go Rule.Sanitize (Cilium 1.17); found by the oracle.
            raise ctx.error(
                f"{where}: Cilium {profile.version} rejects a policy without ingress, ingressDeny, "
                "egress or egressDeny rules"
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
    return out


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
    used = [f"{side}{k}" for k in l3_kinds if raw.get(f"{side}{k}")]
    if len(used) > 1 and (not deny or profile.deny_rules_sanitized):
        # pkg/policy/api/rule_validation.go: "Combining X and Y is not supported yet"; the agent
        # refuses the policy (1.15 does not validate deny rules). Found by the Cilium oracle.
        raise ctx.error(
            f"{where}: Cilium {profile.version} rejects combining {used[0]} and {used[1]} "
            "in one rule"
        )
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
    if profile.empty_peer_list_selects_none:
        kinds = ["Endpoints", "Nodes", "CIDR", "CIDRSet", "Entities"]
        if any(isinstance(raw.get(f"{side}{k}"), list) and not raw[f"{side}{k}"] for k in kinds):
            # Cilium 1.16: an empty non-nil peer list selects no identity (upgrade.rst), and the
            # rule's other peer lists with it (pkg/policy/utils/parserules.go
            # mergeEndpointSelectors of v1.19.7 returns no selector). Found by the 1.19 oracle.
            has_l3 = True
            peers = []
    ports_raw = field_list(ctx, raw, "toPorts", f"{where}.")
    ports: tuple[PortSpec, ...] | None
    if ports_raw:
        specs: list[PortSpec] = []
        for i, entry in enumerate(ports_raw):
            specs.extend(_cnp_ports(ctx, entry, f"{where}.toPorts[{i}]", deny, profile))
        ports = tuple(specs)
        if not has_l3:
            # An L4-only rule applies to every peer (Cilium "L4 policy without L3").
            peers = [ANY_PEER]
    else:
        ports = () if raw.get("icmps") else None  # ICMP-only rules open no TCP/UDP/SCTP port
    # A rule with neither L3 nor L4 part (`- {}`) selects no peer: default deny, allows nothing.
    return Rule(ref, deny, tuple(peers), ports)


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


def _cnp_ports(
    ctx: Context, raw: Any, where: str, deny: bool, profile: EnforcementProfile
) -> list[PortSpec]:
    if not isinstance(raw, Mapping):
        raise ctx.error(f"{where}: must be a mapping")
    rules = raw.get("rules")
    http_raw = (
        field_list(ctx, rules, "http", f"{where}.rules.")
        if rules and not deny and isinstance(rules, Mapping)
        else None
    )
    rules_http = bool(http_raw)
    http = _cnp_http(ctx, http_raw, where) if http_raw else None
    out: list[PortSpec] = []
    # A toPorts entry without ports opens nothing: Cilium iterates its port list only
    # (pkg/policy/rule.go mergeIngress/mergeEgress). Found by the Cilium oracle.
    port_list = field_list(ctx, raw, "ports", f"{where}.")
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
        if rules_http and (protos != ("TCP",) or value is None):
            # The agent refuses such a policy whole (pkg/policy/api/rule_validation.go
            # PortRule.sanitize); found by the Cilium oracle.
            why = "L7 rules can only apply to TCP" if protos != ("TCP",) else "port is 0"
            raise ctx.error(
                f"{w}: Cilium {profile.version} rejects this policy ({why}): HTTP rules need "
                "protocol TCP and a non-zero port"
            )
        out.append(PortSpec(protos, value, end_value, http))
    return out


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
