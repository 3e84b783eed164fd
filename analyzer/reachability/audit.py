"""Observed Hubble flows against what the policies allow: Hubble's flow export is production's
audit trail (ADR-013 §"Production": Hubble, flow export), so the model is checked against it.

Four findings:
- `gap`: forwarded, but the policies do not allow it: an enforcement gap (an inert kube-router after
  a k3d restart, k3d-io/k3d#1513) or drift between the declared and the running policies;
- `broken`: dropped by policy (or reported AUDIT, "would be dropped") though the model allows it;
- `unused`: pairs a policy allows that no flow used in the window: least-privilege candidates;
- `unknown`: flows whose endpoints the analyzer cannot map to a pod or an external address.

Which records are evidence: requests only (`is_reply: true` and L7 RESPONSE records describe the
answer of a connection already judged), with a TCP/UDP/SCTP destination port (the analyzer does not
model ICMP). L3_L4 FORWARDED or REDIRECTED (sent to the L7 proxy, so allowed at L4) is an L4
observation; L7 HTTP REQUEST records carry the method and URL the L7 rules judge. DROPPED counts
only with drop_reason_desc POLICY_DENIED or POLICY_DENY; other drops are not a policy decision.
"""

from __future__ import annotations

import bisect
import ipaddress
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from reachability.classes import EndpointClass
from reachability.compiler.addresses import address_to_line
from reachability.engine import Analyzer, Request
from reachability.hubble import (
    POLICY_DROP_REASONS,
    WORLD_IDENTITIES,
    FlowEndpoint,
    FlowFile,
    HubbleFlow,
)
from reachability.inputs import Pod
from reachability.output import md_escape, ports_text
from reachability.ports import PortSet
from reachability.results import Rejected

FINDINGS = ("gap", "broken", "unknown", "unused")
# Exit status bits (2 stays "bad input", so no bit is 2).
EXIT_BITS = {"gap": 1, "broken": 4, "unknown": 8, "unused": 16}
AUDIT_FORMATS = ("txt", "md", "json")


@dataclass(frozen=True)
class Key:
    src: str
    dst: str
    protocol: str
    port: int
    method: str | None
    path: str | None
    observed: str  # forwarded | dropped | audit


@dataclass
class Seen:
    count: int = 0
    lines: list[int] = field(default_factory=list)

    def add(self, line: int) -> None:
        self.count += 1
        if len(self.lines) < 5:
            self.lines.append(line)


@dataclass(frozen=True)
class Finding:
    key: Key
    seen: Seen
    policies: tuple[str, ...]
    allowed_ports: PortSet

    def json(self) -> dict[str, Any]:
        k = self.key
        doc: dict[str, Any] = {
            "from": k.src,
            "to": k.dst,
            "protocol": k.protocol,
            "port": k.port,
            "observed": k.observed,
            "count": self.seen.count,
            "lines": self.seen.lines,
            "policies": list(self.policies),
            "allowed": ports_text(self.allowed_ports) or "nothing",
        }
        if k.method is not None or k.path is not None:
            doc["method"] = k.method
            doc["path"] = k.path
        return doc


@dataclass(frozen=True)
class Unused:
    src: str
    dst: str
    ports: PortSet


@dataclass(frozen=True)
class UnknownFlow:
    src: str
    dst: str
    verdict: str
    reason: str


@dataclass
class AuditReport:
    label: str
    enforcement: str
    flows_file: FlowFile
    evidence: int = 0
    consistent: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    gap: list[Finding] = field(default_factory=list)
    broken: list[Finding] = field(default_factory=list)
    unused: list[Unused] = field(default_factory=list)
    open_pairs_unseen: int = 0
    unknown: dict[UnknownFlow, Seen] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)  # policies left out of the model

    def exit_status(self, fail_on: tuple[str, ...]) -> int:
        present = {
            "gap": bool(self.gap),
            "broken": bool(self.broken),
            "unknown": bool(self.unknown),
            "unused": bool(self.unused),
        }
        code = 0
        for name in fail_on:
            if present[name]:
                code |= EXIT_BITS[name]
        return code


