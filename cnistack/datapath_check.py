"""The model's side of a datapath check: what to probe, and what the analyzer says of each probe.

Pure Python (no lab, no Pulumi): `verify` (cnistack/cli/verify_command.py) and the differential
campaigns (tests/datapath_campaign.py) give it the objects they applied, with the pods' real
IPs, and compare its answers with real packets (scripts/datapath_lab.py, docs/datapath-lab.md).
The analyzer is used through its public API only: load_documents, Analyzer, Request.
"""

from __future__ import annotations

import copy
import ipaddress
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from reachability import Analyzer, Request, load_documents

# Addresses no probe may use as "outside the cluster": the lab's own networks (pod CIDR given by
# the caller, the underlay 172.30.0.0/24, the service range) and what is not routable.
RESERVED = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.96.0.0/12",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.30.0.0/24",
        "224.0.0.0/3",
    )
)
# Preferred picks for an outside address: documentation ranges first (RFC 5737), then others.
PREFERRED = (
    "203.0.113.10",
    "198.51.100.10",
    "192.0.2.10",
    "100.64.0.10",
    "11.0.0.10",
    "192.168.1.10",
    "172.16.0.10",
    "10.1.0.10",
    "10.0.0.10",
)
# Protocols probed. SCTP is not in the lab's kernel (CONFIG_IP_SCTP is not set): the note of a
# run says so instead of probing it.
PROTOCOLS = ("TCP", "UDP")
WORLD = "world"


@dataclass(frozen=True)
class Flow:
    src: str  # ns/pod or an outside IPv4 address
    dst: str
    protocol: str
    port: int


def as_placed(
    documents: list[dict[str, Any]], ips: dict[str, str], nodes: dict[str, str]
) -> list[dict[str, Any]]:
    """The documents with each Pod's status.podIP set to the address the lab's CNI gave it
    (under kube-router an ipBlock matches pod IPs, so the model must see the real ones) and its
    spec.nodeName to the lab node it runs on (a host-network pod reaches its own node's pods
    whatever ingress allows: the analyzer's profile field `local_host_reaches_node_pods`)."""
    out = []
    for doc in documents:
        if doc.get("kind") == "Pod":
            key = f"{doc['metadata'].get('namespace', 'default')}/{doc['metadata']['name']}"
            pod = copy.deepcopy(doc)
            pod["status"] = {"podIP": ips[key], "podIPs": [{"ip": ips[key]}]}
            pod.setdefault("spec", {})["nodeName"] = nodes[key]
            out.append(pod)
        else:
            out.append(doc)
    return out


def analyzer_for(documents: list[dict[str, Any]], enforcement: str) -> Analyzer:
    return Analyzer(load_documents((d, "lab") for d in documents), enforcement)


