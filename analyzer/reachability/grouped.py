"""Grouped listings: flows between the analyzer's endpoint classes instead of every pod pair.

A class holds the pods no policy can tell apart (same namespace, same values of the label keys some
selector tests, same service account, same named ports some rule names, same ipBlock memberships),
so every pod of a class has the same flows: the grouped listing says the same as the per-pod one in
size classes^2 instead of pods^2 (the per-pod JSON of 50,000 pods was 4.4 GB,
docs/benchmarks-scale.md). A
group is named after its pod when it has one, otherwise `NAMESPACE/{k=v,...}` with the labels that
matter. Outside the cluster, a group is the set of addresses one pod group reaches (or is reached
from) with the same ports, named by its first CIDR and how many follow (`cidr:0.0.0.0/5+12`).
"""

from __future__ import annotations

import csv
import json
from typing import TextIO

from reachability.classes import EndpointClass, gc_paused, range_names
from reachability.compiler.addresses import V6_OFFSET
from reachability.engine import Analyzer
from reachability.output import (
    flow_entries,
    http_text,
    json_tail,
    md_escape,
    ports_text,
    ranges_text,
    write_rejected_md,
)
from reachability.pictures import write_grouping_dot
from reachability.ports import ALL, PortSet
from reachability.results import Group, Grouping


def build_grouping(analyzer: Analyzer, per_pod: bool = False) -> Grouping:
    """Pod groups = endpoint classes (or one per pod); external groups = the address set a pod
    group reaches (or is reached from) with the same ports, so an unrestricted pod has one flow
    to the outside instead of one per CIDR atom the policies cut. Sorted by name."""
    with gc_paused():
        grouping = _build_grouping(analyzer, per_pod)
    grouping.rejected = list(analyzer.rejected)
    return grouping


def _build_grouping(analyzer: Analyzer, per_pod: bool) -> Grouping:
    groups, by_class = _pod_groups(analyzer, per_pod)
    multi = [len(g.members) > 1 for g in groups]
    flows: list[tuple[int, int, PortSet]] = []
    classes = analyzer.classes
    is_ext = [cls.external for cls in classes]
    members = [by_class.get(i, []) for i in range(len(classes))]
    outside = _Outside(analyzer, groups).group
    class_flows, open_out, open_in = analyzer.class_flows_compact()
    # Unrestricted classes reach (are reached from) every outside class and no single one:
    # one flow to (from) the group of all outside addresses.
    everything = outside([i for i, ext in enumerate(is_ext) if ext])
    if everything is not None:
        for src_cls in open_out:
            flows.extend((src, everything, ALL) for src in members[src_cls])
        for dst_cls in open_in:
            flows.extend((everything, dst, ALL) for dst in members[dst_cls])
    inbound: dict[int, dict[PortSet, list[int]]] = {}  # pod class -> outside classes, by ports
    for src_cls, row in class_flows.items():
        if is_ext[src_cls]:
            for dst_cls, ports in row.items():
                inbound.setdefault(dst_cls, {}).setdefault(ports, []).append(src_cls)
            continue
        sources = members[src_cls]
        if not sources:
            continue
        targets: list[tuple[int, PortSet]] = []
        outbound: dict[PortSet, list[int]] = {}
        for dst_cls, ports in row.items():
            if is_ext[dst_cls]:
                outbound.setdefault(ports, []).append(dst_cls)
            else:
                for dst in members[dst_cls]:
                    targets.append((dst, ports))
        for ports, indices in outbound.items():
            ext = outside(indices)
            if ext is not None:
                targets.append((ext, ports))
        for src in sources:
            if multi[src]:
                flows += [(src, dst, ports) for dst, ports in targets]
            else:  # a pod of its own has no flow to itself
                flows += [(src, dst, ports) for dst, ports in targets if dst != src]
    for dst_cls, by_ports in inbound.items():
        for ports, indices in by_ports.items():
            ext = outside(indices)
            if ext is not None:
                flows.extend((ext, dst, ports) for dst in members[dst_cls])
    return _sorted_grouping(analyzer.enforcement, groups, flows)


class _Outside:
    """Address groups: the outside classes one row lists, merged into ranges once per distinct
    index tuple (rows list the same ones again and again)."""

    def __init__(self, analyzer: Analyzer, groups: list[Group]) -> None:
        self.analyzer = analyzer
        self.groups = groups
        self.by_indices: dict[tuple[int, ...], int | None] = {}
        self.by_ranges: dict[tuple[tuple[int, int], ...], int | None] = {}

    def group(self, indices: list[int]) -> int | None:
        key = tuple(indices)
        if key not in self.by_indices:
            classes = self.analyzer.classes
            ranges = _merged([r for i in key for r in classes[i].ranges])
            if ranges not in self.by_ranges:
                cidrs = range_names(list(ranges), self.analyzer.show_v6)
                if not cidrs:  # IPv6 only, and no policy mentions IPv6
                    self.by_ranges[ranges] = None
                else:
                    name = cidrs[0] if len(cidrs) == 1 else f"{cidrs[0]}+{len(cidrs) - 1}"
                    self.groups.append(Group(name, None, {}, cidrs))
                    self.by_ranges[ranges] = len(self.groups) - 1
            self.by_indices[key] = self.by_ranges[ranges]
        return self.by_indices[key]


