"""Who can reach whom: one pair's verdict, with the policies that decided it.

The analysis is built in classes.py (endpoint classes, label indexes, rules per class) and every
allowed pair is listed by enumeration.py; `Analyzer` is the public face of the three.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from reachability import enumeration
from reachability.classes import EndpointClass, EndpointClasses
from reachability.compiler.model import PolicyRef, Rule
from reachability.ports import ALL, EMPTY, PortSet
from reachability.results import AllowedFlow


@dataclass(frozen=True)
class Request:
    protocol: str
    port: int
    method: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    policies: tuple[PolicyRef, ...]
    ports: PortSet  # everything allowed between the two endpoints
    l7_restricted: bool
    # The destination's ingress side was opened by its own node's host-network source
    # (profile.local_host_reaches_node_pods), not by a policy.
    local_host: bool = False


@dataclass
class _Side:
    allow: PortSet
    deny: PortSet
    allow_by: list[tuple[PolicyRef, PortSet]]
    deny_by: list[tuple[PolicyRef, PortSet]]
    isolated_by: list[PolicyRef]

    @property
    def effective(self) -> PortSet:
        return self.allow - self.deny


class Analyzer(EndpointClasses):
    """`Analyzer(inputs, "cilium")`: verdicts (`query`, `verdict`) and every allowed flow;
    `rejected`: the policies the profile's agent refuses to import, left out of both."""

    def _side(self, rules: list[tuple[Rule, int]], peer: int, dst: EndpointClass) -> _Side:
        side = _Side(EMPTY, EMPTY, [], [], [])
        for rule, bits in rules:
            if not (bits >> peer) & 1:
                continue
            ports = rule.resolve(dst.named_ports)
            if not ports:
                continue
            if rule.deny:
                side.deny = side.deny | ports
                side.deny_by.append((rule.policy, ports))
            else:
                side.allow = side.allow | ports
                side.allow_by.append((rule.policy, ports))
        return side

    def verdict(self, src: EndpointClass, dst: EndpointClass, request: Request) -> Verdict:
        sides: list[_Side] = []
        local_host = src.index in self.local_host_sources.get(dst.index, ())
        if not src.external:
            egress = self._side(src.egress, dst.index, dst)
            egress.isolated_by = src.egress_by
            if not src.isolated_egress:
                egress.allow = ALL
            sides.append(egress)
        if not dst.external:
            ingress = self._side(dst.ingress, src.index, dst)
            ingress.isolated_by = dst.ingress_by
            if not dst.isolated_ingress or local_host:
                ingress.allow = ALL
            sides.append(ingress)
        ports = ALL
        for side in sides:
            ports = ports & side.effective
        args = (request.protocol, request.port, request.method, request.path)
        allowed = ports.allows(*args)
        deciders: list[PolicyRef] = []
        for side in sides:
            denied = [
                ref
                for ref, ps in side.deny_by
                if ps.allows(request.protocol, request.port, None, None)
            ]
            if allowed:
                deciders.extend(ref for ref, ps in side.allow_by if ps.allows(*args))
            elif denied:
                deciders.extend(denied)
            elif not side.effective.allows(*args):
                deciders.extend(side.isolated_by)
        found, http = ports.lookup(request.protocol, request.port)
        return Verdict(
            allowed=allowed,
            policies=tuple(dict.fromkeys(deciders)),
            ports=ports,
            l7_restricted=found and http is not None,
            local_host=allowed and local_host and dst.isolated_ingress,
        )

    def query(self, src: str, dst: str, request: Request) -> Verdict:
        src_cls, _ = self.endpoint_class(src)
        dst_cls, _ = self.endpoint_class(dst)
        return self.verdict(src_cls, dst_cls, request)

    def class_flows(self) -> dict[int, dict[int, PortSet]]:
        """For every source class, the destination classes it reaches and what is allowed."""
        return enumeration.class_flows(self)

    def class_flows_compact(self) -> tuple[dict[int, dict[int, PortSet]], list[int], list[int]]:
        """`class_flows` without the open-to-everything part (enumeration.class_flows_compact)."""
        return enumeration.class_flows_compact(self)

    def flows(self) -> Iterator[AllowedFlow]:
        """Every allowed (from, to, ports), sorted by source then destination name."""
        return enumeration.flows(self)