def _walk_ports(node: Any) -> Iterator[int]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("port", "endPort", "containerPort") and isinstance(value, int):
                yield value
                if key == "endPort":
                    yield value + 1  # just past a range
            elif key == "port" and isinstance(value, str) and value.isdigit():
                yield int(value)
            elif key == "endPort" and isinstance(value, str) and value.isdigit():
                yield int(value)
                yield int(value) + 1
            else:
                yield from _walk_ports(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_ports(value)


def probe_ports(documents: list[dict[str, Any]]) -> list[int]:
    """Every port number the objects mention (container ports, policy ports and both ends of
    every range) plus one port none of them mentions."""
    ports = {p for p in _walk_ports(documents) if 1 <= p <= 65535}
    unused = next(p for p in (9, 7777, 12345, 40000) if p not in ports)
    return sorted(ports | {unused})


def outside_addresses(analyzer: Analyzer, pod_cidr: str) -> list[str]:
    """One IPv4 address per class of outside addresses the analyzer distinguishes (the address
    space cut at every CIDR a policy mentions), avoiding the lab's own networks."""
    avoid = (*RESERVED, ipaddress.IPv4Network(pod_cidr))
    out = []
    for cls in analyzer.classes:
        if not cls.external:
            continue
        pick = _pick(cls.ranges, avoid)
        if pick is not None:
            out.append(pick)
    return out


def _pick(ranges: list[tuple[int, int]], avoid: tuple[ipaddress.IPv4Network, ...]) -> str | None:
    def ok(value: int) -> bool:
        addr = ipaddress.IPv4Address(value)
        return any(lo <= value <= hi for lo, hi in v4) and not any(addr in n for n in avoid)

    v4 = [(lo, hi) for lo, hi in ranges if hi < 1 << 32]
    for text in PREFERRED:
        if ok(int(ipaddress.IPv4Address(text))):
            return text
    for lo, hi in v4:
        candidates = [
            lo + 1,
            (lo + hi) // 2,
            hi - 1,
            *(int(n.broadcast_address) + 2 for n in avoid),
        ]
        for value in candidates:
            if lo <= value <= hi and ok(value):
                return str(ipaddress.IPv4Address(value))
    return None


def flows(pods: Iterable[str], outside: Iterable[str], ports: list[int]) -> list[Flow]:
    """Pod to pod (every ordered pair), pod to each outside address and back, on every port
    and protocol."""
    pods, outside = sorted(pods), list(outside)
    pairs = [(a, b) for a in pods for b in pods if a != b]
    pairs += [(a, w) for a in pods for w in outside] + [(w, a) for w in outside for a in pods]
    return [Flow(s, d, proto, port) for s, d in pairs for proto in PROTOCOLS for port in ports]


def model_verdicts(analyzer: Analyzer, probe_list: list[Flow]) -> list[bool]:
    """The analyzer's answer for each probe, as an L4 probe (no HTTP method/path: allowed when
    the port lets some request through, docs/connectivity.md)."""
    return [analyzer.query(f.src, f.dst, Request(f.protocol, f.port)).allowed for f in probe_list]


def deciders(analyzer: Analyzer, flow: Flow) -> list[str]:
    verdict = analyzer.query(flow.src, flow.dst, Request(flow.protocol, flow.port))
    return [ref.label for ref in verdict.policies]


def ports_text(ports: list[int]) -> str:
    """80,81,8080-8082 style."""
    if not ports:
        return "-"
    parts, start, prev = [], ports[0], ports[0]
    for p in [*ports[1:], None]:
        if p is not None and p == prev + 1:
            prev = p
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if p is not None:
            start = prev = p
    return ",".join(parts)


# --- one differential run: apply, converge, probe, compare ----------------------------------


class LabLike(Protocol):
    def apply(
        self, documents: list[dict[str, Any]], ports: dict[str, list[int]], world: tuple[str, ...]
    ) -> dict[str, str]: ...

    def wait_converged(self) -> float: ...

    def nodes(self) -> dict[str, str]: ...

    def probe(self, flows: list[tuple[str, str, str, int]], timeout: float = ...) -> list[bool]: ...


@dataclass
class Outcome:
    probes: list[Flow]
    model: list[bool]
    packets: list[bool]
    converge_s: float
    probe_s: float
    analyzer: Analyzer

    @property
    def disagreements(self) -> list[tuple[Flow, bool, bool]]:
        return [
            (f, m, p)
            for f, m, p in zip(self.probes, self.model, self.packets, strict=True)
            if m != p
        ]


def differential(
    lab: LabLike,
    documents: list[dict[str, Any]],
    enforcement: str,
    pod_cidr: str,
    confirm_timeout: float,
) -> Outcome:
    """Apply `documents` (Namespaces, Pods, policies) in the lab, wait for the enforcer, probe
    every flow with real packets and ask the analyzer the same question with the pods' real
    IPs. A packet verdict of "denied" where the model says "allowed" is probed once more with
    `confirm_timeout` before it counts (a busy machine may delay a handshake, never fake one)."""
    draft = analyzer_for(documents, enforcement)  # outside classes do not depend on pod IPs
    outside = outside_addresses(draft, pod_cidr)
    ports = probe_ports(documents)
    ips = lab.apply(documents, {proto: ports for proto in PROTOCOLS}, tuple(outside))
    analyzer = analyzer_for(as_placed(documents, ips, lab.nodes()), enforcement)
    converge_s = lab.wait_converged()
    pods = [k for k in ips if any(_key(d) == k for d in documents if d.get("kind") == "Pod")]
    probe_list = flows(pods, outside, ports)
    model = model_verdicts(analyzer, probe_list)
    started = time.monotonic()
    packets = lab.probe([(f.src, f.dst, f.protocol, f.port) for f in probe_list])
    again = [i for i, (m, p) in enumerate(zip(model, packets, strict=True)) if m and not p]
    if again:
        second = lab.probe(
            [(probe_list[i].src, probe_list[i].dst, probe_list[i].protocol, probe_list[i].port)
             for i in again],
            confirm_timeout,
        )  # fmt: skip
        for i, ok in zip(again, second, strict=True):
            packets[i] = ok
    probe_s = time.monotonic() - started
    return Outcome(probe_list, model, packets, converge_s, probe_s, analyzer)


def _key(doc: dict[str, Any]) -> str:
    return f"{doc['metadata'].get('namespace', 'default')}/{doc['metadata']['name']}"


def table(outcome: Outcome) -> list[str]:
    """One row per (from, to): the ports the model allows and those packets got through, per
    protocol; RESULT is `ok` or `DIFF`."""
    by_pair: dict[tuple[str, str], dict[str, tuple[list[int], list[int]]]] = {}
    for f, m, p in zip(outcome.probes, outcome.model, outcome.packets, strict=True):
        entry = by_pair.setdefault((f.src, f.dst), {})
        model_ports, packet_ports = entry.setdefault(f.protocol, ([], []))
        if m:
            model_ports.append(f.port)
        if p:
            packet_ports.append(f.port)
    rows = [("FROM", "TO", "MODEL", "PACKETS", "RESULT")]
    for (src, dst), per_proto in sorted(by_pair.items()):
        model = "; ".join(
            f"{proto}/{ports_text(sorted(ms))}" for proto, (ms, _) in per_proto.items() if ms
        )
        packets = "; ".join(
            f"{proto}/{ports_text(sorted(ps))}" for proto, (_, ps) in per_proto.items() if ps
        )
        same = all(sorted(ms) == sorted(ps) for ms, ps in per_proto.values())
        rows.append((src, dst, model or "denied", packets or "denied", "ok" if same else "DIFF"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