class Resolver:
    """Maps a Hubble endpoint to the analyzer's endpoint class, or says why it cannot."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.by_ns: dict[str, list[Pod]] = {}
        for pod in analyzer.inputs.pods:
            self.by_ns.setdefault(pod.namespace, []).append(pod)

    def resolve(self, ep: FlowEndpoint) -> tuple[EndpointClass | None, str]:
        a = self.analyzer
        if ep.namespace and ep.pod_name:
            key = f"{ep.namespace}/{ep.pod_name}"
            if key in a.class_of_pod:
                return a.classes[a.class_of_pod[key]], key
        line = _ip_line(ep.ip)
        if line is not None and line in a.pods_by_ip:
            pod = a.pods_by_ip[line]
            return a.classes[a.class_of_pod[pod.key]], pod.key
        if ep.namespace:
            pod_or_reason = self._by_labels(ep)
            if isinstance(pod_or_reason, str):
                return None, pod_or_reason
            return a.classes[a.class_of_pod[pod_or_reason.key]], pod_or_reason.key
        reserved = ep.reserved
        world = reserved in ("world", "world-ipv4", "world-ipv6") or ep.identity in WORLD_IDENTITIES
        if reserved is not None and not world:
            return None, f"reserved identity {reserved!r} is not modelled"
        if line is None:
            return None, "no namespace, pod or IP address"
        # Outside the cluster (world), or an address no pod of the model has.
        atom = bisect.bisect_right(a.atom_starts, line) - 1
        return a.classes[a.atom_class[atom]], str(ep.ip)

    def _by_labels(self, ep: FlowEndpoint) -> Pod | str:
        """The model's pod of that namespace whose labels the flow's pod carries, most specific."""
        pods = self.by_ns.get(ep.namespace or "")
        if not pods:
            return f"namespace {ep.namespace!r} has no pod in the model"
        labels = ep.k8s_labels()
        if not labels:
            return "pod not in the model and the flow carries no k8s: labels"
        matches = [
            p for p in pods if p.labels and all(labels.get(k) == v for k, v in p.labels.items())
        ]
        if not matches:
            return "no pod of the model has these labels"
        best = max(len(p.labels) for p in matches)
        top = [p for p in matches if len(p.labels) == best]
        classes = {self.analyzer.class_of_pod[p.key] for p in top}
        if len(classes) > 1:
            return (
                f"labels match several pods of the model ({', '.join(sorted(p.key for p in top))})"
            )
        return sorted(top, key=lambda p: p.key)[0]


def _ip_line(ip: str | None) -> int | None:
    if ip is None:
        return None
    try:
        return address_to_line(ipaddress.ip_address(ip))
    except ValueError:
        return None


def _observed(flow: HubbleFlow) -> tuple[str | None, str]:
    """('forwarded'|'dropped'|'audit', '') for evidence, or (None, why it is skipped)."""
    if flow.is_reply is True:
        return None, "replies (is_reply)"
    if flow.flow_type == "L7":
        if flow.l7_type == "RESPONSE":
            return None, "replies (L7 RESPONSE)"
        if flow.verdict == "FORWARDED":
            return "forwarded", ""
        if flow.verdict == "DROPPED":
            return "dropped", ""  # the proxy refused the request (HTTP 403 from Cilium)
        return None, f"L7 records with verdict {flow.verdict}"
    if flow.flow_type != "L3_L4":
        return None, f"records of type {flow.flow_type}"
    if flow.verdict in ("FORWARDED", "REDIRECTED"):
        return "forwarded", ""
    if flow.verdict == "AUDIT":
        return "audit", ""
    if flow.verdict == "DROPPED":
        if flow.drop_reason in POLICY_DROP_REASONS.values():
            return "dropped", ""
        return None, f"drops not caused by policy ({flow.drop_reason or 'no drop_reason_desc'})"
    return None, f"verdict {flow.verdict}"


def audit(analyzer: Analyzer, flows: FlowFile, label: str) -> AuditReport:
    report = AuditReport(label, analyzer.enforcement, flows, rejected=list(analyzer.rejected))
    resolver = Resolver(analyzer)
    observed: dict[Key, Seen] = {}
    classes: dict[Key, tuple[EndpointClass, EndpointClass]] = {}
    used: set[tuple[str, str]] = set()
    for flow in flows.flows:
        kind, why = _observed(flow)
        if kind is None:
            report.skipped[why] += 1
            continue
        if flow.protocol is None or flow.port is None:
            report.skipped["records without a TCP/UDP/SCTP destination port"] += 1
            continue
        src_cls, src = resolver.resolve(flow.source)
        dst_cls, dst = resolver.resolve(flow.destination)
        if src_cls is None or dst_cls is None:
            reason = "; ".join(
                f"{side}: {text}"
                for side, c, text in (("source", src_cls, src), ("destination", dst_cls, dst))
                if c is None
            )
            unknown = UnknownFlow(
                src if src_cls is not None else flow.source.describe(),
                dst if dst_cls is not None else flow.destination.describe(),
                kind,
                reason,
            )
            report.unknown.setdefault(unknown, Seen()).add(flow.line)
            continue
        report.evidence += 1
        method = flow.method if flow.flow_type == "L7" else None
        path = flow.path if flow.flow_type == "L7" else None
        key = Key(src, dst, flow.protocol, flow.port, method, path, kind)
        observed.setdefault(key, Seen()).add(flow.line)
        classes[key] = (src_cls, dst_cls)
        if kind != "dropped":
            used.add((_endpoint_key(src_cls, src), _endpoint_key(dst_cls, dst)))
    for key in sorted(observed, key=_key_order):
        src_cls, dst_cls = classes[key]
        verdict = analyzer.verdict(
            src_cls, dst_cls, Request(key.protocol, key.port, key.method, key.path)
        )
        seen = observed[key]
        finding = Finding(key, seen, tuple(ref.label for ref in verdict.policies), verdict.ports)
        if key.observed == "forwarded" and not verdict.allowed:
            report.gap.append(finding)
        elif key.observed in ("dropped", "audit") and verdict.allowed:
            report.broken.append(finding)
        else:
            report.consistent += seen.count
    report.unused, report.open_pairs_unseen = _unused(analyzer, used)
    return report


def _endpoint_key(cls: EndpointClass, name: str) -> str:
    return f"external:{cls.index}" if cls.external else name


def _key_order(key: Key) -> tuple[str, str, str, int, str, str, str]:
    return (key.src, key.dst, key.protocol, key.port, key.method or "", key.path or "",
            key.observed)  # fmt: skip


def _unused(analyzer: Analyzer, used: set[tuple[str, str]]) -> tuple[list[Unused], int]:
    """Allowed pairs no forwarded flow used; only those a policy governs are candidates."""
    out: list[Unused] = []
    open_unseen = 0
    names = {c.index: _names(analyzer, c) for c in analyzer.classes}
    for src_index, row in analyzer.class_flows().items():
        src_cls = analyzer.classes[src_index]
        for dst_index, ports in row.items():
            dst_cls = analyzer.classes[dst_index]
            governed = (not src_cls.external and src_cls.isolated_egress) or (
                not dst_cls.external and dst_cls.isolated_ingress
            )
            for src_key, src_name in names[src_index]:
                for dst_key, dst_name in names[dst_index]:
                    if src_key == dst_key or (src_key, dst_key) in used:
                        continue
                    if governed:
                        out.append(Unused(src_name, dst_name, ports))
                    else:
                        open_unseen += 1
    out.sort(key=lambda u: (u.src, u.dst))
    return out, open_unseen


def _names(analyzer: Analyzer, cls: EndpointClass) -> list[tuple[str, str]]:
    if cls.pods:
        return [(pod.key, pod.key) for pod in cls.pods]
    listed = analyzer.endpoint_names(cls)
    if not listed:
        return []
    shown = ", ".join(listed[:3]) + (f" (+{len(listed) - 3} more)" if len(listed) > 3 else "")
    return [(f"external:{cls.index}", shown)]


# --- writing -----------------------------------------------------------------------------------


def _request_text(key: Key) -> str:
    text = f"{key.protocol}/{key.port}"
    if key.method is not None or key.path is not None:
        text += f" {key.method or '*'} {key.path or '*'}"
    return text


def _finding_text(f: Finding) -> str:
    lines = ",".join(map(str, f.seen.lines)) + ("..." if f.seen.count > len(f.seen.lines) else "")
    decided = ", ".join(f.policies) or "no policy selects these endpoints"
    allowed = ports_text(f.allowed_ports) or "nothing"
    return (
        f"{f.key.src} -> {f.key.dst} {_request_text(f.key)}  {f.key.observed} x{f.seen.count} "
        f"(lines {lines}); model: {decided}; allowed between them: {allowed}"
    )


def report_json(report: AuditReport, fail_on: tuple[str, ...]) -> dict[str, Any]:
    ff = report.flows_file
    return {
        "model": report.label,
        "enforcement": report.enforcement,
        "rejected": [r.json() for r in report.rejected],
        "flows_file": ff.path,
        "window": {"first": ff.first_time, "last": ff.last_time},
        "records": ff.records,
        "non_flow_events": dict(sorted(ff.non_flow_events.items())),
        "skipped": dict(sorted(report.skipped.items())),
        "evidence": report.evidence,
        "consistent": report.consistent,
        "enforcement_gap": [f.json() for f in report.gap],
        "broken_intent": [f.json() for f in report.broken],
        "unused_allowed": [
            {"from": u.src, "to": u.dst, "allowed": ports_text(u.ports)} for u in report.unused
        ],
        "open_pairs_unseen": report.open_pairs_unseen,
        "unknown_identities": [
            {
                "from": u.src,
                "to": u.dst,
                "observed": u.verdict,
                "reason": u.reason,
                "count": s.count,
                "lines": s.lines,
            }
            for u, s in sorted(report.unknown.items(), key=lambda i: (i[0].src, i[0].dst))
        ],
        "exit_status": report.exit_status(fail_on),
    }


def _sections(report: AuditReport) -> Iterator[tuple[str, list[str]]]:
    yield (
        "(a) enforcement gap: forwarded, not allowed by the policies",
        [_finding_text(f) for f in report.gap],
    )
    yield (
        "(b) broken intent: dropped by policy, allowed by the model",
        [_finding_text(f) for f in report.broken],
    )
    yield (
        "(c) allowed by a policy, never seen in the window: least-privilege candidates",
        [f"{u.src} -> {u.dst}  {ports_text(u.ports)}" for u in report.unused],
    )
    yield (
        "(d) flows between identities the analyzer does not know",
        [
            f"{u.src} -> {u.dst}  {u.verdict} x{s.count}: {u.reason}"
            for u, s in sorted(report.unknown.items(), key=lambda i: (i[0].src, i[0].dst))
        ],
    )


def write_audit(report: AuditReport, fmt: str, fail_on: tuple[str, ...], out: TextIO) -> None:
    if fmt == "json":
        json.dump(report_json(report, fail_on), out, indent=1)
        out.write("\n")
        return
    ff = report.flows_file
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(report.skipped.items())) or "none"
    events = ", ".join(f"{n} {k}" for k, n in sorted(ff.non_flow_events.items()))
    head = [
        f"audit of {ff.path} against {report.label} ({report.enforcement})",
        f"window: {ff.first_time or '?'} .. {ff.last_time or '?'}; {ff.records} records, "
        f"{report.evidence} used as evidence, {report.consistent} consistent with the model",
        f"skipped: {skipped}" + (f"; non-flow events: {events}" if events else ""),
        *(r.line for r in report.rejected),
    ]
    if fmt == "md":
        out.write(f"**{head[0]}**\n\n" + "\n\n".join(head[1:]) + "\n")
        for title, items in _sections(report):
            out.write(f"\n### {title} ({len(items)})\n\n")
            for item in items:
                out.write(f"- `{md_escape(item)}`\n")
        out.write(f"\n{report.open_pairs_unseen} unseen pairs are open (no policy selects either "
                  "side) and not listed.\n")  # fmt: skip
        return
    for line in head:
        out.write(f"# {line}\n")
    for title, items in _sections(report):
        out.write(f"## {title}: {len(items)}\n")
        for item in items:
            out.write(f"{item}\n")
    out.write(f"# {report.open_pairs_unseen} unseen pairs are open (no policy selects either side) "
              "and not listed\n")  # fmt: skip
