"""Every allowed pair: for each source class, the destination classes it reaches and on what.

Reads the classes and their attached rules (classes.py); deciding one pair with the policies that
decided it is engine.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from reachability.classes import EndpointClass, EndpointClasses, gc_paused, iter_bits
from reachability.ports import ALL, EMPTY, PortSet
from reachability.results import AllowedFlow


def _ingress_map(model: EndpointClasses, dst: EndpointClass, deny: bool) -> dict[int, PortSet]:
    groups: dict[PortSet, int] = {}
    for rule, bits in dst.ingress:
        if rule.deny is deny and bits:
            ports = rule.resolve(dst.named_ports)
            if ports:
                groups[ports] = groups.get(ports, 0) | bits
    return _spread(groups)


def _egress_map(model: EndpointClasses, src: EndpointClass, deny: bool) -> dict[int, PortSet]:
    groups: dict[PortSet, int] = {}
    out: dict[int, PortSet] = {}
    for rule, bits in src.egress:
        if rule.deny is not deny or not bits:
            continue
        if not rule.uses_named_ports:
            ports = rule.resolve(None)
            if ports:
                groups[ports] = groups.get(ports, 0) | bits
            continue
        for i in iter_bits(bits):
            ports = rule.resolve(model.classes[i].named_ports)
            if ports:
                prev = out.get(i)
                out[i] = ports if prev is None else prev | ports
    for i, ports in _spread(groups).items():
        prev = out.get(i)
        out[i] = ports if prev is None else prev | ports
    return out


def class_flows(model: EndpointClasses) -> dict[int, dict[int, PortSet]]:
    """For every source class, the destination classes it reaches and what is allowed."""
    result, open_out, open_in = class_flows_compact(model)
    outside = [cls.index for cls in model.classes if cls.external]
    for src in open_out:
        result[src].update(dict.fromkeys(outside, ALL))
    for dst in open_in:
        for src in outside:
            result[src][dst] = ALL
    return result


def class_flows_compact(
    model: EndpointClasses,
) -> tuple[dict[int, dict[int, PortSet]], list[int], list[int]]:
    """`class_flows` without its largest and least informative part: the pod classes no
    policy restricts on egress (and that deny nothing outside) reach every outside class on
    every port (`open_out`); every outside class reaches the pod classes no policy restricts
    on ingress (and that deny nothing from outside) on every port (`open_in`). At 150,000
    pods that is millions of entries."""
    with gc_paused():
        return _class_flows_compact(model)


def _class_flows_compact(
    model: EndpointClasses,
) -> tuple[dict[int, dict[int, PortSet]], list[int], list[int]]:
    n = len(model.classes)
    external = [cls.external for cls in model.classes]
    pod_indices = [i for i in range(n) if not external[i]]
    egress: dict[int, dict[int, PortSet] | None] = {}
    egress_deny: dict[int, dict[int, PortSet]] = {}
    for cls in model.classes:
        if cls.external:
            continue
        egress[cls.index] = _egress_map(model, cls, False) if cls.isolated_egress else None
        denies = _egress_map(model, cls, True)
        if denies:
            egress_deny[cls.index] = denies
    result: dict[int, dict[int, PortSet]] = {i: {} for i in range(n)}
    open_out = _flows_to_outside(egress, egress_deny, external, result)
    open_in: list[int] = []
    for dst in model.classes:
        if external[dst.index]:
            continue
        ingress = _ingress_map(model, dst, False) if dst.isolated_ingress else None
        local_hosts = model.local_host_sources.get(dst.index)
        if ingress is not None and local_hosts:
            # The node's own host-network pods: every port, as if ingress were open to them.
            ingress.update(dict.fromkeys(local_hosts, ALL))
        ingress_deny = _ingress_map(model, dst, True)
        sources: Iterable[int]
        if ingress is not None:
            sources = sorted(ingress)
        elif any(external[i] for i in ingress_deny):
            sources = range(n)
        else:
            open_in.append(dst.index)
            sources = pod_indices
        for src_index in sources:
            ports = ALL if ingress is None else ingress[src_index]
            if src_index in ingress_deny:
                ports = ports - ingress_deny[src_index]
            if not external[src_index]:
                emap = egress[src_index]
                if emap is not None:
                    out = emap.get(dst.index)
                    if out is None:
                        continue
                    ports = ports & out
                deny = egress_deny.get(src_index)
                if deny is not None and dst.index in deny:
                    ports = ports - deny[dst.index]
            if ports:
                result[src_index][dst.index] = ports
    return result, open_out, open_in


def flows(model: EndpointClasses) -> Iterator[AllowedFlow]:
    """Every allowed (from, to, ports), sorted by source then destination name."""
    by_class = class_flows(model)
    names = {cls.index: model.endpoint_names(cls) for cls in model.classes}
    sources = sorted((name, cls.index) for cls in model.classes for name in names[cls.index])
    for src_name, src_index in sources:
        targets: list[tuple[str, PortSet]] = []
        for dst_index, ports in by_class[src_index].items():
            targets.extend((name, ports) for name in names[dst_index] if name != src_name)
        targets.sort(key=lambda t: t[0])
        for dst_name, ports in targets:
            yield src_name, dst_name, ports


def _flows_to_outside(
    egress: dict[int, dict[int, PortSet] | None],
    egress_deny: dict[int, dict[int, PortSet]],
    external: list[bool],
    result: dict[int, dict[int, PortSet]],
) -> list[int]:
    """Fill `result` towards outside classes (no ingress side there: the source's egress
    decides); return the pod classes open to every outside class on every port instead."""
    outside = [i for i, ext in enumerate(external) if ext]
    open_out: list[int] = []
    for src_index, emap in egress.items():
        deny = egress_deny.get(src_index, {})
        row = result[src_index]
        if emap is None:
            if not any(external[d] for d in deny):
                open_out.append(src_index)
                continue
            for dst_index in outside:
                ports = ALL - deny.get(dst_index, EMPTY)
                if ports:
                    row[dst_index] = ports
            continue
        for dst_index, allowed in emap.items():
            if external[dst_index]:
                ports = allowed - deny.get(dst_index, EMPTY)
                if ports:
                    row[dst_index] = ports
    return open_out


def _spread(groups: dict[PortSet, int]) -> dict[int, PortSet]:
    out: dict[int, PortSet] = {}
    for ports, bits in groups.items():
        for i in iter_bits(bits):
            prev = out.get(i)
            out[i] = ports if prev is None else prev | ports
    return out