def _pod_groups(analyzer: Analyzer, per_pod: bool) -> tuple[list[Group], dict[int, list[int]]]:
    groups: list[Group] = []
    by_class: dict[int, list[int]] = {}  # pod class -> its group ids
    for cls in analyzer.classes:
        if cls.external:
            continue
        pod = cls.pods[0]
        labels = {k: v for k, v in sorted(pod.labels.items()) if k in analyzer.label_keys}

        def group(name: str, members: list[str], cls: EndpointClass = cls) -> int:
            groups.append(
                Group(
                    name,
                    cls.pods[0].namespace,
                    {
                        k: v
                        for k, v in sorted(cls.pods[0].labels.items())
                        if k in analyzer.label_keys
                    },
                    members,
                    open_ingress=not cls.isolated_ingress,
                    open_egress=not cls.isolated_egress,
                    service_account=cls.pods[0].service_account,
                )
            )
            by_class.setdefault(cls.index, []).append(len(groups) - 1)
            return len(groups) - 1

        if per_pod or len(cls.pods) == 1:
            for member in cls.pods:
                group(member.key, [member.key])
        else:
            selected = ",".join(f"{k}={v}" for k, v in labels.items())
            group(f"{pod.namespace}/{{{selected}}}", [p.key for p in cls.pods])
    return groups, by_class


def _sorted_grouping(
    enforcement: str, groups: list[Group], flows: list[tuple[int, int, PortSet]]
) -> Grouping:
    # Distinct names: classes that differ only in service account, ports or ipBlock membership.
    order = sorted(range(len(groups)), key=lambda i: (groups[i].name, groups[i].members))
    taken: dict[str, int] = {}
    for i in order:
        n = taken.get(groups[i].name, 0) + 1
        taken[groups[i].name] = n
        if n > 1:
            groups[i].name = f"{groups[i].name}#{n}"
    order.sort(key=lambda i: groups[i].name)
    position = {old: new for new, old in enumerate(order)}
    grouping = Grouping(enforcement, [groups[i] for i in order])
    grouping.flows = sorted((position[s], position[d], p) for s, d, p in flows)
    return grouping


def _merged(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        # Never across the IPv4/IPv6 seam of the unified line.
        if out and lo <= out[-1][1] + 1 and lo != V6_OFFSET:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _members_text(group: Group) -> str:
    return " ".join(group.members)


def write_grouped(grouping: Grouping, fmt: str, out: TextIO) -> int:
    """Write the grouped listing in `fmt`; returns the number of group-to-group flows."""
    if fmt == "dot":
        write_grouping_dot(grouping, out)
        return len(grouping.flows)
    enforcement = grouping.enforcement
    groups = grouping.groups
    if fmt == "json":
        rejected = json.dumps([r.json() for r in grouping.rejected])
        out.write(
            f'{{"enforcement": {json.dumps(enforcement)}, "rejected": {rejected}, '
            '"grouped": true, "groups": ['
        )
        out.write(",".join(f"\n  {json.dumps(g.json())}" for g in groups))
        out.write('\n ],\n "flows": [' if groups else '],\n "flows": [')
        sep = "\n  "
        names = [json.dumps(g.name) for g in groups]
        tails: dict[PortSet, list[str]] = {}  # same text as json.dumps of each flow_entries() item
        for src_index, dst_index, ports in grouping.flows:
            tail = tails.get(ports)
            if tail is None:
                tail = tails[ports] = [json_tail(e) for e in flow_entries("", "", ports)]
            for piece in tail:
                out.write(f'{sep}{{"from": {names[src_index]}, "to": {names[dst_index]}, {piece}}}')
                sep = ",\n  "
        out.write("\n ]}\n" if grouping.flows else "]}\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["record", "from", "to", "protocol", "ports", "http", "members"])
        for r in grouping.rejected:
            # The policy in `from`, why the agent refuses it in `members`.
            writer.writerow(["rejected", r.policy, "", "", "", "", r.reason])
        for g in groups:
            writer.writerow(["group", g.name, "", "", "", "", _members_text(g)])
        cells: dict[PortSet, list[tuple[str, str, str]]] = {}
        for src, dst, ports in grouping.named_flows():
            rows = cells.get(ports)
            if rows is None:
                rows = cells[ports] = [
                    (proto, ranges_text(intervals), http_text(http))
                    for proto, http, intervals in ports.groups()
                ]
            for proto, ranges, http in rows:
                writer.writerow(["flow", src.name, dst.name, proto, ranges, http, ""])
    elif fmt == "md":
        out.write(f"Allowed flows under **{enforcement}**, by group of pods that behave alike:\n\n")
        write_rejected_md(grouping.rejected, out)
        out.write("| group | members |\n|---|---|\n")
        for g in groups:
            if g.members != [g.name]:
                out.write(f"| `{md_escape(g.name)}` | {md_escape(', '.join(g.members))} |\n")
        out.write("\n| from | to | allowed |\n|---|---|---|\n")
        texts: dict[PortSet, str] = {}
        for src, dst, ports in grouping.named_flows():
            text = texts.get(ports) or texts.setdefault(ports, md_escape(ports_text(ports)))
            out.write(f"| `{md_escape(src.name)}` | `{md_escape(dst.name)}` | {text} |\n")
    else:
        out.write(
            f"# allowed flows under {enforcement}: {len(groups)} groups of endpoints that behave "
            f"alike, {len(grouping.flows)} flows between them (--per-pod: every pod pair)\n"
        )
        out.writelines(f"# {r.line}\n" for r in grouping.rejected)
        for g in groups:
            if g.members != [g.name]:  # a pod of its own is named after itself
                out.write(f"group {g.name} ({_count(g)}): {', '.join(g.members)}\n")
        texts = {}
        for src, dst, ports in grouping.named_flows():
            text = texts.get(ports) or texts.setdefault(ports, ports_text(ports))
            out.write(f"{src.name} -> {dst.name}  {text}\n")
    return len(grouping.flows)


def _count(group: Group) -> str:
    n = len(group.members)
    if group.external:
        return f"{n} range{'s' if n != 1 else ''}"
    return f"{n} pod{'s' if n != 1 else ''}"
