"""Hubble flow records read from JSON lines: `hubble observe -o json|jsonpb` and the exporter file.

Fields come from `api/v1/flow/flow.proto` of github.com/cilium/cilium@v1.15.0. Both writers use
protojson with `UseProtoNames: true` and enum names (api/v1/flow/flow.pb.json.go,
api/v1/observer/observer.pb.json.go), so keys are the proto field names (`IP`, `l4`, `Type`,
`drop_reason_desc`, ...) and enums are strings; numbers are accepted too (protojson reads both).
Line shapes:
- the Hubble exporter (pkg/hubble/exporter/exporter.go) writes one `ExportEvent` per line:
  `{"flow": {...}, "node_name": ..., "time": ...}`, or `agent_event`/`debug_event`/`lost_events`;
- `hubble observe -o jsonpb` writes the same wrapper (`GetFlowsResponse`, also `node_status`);
- `hubble observe -o json` writes the bare `Flow` (cilium/hubble pkg/printer/printer.go,
  `JSONOutput: p.jsonEncoder.Encode(f)`).
Every field read is listed in docs/connectivity-audit.md.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reachability.errors import InputError

# enum Verdict, FlowType, TrafficDirection, L7FlowType (flow.proto), by number.
VERDICTS = ("VERDICT_UNKNOWN", "FORWARDED", "DROPPED", "ERROR", "AUDIT", "REDIRECTED", "TRACED",
            "TRANSLATED")  # fmt: skip
FLOW_TYPES = ("UNKNOWN_TYPE", "L3_L4", "L7", "SOCK")
DIRECTIONS = ("TRAFFIC_DIRECTION_UNKNOWN", "INGRESS", "EGRESS")
L7_TYPES = ("UNKNOWN_L7_TYPE", "REQUEST", "RESPONSE", "SAMPLE")
# enum DropReason: the two values a policy decision produces (bpf/lib/common.h DROP_POLICY and
# DROP_POLICY_DENY, the latter for deny rules).
POLICY_DROP_REASONS = {133: "POLICY_DENIED", 181: "POLICY_DENY"}
# pkg/identity/numericidentity.go: reserved identities 1..10.
RESERVED_IDENTITIES = {1: "host", 2: "world", 3: "unmanaged", 4: "health", 5: "init",
                       6: "remote-node", 7: "kube-apiserver", 8: "ingress", 9: "world-ipv4",
                       10: "world-ipv6"}  # fmt: skip
WORLD_IDENTITIES = frozenset({2, 9, 10})
NON_FLOW_EVENTS = ("node_status", "lost_events", "agent_event", "debug_event")
L4_PROTOCOLS = ("TCP", "UDP", "SCTP")


@dataclass(frozen=True)
class FlowEndpoint:
    namespace: str | None
    pod_name: str | None
    labels: tuple[str, ...]  # `source:key=value`, e.g. `k8s:app=web`, `reserved:world`
    identity: int | None
    ip: str | None

    @property
    def reserved(self) -> str | None:
        """The reserved identity's name (`world`, `host`, ...) or None for a workload."""
        for label in self.labels:
            if label.startswith("reserved:"):
                return label.removeprefix("reserved:").split("=", 1)[0]
        if self.identity is not None:
            return RESERVED_IDENTITIES.get(self.identity)
        return None

    def k8s_labels(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for label in self.labels:
            source, _, rest = label.partition(":")
            if source != "k8s" or not rest:
                continue
            key, _, value = rest.partition("=")
            out[key] = value
        return out

    def describe(self) -> str:
        if self.namespace and self.pod_name:
            name = f"{self.namespace}/{self.pod_name}"
        elif self.reserved:
            name = f"reserved:{self.reserved}"
        else:
            name = self.ip or "?"
        extra = []
        if self.identity is not None:
            extra.append(f"identity {self.identity}")
        if self.ip and name != self.ip:
            extra.append(self.ip)
        return f"{name} ({', '.join(extra)})" if extra else name


@dataclass(frozen=True)
class HubbleFlow:
    line: int
    time: str | None
    verdict: str
    drop_reason: str | None
    flow_type: str
    source: FlowEndpoint
    destination: FlowEndpoint
    protocol: str | None  # TCP/UDP/SCTP; None for ICMP or no L4
    port: int | None  # destination port
    l7_type: str | None
    method: str | None
    path: str | None  # URL path with its query, what Envoy's `:path` header carries
    is_reply: bool | None
    direction: str | None
    event_type: int | None


@dataclass
class FlowFile:
    path: str
    records: int = 0
    flows: list[HubbleFlow] = field(default_factory=list)
    non_flow_events: Counter[str] = field(default_factory=Counter)
    first_time: str | None = None
    last_time: str | None = None


def read_flow_file(path: str) -> FlowFile:
    try:
        with Path(path).open(encoding="utf-8") as fh:
            return parse_flow_lines(fh, path)
    except OSError as exc:
        raise InputError(f"cannot read: {exc}", source=path) from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text: {exc}", source=path) from exc


def parse_flow_lines(lines: Iterable[str], source: str) -> FlowFile:
    out = FlowFile(source)
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        out.records += 1
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {number}: invalid JSON: {exc.msg}", source=source) from exc
        if not isinstance(obj, dict):
            raise InputError(f"line {number}: expected a JSON object", source=source)
        if "flow" in obj:
            flow_raw = obj["flow"]
        else:
            kind = next((k for k in NON_FLOW_EVENTS if k in obj), None)
            if kind is not None:
                out.non_flow_events[kind] += 1
                continue
            if not any(k in obj for k in ("verdict", "IP", "source", "destination", "l4")):
                raise InputError(
                    f"line {number}: neither a Hubble flow nor an event wrapping one "
                    f"(keys: {', '.join(sorted(obj)) or 'none'})",
                    source=source,
                )
            flow_raw = obj
        if not isinstance(flow_raw, dict):
            raise InputError(f"line {number}: flow: expected a JSON object", source=source)
        flow = _flow(flow_raw, number, source)
        out.flows.append(flow)
        if flow.time is not None:
            if out.first_time is None or flow.time < out.first_time:
                out.first_time = flow.time
            if out.last_time is None or flow.time > out.last_time:
                out.last_time = flow.time
    return out


class _Where:
    def __init__(self, line: int, source: str) -> None:
        self.line = line
        self.source = source

    def error(self, key: str, message: str) -> InputError:
        return InputError(f"line {self.line}: {key}: {message}", source=self.source)


def _enum(where: _Where, raw: Any, key: str, names: tuple[str, ...], default: str) -> str:
    if raw is None:
        return default
    if isinstance(raw, bool):
        raise where.error(key, f"expected an enum name or number, got {raw!r}")
    if isinstance(raw, int):
        if 0 <= raw < len(names):
            return names[raw]
        raise where.error(key, f"unknown value {raw}")
    if isinstance(raw, str):
        if raw in names:
            return raw
        raise where.error(key, f"unknown value {raw!r} (expected one of {', '.join(names)})")
    raise where.error(key, f"expected an enum name or number, got {raw!r}")


def _mapping(where: _Where, raw: Any, key: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise where.error(key, "expected an object")
    return raw


def _string(where: _Where, raw: Any, key: str) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise where.error(key, f"expected a string, got {raw!r}")
    return raw


def _uint(where: _Where, raw: Any, key: str) -> int | None:
    if raw is None:
        return None
    # protojson writes uint32 as a number; uint64/int64 may arrive as strings.
    if isinstance(raw, str) and raw.isdigit():
        return int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise where.error(key, f"expected a non-negative integer, got {raw!r}")
    return raw


def _endpoint(where: _Where, raw: Any, key: str, ip: str | None) -> FlowEndpoint:
    data = _mapping(where, raw, key)
    labels_raw = data.get("labels") or []
    if not isinstance(labels_raw, list) or not all(isinstance(v, str) for v in labels_raw):
        raise where.error(f"{key}.labels", "expected a list of strings")
    return FlowEndpoint(
        namespace=_string(where, data.get("namespace"), f"{key}.namespace"),
        pod_name=_string(where, data.get("pod_name"), f"{key}.pod_name"),
        labels=tuple(labels_raw),
        identity=_uint(where, data.get("identity"), f"{key}.identity"),
        ip=ip,
    )


def _drop_reason(where: _Where, raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return POLICY_DROP_REASONS.get(raw, str(raw))
    if isinstance(raw, str):
        return raw
    raise where.error("drop_reason_desc", f"expected an enum name or number, got {raw!r}")


def _flow(raw: Mapping[str, Any], line: int, source: str) -> HubbleFlow:
    where = _Where(line, source)
    ip = _mapping(where, raw.get("IP"), "IP")
    l4 = _mapping(where, raw.get("l4"), "l4")
    protocol: str | None = None
    port: int | None = None
    for proto in L4_PROTOCOLS:
        if proto in l4:
            protocol = proto
            port = _uint(where, _mapping(where, l4[proto], f"l4.{proto}").get("destination_port"),
                         f"l4.{proto}.destination_port")  # fmt: skip
            break
    l7 = _mapping(where, raw.get("l7"), "l7")
    http = _mapping(where, l7.get("http"), "l7.http")
    method = _string(where, http.get("method"), "l7.http.method")
    url = _string(where, http.get("url"), "l7.http.url")
    path = None
    if url is not None:
        parts = urlsplit(url)
        # Cilium matches `path` against Envoy's `:path` header: the path and its query.
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    is_reply = raw.get("is_reply")
    if is_reply is not None and not isinstance(is_reply, bool):
        raise where.error("is_reply", f"expected true or false, got {is_reply!r}")
    event_type = _mapping(where, raw.get("event_type"), "event_type")
    event_number = event_type.get("type")
    if event_number is not None and (
        isinstance(event_number, bool) or not isinstance(event_number, int)
    ):
        raise where.error("event_type.type", f"expected an integer, got {event_number!r}")
    return HubbleFlow(
        line=line,
        time=_string(where, raw.get("time"), "time"),
        verdict=_enum(where, raw.get("verdict"), "verdict", VERDICTS, "VERDICT_UNKNOWN"),
        drop_reason=_drop_reason(where, raw.get("drop_reason_desc")),
        flow_type=_enum(where, raw.get("Type"), "Type", FLOW_TYPES, "UNKNOWN_TYPE"),
        source=_endpoint(
            where, raw.get("source"), "source", _string(where, ip.get("source"), "IP.source")
        ),
        destination=_endpoint(
            where,
            raw.get("destination"),
            "destination",
            _string(where, ip.get("destination"), "IP.destination"),
        ),
        protocol=protocol,
        port=port,
        l7_type=_enum(where, l7.get("type"), "l7.type", L7_TYPES, "UNKNOWN_L7_TYPE")
        if l7
        else None,
        method=method,
        path=path,
        is_reply=is_reply,
        direction=_enum(
            where,
            raw.get("traffic_direction"),
            "traffic_direction",
            DIRECTIONS,
            "TRAFFIC_DIRECTION_UNKNOWN",
        ),
        event_type=event_number,
    )
