"""Graphviz drawings people can read: a dot file of every pod pair is unreadable past a few
namespaces, so pods are grouped and unrestricted flows folded.

- Pods are grouped by namespace (one `cluster_` subgraph each); addresses outside the cluster
  get their own box.
- Unrestricted flows are folded: a flow with every port open whose source has no egress policy
  (or is outside the cluster) and whose destination has no ingress policy (or is outside) exists
  only because nobody restricts it. Those are not drawn; the endpoints are marked instead
  ("any source may connect", "egress unrestricted") and a note in the legend counts them.
- A legend shows what the edge styles mean: L7-restricted (HTTP rules, blue), whole-port (black),
  and in diffs widened (red), narrowed (grey, dashed), mixed (orange).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TextIO

from reachability.output import ports_text
from reachability.ports import ALL, PortSet
from reachability.results import Change, Group, Grouping

L7_STYLE = 'color="#1f5fbf", fontcolor="#1f5fbf"'
L4_STYLE = 'color="#222222", fontcolor="#222222"'
DIFF_STYLES = {
    "widened": 'color="#c0392b", fontcolor="#c0392b", style=bold, penwidth=2',
    "narrowed": 'color="#7f7f7f", fontcolor="#7f7f7f", style=dashed',
    "mixed": 'color="#e67e22", fontcolor="#e67e22", style=bold',
}
WORLD_CLUSTER = "outside the cluster"


def _q(text: str) -> str:
    return json.dumps(text)


def _head(out: TextIO, name: str, title: str, lines: Sequence[str] = ()) -> None:
    # The policies left out are named under the title, where every reader of the picture sees it.
    title += "".join(f"\n{line}" for line in lines)
    out.write(f"digraph {name} {{\n")
    out.write(f"  label={_q(title)}; labelloc=t; fontname=Helvetica; fontsize=16;\n")
    out.write("  rankdir=LR; newrank=true; nodesep=0.3; ranksep=1.1;\n")
    out.write('  node [shape=box, style="rounded,filled", fillcolor=white, fontname=Helvetica,')
    out.write(" fontsize=11];\n  edge [fontname=Helvetica, fontsize=9];\n")


def _cluster_id(namespace: str | None) -> str:
    return _q(f"cluster_{'world' if namespace is None else 'ns_' + namespace}")


def _clusters(out: TextIO, nodes: dict[str | None, list[tuple[str, str, str]]]) -> None:
    """`nodes`: namespace (None = outside) -> [(node id, label, extra attributes)]."""
    for namespace in sorted(nodes, key=lambda ns: (ns is None, ns or "")):
        title = WORLD_CLUSTER if namespace is None else f"namespace {namespace}"
        out.write(f"  subgraph {_cluster_id(namespace)} {{\n    label={_q(title)};\n")
        out.write('    style="rounded,filled"; fillcolor="#f4f6f8"; color="#9aa5b1";\n')
        for node_id, label, extra in sorted(nodes[namespace]):
            attrs = f"label={_q(label)}" + (f", {extra}" if extra else "")
            out.write(f"    {_q(node_id)} [{attrs}];\n")
        out.write("  }\n")


def _edge_label(ports: PortSet) -> str:
    # One line per protocol group keeps long HTTP rule lists readable.
    return ports_text(ports).replace("; ", "\n").replace(" | ", "\n  | ")


def _legend(out: TextIO, rows: Iterable[tuple[str, str]], note: str | None) -> None:
    out.write(
        '  subgraph cluster_legend {\n    label="legend"; style="rounded"; color="#9aa5b1";\n'
    )
    out.write('    node [shape=point, width=0.05, label=""];\n')
    for i, (text, style) in enumerate(rows):
        out.write(f"    legend_a{i} -> legend_b{i} [label={_q(text)}, {style}];\n")
    if note:
        out.write(
            f"    legend_note [shape=note, width=3, label={_q(note)}, fontsize=10, style=filled, "
            'fillcolor="#fffbe6"];\n'
        )
    out.write("  }\n")


def _unrestricted(src: Group, dst: Group, ports: PortSet) -> bool:
    return (
        ports == ALL
        and (src.external or src.open_egress)
        and (dst.external or dst.open_ingress)
        and not (src.external and dst.external)
    )


def write_grouping_dot(grouping: Grouping, out: TextIO) -> None:
    folded = [(s, d) for s, d, p in grouping.named_flows() if _unrestricted(s, d, p)]
    folded_in = {d.name for _, d in folded}
    folded_out = {s.name for s, _ in folded}
    title = f"allowed flows ({grouping.enforcement})"
    _head(out, "connectivity", title, [r.line for r in grouping.rejected])
    nodes: dict[str | None, list[tuple[str, str, str]]] = {}
    for g in grouping.groups:
        if g.external:
            label = g.name.removeprefix("cidr:")
            if len(g.members) > 1:
                label += f"\n+{len(g.members) - 1} more ranges"
            nodes.setdefault(None, []).append((g.name, label, 'shape=ellipse, fillcolor="#eef2ff"'))
            continue
        prefix = f"{g.namespace}/"
        label = g.name.removeprefix(prefix)
        if len(g.members) > 1:
            label += f"\n{len(g.members)} pods"
        extra = []
        notes = []
        if g.name in folded_in:
            notes.append("any source may connect")
            extra.append('style="rounded,filled,dashed", color="#c0392b"')
        if g.name in folded_out:
            notes.append("egress unrestricted")
        if notes:
            label += "\n(" + "; ".join(notes) + ")"
        nodes.setdefault(g.namespace, []).append((g.name, label, ", ".join(extra)))
    _clusters(out, nodes)
    for src, dst, ports in grouping.named_flows():
        if _unrestricted(src, dst, ports):
            continue
        style = L7_STYLE if ports.l7_restricted() else L4_STYLE
        out.write(
            f"  {_q(src.name)} -> {_q(dst.name)} [label={_q(_edge_label(ports))}, {style}];\n"
        )
    note = None
    if folded:
        note = (
            f"{len(folded)} unrestricted flows not drawn: every port, between endpoints\n"
            "that no policy restricts (red dashed: any source may connect;\n"
            '"egress unrestricted": reaches every such endpoint and the outside)'
        )
    _legend(
        out,
        [("L7-restricted (HTTP rules)", L7_STYLE), ("whole-port (L4)", L4_STYLE)],
        note,
    )
    out.write("}\n")


def _namespace_of(name: str) -> str | None:
    if name.startswith("cidr:") or "/" not in name:
        return None
    return name.split("/", 1)[0]


def write_diff_dot(
    changes: list[Change],
    a_name: str,
    b_name: str,
    out: TextIO,
    lines: Sequence[str] = (),
) -> None:
    _head(out, "connectivity_diff", f"{a_name} -> {b_name}: flows that differ", lines)
    nodes: dict[str | None, list[tuple[str, str, str]]] = {}
    seen: set[str] = set()
    for ch in changes:
        for name in (ch.src, ch.dst):
            if name in seen:
                continue
            seen.add(name)
            ns = _namespace_of(name)
            label = name.removeprefix(f"{ns}/") if ns else name.removeprefix("cidr:")
            extra = "" if ns else 'shape=ellipse, fillcolor="#eef2ff"'
            nodes.setdefault(ns, []).append((name, label, extra))
    _clusters(out, nodes)
    for ch in changes:
        if ch.a is None and ch.b is not None:
            text = f"{ch.status}: {_edge_label(ch.b)}\n(only in {b_name})"
        elif ch.b is None and ch.a is not None:
            text = f"{ch.status}: {_edge_label(ch.a)}\n(only in {a_name})"
        else:
            assert ch.a is not None and ch.b is not None
            text = f"{a_name}: {_edge_label(ch.a)}\n{b_name}: {_edge_label(ch.b)}"
        out.write(
            f"  {_q(ch.src)} -> {_q(ch.dst)} [label={_q(text)}, {DIFF_STYLES[ch.direction]}];\n"
        )
    _legend(
        out,
        [
            (f"widened in {b_name}", DIFF_STYLES["widened"]),
            (f"narrowed in {b_name}", DIFF_STYLES["narrowed"]),
            ("mixed", DIFF_STYLES["mixed"]),
        ],
        "labels: ports per side; [HTTP ...] = L7-restricted,\nno [HTTP] = whole-port",
    )
    out.write("}\n")
