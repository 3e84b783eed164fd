"""Endpoint classes: pods and addresses that every policy treats alike, with their rule lists.

Built once per analysis (`EndpointClasses`); deciding a verdict is engine.py, listing every
allowed pair is enumeration.py.

Cost model: selectors are evaluated once per policy against an inverted label index (bitsets over
endpoint classes), so building is linear in pods x policies; pods with the same namespace, labels,
service account, named ports and ipBlock memberships form one class and pairs are evaluated per
class pair. Only what a policy can observe enters the class key: the label keys some selector
tests and the container ports some rule names (a selector requirement reads only its own key,
`Rule.resolve` only ports of the names it lists), so pods that differ in other labels (a
StatefulSet's `statefulset.kubernetes.io/pod-name`, a `team` label) share a class. External
addresses are split into classes at every CIDR boundary the policies mention.
"""

from __future__ import annotations

import bisect
import dataclasses
import gc
import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from reachability.cilium_identity import identity_labels
from reachability.compiler import compile_policies
from reachability.compiler.addresses import LINE_END, V6_OFFSET, address_to_line
from reachability.compiler.model import (
    CidrPeer,
    CompiledPolicy,
    EntityPeer,
    Peer,
    PodPeer,
    PolicyRef,
    Rule,
)
from reachability.errors import InputError
from reachability.hints import nearest
from reachability.inputs import (
    ContainerPort,
    Inputs,
    Pod,
)
from reachability.profiles import EnforcementProfile, profile
from reachability.results import Rejected
from reachability.selectors import LabelIndex, Selector


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: building millions of tuples and dicts otherwise
    triggers full collections that walk every object of the loaded input again and again (at
    150,000 pods most of the grouping time). The analysis creates no reference cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def iter_bits(bits: int) -> Iterator[int]:
    while bits:
        low = bits & -bits
        yield low.bit_length() - 1
        bits ^= low


@dataclass
class EndpointClass:
    index: int
    pods: list[Pod] = field(default_factory=list)
    # External classes: address ranges on the unified line.
    ranges: list[tuple[int, int]] = field(default_factory=list)
    ingress: list[tuple[Rule, int]] = field(default_factory=list)
    egress: list[tuple[Rule, int]] = field(default_factory=list)
    ingress_by: list[PolicyRef] = field(default_factory=list)
    egress_by: list[PolicyRef] = field(default_factory=list)
    isolated_ingress: bool = False
    isolated_egress: bool = False

    @property
    def external(self) -> bool:
        return not self.pods

    @property
    def named_ports(self) -> tuple[ContainerPort, ...] | None:
        return self.pods[0].ports if self.pods else None


