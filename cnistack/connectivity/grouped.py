"""Grouped listings: flows between the analyzer's endpoint classes instead of every pod pair.

A class holds the pods no policy can tell apart (same namespace, same values of the label keys some
selector tests, same service account, same named ports some rule names, same ipBlock memberships),
so every pod of a class has the same flows: the grouped listing says the same as the per-pod one in
size classes^2 instead of pods^2 (issue 12 item 4: the per-pod JSON of 50,000 pods was 4.4 GB). A
group is named after its pod when it has one, otherwise `NAMESPACE/{k=v,...}` with the labels that
matter; external address classes are named by their first CIDR.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from cnistack.connectivity.engine import Analyzer, EndpointClass
from cnistack.connectivity.output import _md, flow_entries, http_text, ports_text, ranges_text
from cnistack.connectivity.pictures import write_grouping_dot
from cnistack.connectivity.ports import PortSet


@dataclass
class Group:
    name: str
    namespace: str | None  # None: addresses outside the cluster
    labels: dict[str, str]
    members: list[str]  # pod keys, or `cidr:` ranges
    # No policy isolates this side: every source may connect / every destination is reachable.
    open_ingress: bool = False
    open_egress: bool = False
    service_account: str | None = None

    @property
    def external(self) -> bool:
        return self.namespace is None

    def json(self) -> dict[str, Any]:
        if self.external:
            return {"name": self.name, "cidrs": self.members}
        doc: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "labels": self.labels,
            "pods": self.members,
        }
        if self.service_account not in (None, "default"):
            doc["serviceAccount"] = self.service_account
        return doc


@dataclass
class Grouping:
    enforcement: str
    groups: list[Group] = field(default_factory=list)
    flows: list[tuple[int, int, PortSet]] = field(default_factory=list)  # group indices

    def named_flows(self) -> Iterator[tuple[Group, Group, PortSet]]:
        for src, dst, ports in self.flows:
            yield self.groups[src], self.groups[dst], ports


def build_grouping(analyzer: Analyzer, per_pod: bool = False) -> Grouping:
    """Groups = endpoint classes (or one group per pod), flows between them, sorted by name."""
    raw: list[tuple[Group, int]] = []  # (group, class index)
    for cls in analyzer.classes:
        if cls.external:
            cidrs = analyzer.endpoint_names(cls)
            if cidrs:  # IPv6 classes are hidden unless a policy mentions IPv6
                raw.append((Group(cidrs[0], None, {}, cidrs), cls.index))
            continue
        pod = cls.pods[0]
        labels = {k: v for k, v in sorted(pod.labels.items()) if k in analyzer.label_keys}

        def group(name: str, members: list[str], cls: EndpointClass = cls) -> Group:
            return Group(
                name,
                cls.pods[0].namespace,
                {k: v for k, v in sorted(cls.pods[0].labels.items()) if k in analyzer.label_keys},
                members,
                open_ingress=not cls.isolated_ingress,
                open_egress=not cls.isolated_egress,
                service_account=cls.pods[0].service_account,
            )

        if per_pod or len(cls.pods) == 1:
            raw.extend((group(member.key, [member.key]), cls.index) for member in cls.pods)
        else:
            selected = ",".join(f"{k}={v}" for k, v in labels.items())
            raw.append((group(f"{pod.namespace}/{{{selected}}}", [p.key for p in cls.pods]),
                        cls.index))  # fmt: skip
    # Distinct names: classes that differ only in service account, ports or ipBlock membership.
    taken: dict[str, int] = {}
    for named, _ in sorted(raw, key=lambda item: (item[0].name, item[0].members)):
        n = taken.get(named.name, 0) + 1
        taken[named.name] = n
        if n > 1:
            named.name = f"{named.name}#{n}"
    raw.sort(key=lambda item: item[0].name)
    grouping = Grouping(analyzer.enforcement, [g for g, _ in raw])
    by_class: dict[int, list[int]] = {}
    for index, (_, cls_index) in enumerate(raw):
        by_class.setdefault(cls_index, []).append(index)
    for src_cls, row in analyzer.class_flows().items():
        for src in by_class.get(src_cls, ()):
            for dst_cls, ports in row.items():
                for dst in by_class.get(dst_cls, ()):
                    # Within a group: between distinct members only.
                    if src == dst and len(grouping.groups[src].members) < 2:
                        continue
                    grouping.flows.append((src, dst, ports))
    grouping.flows.sort()
    return grouping


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
        out.write(f'{{"enforcement": {json.dumps(enforcement)}, "grouped": true, "groups": [')
        out.write(",".join(f"\n  {json.dumps(g.json())}" for g in groups))
        out.write('\n ],\n "flows": [' if groups else '],\n "flows": [')
        sep = "\n  "
        for src, dst, ports in grouping.named_flows():
            for entry in flow_entries(src.name, dst.name, ports):
                out.write(sep + json.dumps(entry))
                sep = ",\n  "
        out.write("\n ]}\n" if grouping.flows else "]}\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["record", "from", "to", "protocol", "ports", "http", "members"])
        for g in groups:
            writer.writerow(["group", g.name, "", "", "", "", _members_text(g)])
        for src, dst, ports in grouping.named_flows():
            for proto, http, intervals in ports.groups():
                writer.writerow(
                    ["flow", src.name, dst.name, proto, ranges_text(intervals), http_text(http), ""]
                )
    elif fmt == "md":
        out.write(f"Allowed flows under **{enforcement}**, by group of pods that behave alike:\n\n")
        out.write("| group | members |\n|---|---|\n")
        for g in groups:
            if g.members != [g.name]:
                out.write(f"| `{_md(g.name)}` | {_md(', '.join(g.members))} |\n")
        out.write("\n| from | to | allowed |\n|---|---|---|\n")
        for src, dst, ports in grouping.named_flows():
            out.write(f"| `{_md(src.name)}` | `{_md(dst.name)}` | {_md(ports_text(ports))} |\n")
    else:
        out.write(
            f"# allowed flows under {enforcement}: {len(groups)} groups of endpoints that behave "
            f"alike, {len(grouping.flows)} flows between them (--per-pod: every pod pair)\n"
        )
        for g in groups:
            if g.members != [g.name]:  # a pod of its own is named after itself
                out.write(f"group {g.name} ({_count(g)}): {', '.join(g.members)}\n")
        for src, dst, ports in grouping.named_flows():
            out.write(f"{src.name} -> {dst.name}  {ports_text(ports)}\n")
    return len(grouping.flows)


def _count(group: Group) -> str:
    n = len(group.members)
    if group.external:
        return f"{n} range{'s' if n != 1 else ''}"
    return f"{n} pod{'s' if n != 1 else ''}"
