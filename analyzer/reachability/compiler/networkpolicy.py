"""Kubernetes NetworkPolicy (networking.k8s.io/v1) compiled into direction-neutral rules, read as
the enforcement profile reads it (reachability/profiles.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reachability.compiler.addresses import cidr_ranges
from reachability.compiler.model import (
    ANY_PEER,
    PORT_NAME,
    CidrPeer,
    CompiledPolicy,
    Context,
    Peer,
    PodPeer,
    PolicyRef,
    PortSpec,
    Rule,
    field_list,
    parse_policy_selector,
    port_number,
)
from reachability.inputs import Manifest
from reachability.ports import MAX_PORT, PROTOCOLS
from reachability.profiles import EnforcementProfile


def compile_networkpolicy(manifest: Manifest, profile: EnforcementProfile) -> list[CompiledPolicy]:
    ctx = Context(manifest)
    spec = manifest.doc.get("spec")
    if not isinstance(spec, Mapping):
        raise ctx.error("spec is missing")
    ref = PolicyRef("NetworkPolicy", manifest.namespace, manifest.name)
    selector = parse_policy_selector(ctx, spec.get("podSelector"), "spec.podSelector")
    ingress_raw = field_list(ctx, spec, "ingress", "spec.")
    egress_raw = field_list(ctx, spec, "egress", "spec.")
    types = field_list(ctx, spec, "policyTypes", "spec.")
    if not types:
        # Kubernetes defaulting: Ingress always, Egress iff the policy has egress rules.
        types = ["Ingress"] + (["Egress"] if egress_raw else [])
    for t in types:
        if t not in ("Ingress", "Egress"):
            raise ctx.error(f"spec.policyTypes: invalid value {t!r}")
    ingress = [
        _np_rule(ctx, ref, r, peer_key="from", where=f"spec.ingress[{i}]", profile=profile)
        for i, r in enumerate(ingress_raw)
    ]
    egress = [
        _np_rule(ctx, ref, r, peer_key="to", where=f"spec.egress[{i}]", profile=profile)
        for i, r in enumerate(egress_raw)
    ]
    isolates_ingress = "Ingress" in types
    isolates_egress = "Egress" in types
    if profile.rules_isolate_without_policy_types:
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
    ctx: Context,
    ref: PolicyRef,
    raw: Any,
    *,
    peer_key: str,
    where: str,
    profile: EnforcementProfile,
) -> Rule:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ctx.error(f"{where}: rule must be a mapping")
    peers_raw = field_list(ctx, raw, peer_key, f"{where}.")
    peers: tuple[Peer, ...]
    # An empty or missing from/to matches every peer, in and outside the cluster.
    peers = (
        tuple(
            _np_peer(ctx, ref, p, f"{where}.{peer_key}[{i}]", profile)
            for i, p in enumerate(peers_raw)
        )
        if peers_raw
        else (ANY_PEER,)
    )
    ports_raw = field_list(ctx, raw, "ports", f"{where}.")
    ports = (
        tuple(_np_port(ctx, p, f"{where}.ports[{i}]", profile) for i, p in enumerate(ports_raw))
        if ports_raw
        else None
    )
    return Rule(ref, False, peers, ports)


def _np_peer(
    ctx: Context, ref: PolicyRef, raw: Any, where: str, profile: EnforcementProfile
) -> Peer:
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
            cidr_ranges(
                ctx,
                block["cidr"],
                field_list(ctx, block, "except", f"{where}.ipBlock."),
                f"{where}.ipBlock",
            ),
            matches_pods=profile.ip_block_matches_pods,
        )
    if not has_pod and not has_ns:
        raise ctx.error(f"{where}: peer needs podSelector, namespaceSelector or ipBlock")
    pods = parse_policy_selector(ctx, raw.get("podSelector"), f"{where}.podSelector")
    if has_ns:
        ns_sel = parse_policy_selector(
            ctx, raw.get("namespaceSelector"), f"{where}.namespaceSelector"
        )
        return PodPeer(None, ns_sel, pods, cilium=False)
    return PodPeer(frozenset({ref.namespace or ""}), None, pods, cilium=False)


def _np_port(ctx: Context, raw: Any, where: str, profile: EnforcementProfile) -> PortSpec:
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
        value = port_number(ctx, port, where)
    elif isinstance(port, str) and port.isdigit():
        value = port_number(ctx, int(port), where)
    elif isinstance(port, str) and PORT_NAME.match(port) and not port.isdigit():
        value = port
    else:
        raise ctx.error(f"{where}: invalid port {port!r}")
    end = raw.get("endPort")
    if end is not None:
        if not isinstance(value, int):
            raise ctx.error(f"{where}: endPort requires a numeric port")
        if not isinstance(end, int) or isinstance(end, bool) or not value <= end <= MAX_PORT:
            raise ctx.error(f"{where}: invalid endPort {end!r} (must be >= port and <= 65535)")
        if not profile.end_port:
            end = None  # Cilium < 1.16 enforces the start port only.
    return PortSpec((proto,), value, end, None)