class EndpointClasses:
    """The inputs compiled under a profile and cut into classes; rules attached per class."""

    def __init__(self, inputs: Inputs, enforcement: str | EnforcementProfile) -> None:
        """`enforcement`: a profile or its name (`kube-router`, `cilium`, `cilium@1.15`)."""
        with gc_paused():
            self._build(inputs, enforcement)

    def _build(self, inputs: Inputs, enforcement: str | EnforcementProfile) -> None:
        if isinstance(enforcement, EnforcementProfile):
            self.profile, self.enforcement = enforcement, enforcement.name
        else:
            try:
                self.profile = profile(enforcement)
            except ValueError as exc:
                raise InputError(str(exc)) from exc
            # The name as the caller gave it: outputs print it (`cilium`, not its alias target).
            self.enforcement = enforcement
        self.inputs = inputs
        self.notes = list(inputs.notes)
        # Policies the profile's agent refuses to import: left out of the model, named in reports.
        self.rejected: list[Rejected] = []
        self.policies = compile_policies(
            inputs.policies, self.profile, self.notes, inputs.pods, self.rejected
        )
        self.pods_by_key = {pod.key: pod for pod in inputs.pods}
        self.pods_by_ip: dict[int, Pod] = {}
        for pod in inputs.pods:
            if pod.ip is not None:
                self.pods_by_ip[ip_line(pod.ip)] = pod
        self.local_host_nodes = self._local_host_nodes()
        self.build_classes()
        self.local_host_sources = self._local_host_sources()
        self.build_indexes()
        self.attach_policies()

    # --- construction ------------------------------------------------------------------------

    def _cidr_peers(self) -> list[CidrPeer]:
        seen: dict[CidrPeer, None] = {}
        for policy in self.policies:
            for rule in policy.ingress + policy.egress:
                for peer in rule.peers:
                    if isinstance(peer, CidrPeer):
                        seen.setdefault(peer)
        return list(seen)

    def _local_host_nodes(self) -> frozenset[str]:
        """The nodes whose host-network pods reach every pod of the node on every port
        (profile.local_host_reaches_node_pods). Where the objects do not say where a pod runs
        (no spec.nodeName: the program's rendered manifests), a note says what is left out."""
        if not self.profile.local_host_reaches_node_pods:
            return frozenset()
        hosts = [pod for pod in self.inputs.pods if pod.host_network]
        unplaced = [pod.key for pod in self.inputs.pods if pod.node is None]
        if hosts and unplaced:
            self.notes.append(
                f"under {self.profile.name}, a host-network pod "
                f"({', '.join(sorted(p.key for p in hosts)[:3])}) reaches every pod of its own "
                "node on every port, whatever ingress policies allow; these objects do not say "
                f"where {len(unplaced)} pod(s) run (spec.nodeName, e.g. {unplaced[0]}), so that "
                "reach is not in this answer"
            )
        return frozenset(pod.node for pod in hosts if pod.node is not None)

    def _local_host_sources(self) -> dict[int, tuple[int, ...]]:
        """For each pod class on a node of `local_host_nodes`: that node's host-network
        classes."""
        hosts_on: dict[str, list[int]] = {}
        pod_classes = [cls for cls in self.classes if cls.pods]
        for cls in pod_classes:
            if cls.pods[0].host_network and cls.pods[0].node in self.local_host_nodes:
                hosts_on.setdefault(str(cls.pods[0].node), []).append(cls.index)
        return {
            cls.index: tuple(hosts_on[str(cls.pods[0].node)])
            for cls in pod_classes
            if not cls.pods[0].host_network and cls.pods[0].node in hosts_on
        }

    def _class_key(self, pod: Pod, cidr_memberships: frozenset[int]) -> tuple[object, ...]:
        """What policies can observe of a pod; pods with equal keys behave alike."""
        labels = pod.labels
        selected = labels.keys() & self.label_keys
        return (
            pod.namespace,
            frozenset(zip(selected, map(labels.__getitem__, selected), strict=True)),
            pod.service_account,
            tuple(cp for cp in pod.ports if cp.name in self.port_names) if self.port_names else (),
            cidr_memberships,
            # A host-network pod has no pod identity under Cilium (host/remote-node entities).
            pod.host_network,
            # The node, where a host-network pod on it reaches its pods whatever their ingress
            # policies allow (profile.local_host_reaches_node_pods); None elsewhere.
            pod.node if pod.node in self.local_host_nodes else None,
        )

    def build_classes(self) -> None:
        self.cidr_peers = self._cidr_peers()
        peer_ids = {peer: i for i, peer in enumerate(self.cidr_peers)}
        # Pod IP memberships (only for peers that match pod IPs: ipBlock under kube-router).
        pod_ips = sorted(self.pods_by_ip)
        member: dict[str, set[int]] = {}
        for peer, pid in peer_ids.items():
            if not peer.matches_pods:
                continue
            for lo, hi in peer.ranges:
                for pos in range(bisect.bisect_left(pod_ips, lo), bisect.bisect_right(pod_ips, hi)):
                    member.setdefault(self.pods_by_ip[pod_ips[pos]].key, set()).add(pid)
        self.classes: list[EndpointClass] = []
        self.class_of_pod: dict[str, int] = {}
        keyed: dict[object, EndpointClass] = {}
        self.label_keys, self.port_names = _observed_keys(self.policies)
        for pod in sorted(self.inputs.pods, key=lambda p: p.key):
            key = self._class_key(pod, frozenset(member.get(pod.key, ())))
            cls = keyed.get(key)
            if cls is None:
                cls = EndpointClass(len(self.classes))
                keyed[key] = cls
                self.classes.append(cls)
            cls.pods.append(pod)
            self.class_of_pod[pod.key] = cls.index
        self.pod_bits = (1 << len(self.classes)) - 1
        # External address atoms, cut at every CIDR boundary.
        cuts = {0, V6_OFFSET, LINE_END + 1}
        for peer in self.cidr_peers:
            for lo, hi in peer.ranges:
                cuts.add(lo)
                cuts.add(hi + 1)
        self.atom_starts = sorted(cuts)
        atom_sig: list[set[int]] = [set() for _ in range(len(self.atom_starts) - 1)]
        for peer, pid in peer_ids.items():
            for lo, hi in peer.ranges:
                first = bisect.bisect_right(self.atom_starts, lo) - 1
                last = bisect.bisect_right(self.atom_starts, hi) - 1
                for atom in range(first, last + 1):
                    atom_sig[atom].add(pid)
        self.atom_class: list[int] = []
        ext_keyed: dict[tuple[bool, frozenset[int]], EndpointClass] = {}
        for atom, sig in enumerate(atom_sig):
            lo, hi = self.atom_starts[atom], self.atom_starts[atom + 1] - 1
            ext_key = (lo >= V6_OFFSET, frozenset(sig))
            cls = ext_keyed.get(ext_key)
            if cls is None:
                cls = EndpointClass(len(self.classes))
                ext_keyed[ext_key] = cls
                self.classes.append(cls)
            cls.ranges.append((lo, hi))
            self.atom_class.append(cls.index)
        self.all_bits = (1 << len(self.classes)) - 1
        self.world_bits = self.all_bits & ~self.pod_bits
        # Each class adds itself to the peers it is a member of (one pass over the memberships,
        # not peers x classes: thousands of ipBlocks times tens of thousands of classes).
        members_of: list[list[int]] = [[] for _ in self.cidr_peers]
        for sig_key, cls in ext_keyed.items():
            for pid in sig_key[1]:
                members_of[pid].append(cls.index)
        for sig_pod_key, cls in keyed.items():
            for pid in sig_pod_key[4]:  # type: ignore[index]
                if self.cidr_peers[pid].matches_pods:
                    members_of[pid].append(cls.index)
        self.cidr_bits: dict[CidrPeer, int] = {}
        for peer, pid in peer_ids.items():
            bits = 0
            for index in members_of[pid]:
                bits |= 1 << index
            self.cidr_bits[peer] = bits
        # IPv6 world classes are listed only when a policy mentions an IPv6 CIDR.
        self.show_v6 = any(lo >= V6_OFFSET for p in self.cidr_peers for lo, _ in p.ranges)

    def build_indexes(self) -> None:
        pod_classes = [c for c in self.classes if c.pods]
        self.host_bits = 0
        for cls in pod_classes:
            if cls.pods[0].host_network:
                self.host_bits |= 1 << cls.index
        plain = [c.pods[0].labels for c in pod_classes]
        self.plain_index = LabelIndex(plain, self.pod_bits)
        cilium_labels = [
            identity_labels(
                cls.pods[0].labels,
                cls.pods[0].namespace,
                self.inputs.namespace(cls.pods[0].namespace).labels,
                cls.pods[0].service_account,
                self.profile.identity_labels_left_out,
            )
            for cls in pod_classes
        ]
        self.cilium_index = LabelIndex(cilium_labels, self.pod_bits)
        if self.profile.identity_labels:
            # Cilium turns NetworkPolicies into rules on identity labels too (pkg/k8s).
            self.plain_index = self.cilium_index
        self.ns_bits: dict[str, int] = {}
        for cls in pod_classes:
            ns = cls.pods[0].namespace
            self.ns_bits[ns] = self.ns_bits.get(ns, 0) | (1 << cls.index)
        self._peer_cache: dict[Peer, int] = {}
        self._rule_cache: dict[int, int] = {}
        self._ns_selector_cache: dict[Selector, int] = {}
        # namespaceSelectors are evaluated against an index of the namespaces, like pods: a
        # cluster with thousands of namespaces has thousands of distinct selectors.
        self._ns_names = list(self.ns_bits)
        self._ns_index = LabelIndex(
            [self.inputs.namespace(ns).labels for ns in self._ns_names],
            (1 << len(self._ns_names)) - 1,
        )

    def peer_bits(self, peer: Peer) -> int:
        cached = self._peer_cache.get(peer)
        if cached is not None:
            return cached
        bits: int
        if isinstance(peer, EntityPeer):
            bits = (self.world_bits if peer.world else 0) | (self.pod_bits if peer.cluster else 0)
            if peer.host and self.profile.identity_labels:
                bits |= self.host_bits
        elif isinstance(peer, CidrPeer):
            bits = self.cidr_bits[peer]
        else:
            bits = self._pod_peer_bits(peer)
        self._peer_cache[peer] = bits
        return bits

    def _pod_peer_bits(self, peer: PodPeer) -> int:
        if peer.namespaces is not None:
            within = 0
            for ns in peer.namespaces:
                within |= self.ns_bits.get(ns, 0)
        elif peer.ns_selector is not None:
            cached = self._ns_selector_cache.get(peer.ns_selector)
            if cached is None:
                cached = 0
                selected = self._ns_index.select(peer.ns_selector, self._ns_index.universe)
                for i in iter_bits(selected):
                    cached |= self.ns_bits[self._ns_names[i]]
                self._ns_selector_cache[peer.ns_selector] = cached
            within = cached
        else:
            within = self.pod_bits
        index = self.cilium_index if peer.cilium else self.plain_index
        if self.profile.identity_labels:
            # Cilium identifies host-network pods as host/remote-node, never by their labels.
            within &= ~self.host_bits
        return index.select(peer.pods, within)

    def rule_bits(self, rule: Rule) -> int:
        cached = self._rule_cache.get(id(rule))
        if cached is None:
            cached = 0
            for peer in rule.peers:
                cached |= self.peer_bits(peer)
            self._rule_cache[id(rule)] = cached
        return cached

    def selected_bits(self, policy: CompiledPolicy) -> int:
        if policy.namespace is None:
            within = self.pod_bits
        else:
            within = self.ns_bits.get(policy.namespace, 0)
        index = self.cilium_index if policy.cilium else self.plain_index
        return index.select(policy.selector, within)

    def attach_policies(self) -> None:
        for policy in self.policies:
            if not (
                policy.ingress or policy.egress or policy.isolates_ingress or policy.isolates_egress
            ):
                continue
            ingress = [(rule, self.rule_bits(rule)) for rule in policy.ingress]
            egress = [(rule, self.rule_bits(rule)) for rule in policy.egress]
            for i in iter_bits(self.selected_bits(policy)):
                cls = self.classes[i]
                if ingress or policy.isolates_ingress:
                    cls.ingress.extend(ingress)
                    cls.ingress_by.append(policy.ref)
                    cls.isolated_ingress |= policy.isolates_ingress
                if egress or policy.isolates_egress:
                    cls.egress.extend(egress)
                    cls.egress_by.append(policy.ref)
                    cls.isolated_egress |= policy.isolates_egress

    # --- endpoints ---------------------------------------------------------------------------

    def endpoint_class(self, endpoint: str) -> tuple[EndpointClass, str]:
        """Class of `ns/pod` or of an IP address (a pod's IP stands for that pod)."""
        if "/" in endpoint and not _looks_like_ip(endpoint.split("/", maxsplit=1)[0]):
            if endpoint not in self.class_of_pod:
                names = ", ".join(nearest(endpoint, list(self.class_of_pod)))
                hint = f"; nearest: {names}" if names else ""
                raise InputError(f"unknown pod {endpoint!r}{hint}")
            return self.classes[self.class_of_pod[endpoint]], endpoint
        try:
            addr = ipaddress.ip_address(endpoint)
        except ValueError as exc:
            raise InputError(f"invalid endpoint {endpoint!r} (expected NS/POD or an IP)") from exc
        line = address_to_line(addr)
        pod = self.pods_by_ip.get(line)
        if pod is not None:
            return self.classes[self.class_of_pod[pod.key]], pod.key
        atom = bisect.bisect_right(self.atom_starts, line) - 1
        return self.classes[self.atom_class[atom]], str(addr)

    def endpoint_names(self, cls: EndpointClass) -> list[str]:
        if cls.pods:
            return [pod.key for pod in cls.pods]
        return range_names(cls.ranges, self.show_v6)


def _observed_keys(policies: list[CompiledPolicy]) -> tuple[frozenset[str], frozenset[str]]:
    """Label keys any selector of `policies` tests, and container port names any rule names.

    Selectors are found in every field of the policy's peers (whatever peer kinds exist), so a
    new peer type with a selector is covered without touching this function."""
    keys: set[str] = set()
    names: set[str] = set()
    seen: set[int] = set()

    def visit(value: object) -> None:
        if isinstance(value, Selector):
            keys.update(value.keys())
        elif isinstance(value, (tuple, list, frozenset)):
            for item in value:
                visit(item)
        elif dataclasses.is_dataclass(value) and id(value) not in seen:
            seen.add(id(value))
            for f in dataclasses.fields(value):
                visit(getattr(value, f.name))

    for policy in policies:
        visit(policy.selector)
        for rule in policy.ingress + policy.egress:
            visit(rule.peers)
            for spec in rule.ports or ():
                if isinstance(spec.port, str):
                    names.add(spec.port)
    # Cilium selectors test the derived identity labels; they come from fields in the class key.
    return frozenset(keys), frozenset(names)


def range_names(ranges: list[tuple[int, int]], show_v6: bool) -> list[str]:
    """`cidr:` names of address ranges on the unified line (IPv6 ones only when shown)."""
    names: list[str] = []
    for lo, hi in ranges:
        if lo >= V6_OFFSET:
            if not show_v6:
                continue
            first: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv6Address(
                lo - V6_OFFSET
            )
            last: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv6Address(
                hi - V6_OFFSET
            )
        else:
            first, last = ipaddress.IPv4Address(lo), ipaddress.IPv4Address(hi)
        names.extend(f"cidr:{net}" for net in ipaddress.summarize_address_range(first, last))
    return names


def ip_line(text: str) -> int:
    """`address_to_line(ip_address(text))`, IPv4 through inet_pton (20x faster at 150k pods)."""
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except OSError:
        return address_to_line(ipaddress.ip_address(text))


def _looks_like_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
