"""Differential testing of the analyzer's Cilium profiles against Cilium's own policy code.

The oracle is tools/cilium-oracle (a Go program built against github.com/cilium/cilium@v1.15.0,
and per version under tools/cilium-oracle/versions/, by scripts/build_cilium_oracle.sh); see
docs/cilium-oracle.md. ORACLES maps each oracle build to the analyzer profile it checks. This
module:
- generates random clusters (namespaces, pods with labels, service accounts and named ports) and
  random NetworkPolicy + CiliumNetworkPolicy (+ clusterwide) sets from a seed;
- asks both the oracle and our Analyzer about every pod pair on a few ports (and HTTP requests
  where L7 rules exist), and reports each probe where they disagree;
- shrinks a disagreeing case to a minimal one (delta debugging over the policy documents).

Used by analyzer/tests/test_oracle.py (a few hundred cases per CI run) and by
scripts/cilium_oracle_campaign.py (longer campaigns).
"""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reachability.engine import Analyzer, Request
from reachability.errors import InputError
from reachability.loader import load_documents

Case = dict[str, Any]

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
# (protocol, port) probed for every pod pair.
L4_PROBES = (("TCP", 80), ("TCP", 81), ("TCP", 8080), ("UDP", 80), ("UDP", 81), ("SCTP", 80))
HTTP_REQUESTS = (("GET", "/"), ("POST", "/api/v1"), ("GET", "/admin"), ("PUT", "/api/x"))

# Each oracle build (its Cilium version; None = the base build, ADR-013's 1.15.0) and the
# analyzer profile that must agree with it: a profile is one Cilium line's semantics, checked
# against that line's patches on the upgrade path (tools/cilium-oracle/versions/).
ORACLES: dict[str, tuple[str | None, str]] = {
    "1.15.0": (None, "cilium@1.15"),
    "1.15.19": ("1.15.19", "cilium@1.15"),
    "1.19.7": ("1.19.7", "cilium@1.19"),
}
# The oracle build that derives a profile's expectations in oracle-cases.yaml
# (scripts/derive_oracle_cases.py): the first of ORACLES for that profile, unless the entry
# names its `oracle`.
DERIVING_ORACLE: dict[str, str] = {}
for _build, (_, _profile) in ORACLES.items():
    DERIVING_ORACLE.setdefault(_profile, _build)
# Pod labels that later Cilium releases leave out of identities (pkg/labelsfilter
# defaultLabelPrefixCfg): Job pods' uid labels from a 1.15 patch (1.15.19 has them, 1.15.0 not),
# the topology labels in 1.19.7's list.
VERSIONED_LABELS = (
    "controller-uid",
    "batch.kubernetes.io/controller-uid",
    "topology.kubernetes.io/zone",
)
# The generator's settings for a profile's campaign (random_case keywords):
# - l7_port_overlap: HTTP rules may sit on ports that named and numeric rules also reach. 1.15
#   lifts the HTTP rules there (a single-selector L4Filter is a wildcard for Envoy, not
#   modelled: docs/cilium-oracle.md, "Not fixed"); 1.19 does not (oracle-cases.yaml
#   named-and-numeric-rule-on-one-port-keep-http-rules).
# - versioned_labels: which of VERSIONED_LABELS pods and selectors get. cilium@1.15 follows
#   1.15.0 and is checked against 1.15.19 too, which differ on the uid labels (oracle-cases.yaml
#   job-uid-labels-left-out-from-a-1-15-patch), so its campaign leaves them out.
CAMPAIGN: dict[str, dict[str, Any]] = {
    "cilium@1.15": {"l7_port_overlap": False, "versioned_labels": VERSIONED_LABELS[2:]},
    "cilium@1.19": {"l7_port_overlap": True, "versioned_labels": VERSIONED_LABELS},
}
# An oracle-cases.yaml entry without `profile` is a 1.15 case (the file predates 1.19's oracle).
DEFAULT_CASE_PROFILE = "cilium@1.15"


def case_profiles(entry: dict[str, Any]) -> list[str]:
    """The profiles an oracle-cases.yaml entry holds for: its `profile`, one name or a list (a
    case that each of those lines' Cilium answers alike)."""
    value = entry.get("profile", DEFAULT_CASE_PROFILE)
    return [value] if isinstance(value, str) else list(value)


def oracle_binary(version: str | None = None) -> Path | None:
    """The built oracle: $CILIUM_ORACLE, else the toolchain's bin dir (scripts/toolchain.sh).
    With `version`, the oracle built against that Cilium version (cilium-oracle-<version>,
    scripts/build_cilium_oracle.sh OUT VERSION); without, ADR-013's 1.15.0."""
    explicit = os.environ.get("CILIUM_ORACLE")
    if explicit and version is None:
        return Path(explicit)
    name = f"cilium-oracle-{version}" if version else "cilium-oracle"
    tc = os.environ.get("CNISTACK_TOOLCHAIN_DIR") or str(Path.home() / ".cache/cnistack/toolchain")
    for candidate in (
        Path(tc) / "bin" / name,
        Path.home() / ".cache/cnistack/oracle/bin" / name,
    ):
        if candidate.is_file():
            return candidate
    return None


# --- random clusters and policies ------------------------------------------------------------


class Gen:
    """Random cluster + policy set. Vocabulary is small on purpose: selectors must hit pods.

    `l7_port_overlap=False` (the CI test of cilium@1.15) puts HTTP rules on port 81 only, which
    no named port of the generator maps to: a port reached both by a named and a numeric
    L4Filter hits a 1.15 Envoy-policy quirk the analyzer does not model (docs/cilium-oracle.md,
    "Not fixed").
    """

    def __init__(
        self,
        rng: random.Random,
        l7_port_overlap: bool = True,
        extra: random.Random | None = None,
        versioned_labels: tuple[str, ...] = VERSIONED_LABELS,
    ) -> None:
        self.r = rng
        self.l7_port_overlap = l7_port_overlap
        self.versioned_labels = versioned_labels
        # A second stream for what differs between Cilium lines (identity labels that 1.16+
        # leaves out, empty peer lists): drawing it does not shift the main stream, so a seed
        # keeps the cluster and policies it had before these were generated.
        self.x = extra

    def extra(self, p: float) -> bool:
        return self.x is not None and self.x.random() < p

    def pick(self, seq: Any) -> Any:
        return self.r.choice(list(seq))

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def cluster(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        namespaces = []
        for ns in NAMESPACES:
            labels = {"kubernetes.io/metadata.name": ns, "ns": ns}
            if self.chance(0.5):
                labels["team"] = self.pick(("red", "blue"))
            namespaces.append({"name": ns, "labels": labels})
        pods = []
        for ns in NAMESPACES:
            for name in PODS:
                if self.chance(0.25):
                    continue
                labels = {"pod": name}
                if self.chance(0.6):
                    labels["app"] = self.pick(("web", "db"))
                if self.chance(0.4):
                    labels["tier"] = self.pick(("front", "back"))
                if self.chance(0.2):
                    labels["app.kubernetes.io/name"] = self.pick(("web", "db"))
                if self.chance(0.15):
                    labels["pod-template-hash"] = self.pick(("h1", "h2"))
                if self.chance(0.1):
                    labels["statefulset.kubernetes.io/pod-name"] = name
                if self.extra(0.15) and self.x is not None and self.versioned_labels:
                    key = self.x.choice(self.versioned_labels)
                    labels[key] = self._values(key)[0]
                ports = [
                    {"name": f"serve-{p}-{proto.lower()}", "protocol": proto, "port": p}
                    for p in (80, 81)
                    for proto in ("TCP", "UDP")
                ]
                if self.chance(0.5):
                    number = 8081 if self.chance(0.1) else 8080  # a conflicting definition
                    ports.append({"name": "http", "protocol": "TCP", "port": number})
                pods.append(
                    {
                        "namespace": ns,
                        "name": name,
                        "labels": labels,
                        "serviceAccount": self.pick(("default", "default", "sa1")),
                        "ports": ports,
                    }
                )
        return namespaces, pods

    # selectors

    def _expr(self, keys: tuple[str, ...]) -> dict[str, Any]:
        key = self.pick(keys)
        op = self.pick(("In", "NotIn", "Exists", "DoesNotExist"))
        expr: dict[str, Any] = {"key": key, "operator": op}
        if op in ("In", "NotIn"):
            expr["values"] = self.r.sample(self._values(key), k=1)
        return expr

    def _values(self, key: str) -> list[str]:
        base = key.rsplit(".", maxsplit=1)[-1].rsplit(":", maxsplit=1)[-1]
        return {
            "pod": list(PODS),
            "app": ["web", "db"],
            "tier": ["front", "back"],
            "app.kubernetes.io/name": ["web", "db"],
            "pod-template-hash": ["h1", "h2"],
            "ns": list(NAMESPACES),
            "team": ["red", "blue"],
            "namespace": list(NAMESPACES),
            "serviceaccount": ["default", "sa1"],
            "name": list(PODS),
            "controller-uid": ["u1"],
            "zone": ["z1"],
        }.get(base, ["web"])

    def pod_selector(self, cilium: bool) -> dict[str, Any]:
        keys: tuple[str, ...] = (
            "pod",
            "app",
            "tier",
            "app.kubernetes.io/name",
            "pod-template-hash",
        )
        if cilium:
            keys += (
                "io.kubernetes.pod.namespace",
                "k8s:io.kubernetes.pod.namespace",
                "io.cilium.k8s.policy.serviceaccount",
                "io.cilium.k8s.namespace.labels.team",
                "k8s:app",
                "statefulset.kubernetes.io/pod-name",
            )
        roll = self.r.random()
        if roll < 0.25:
            return {}
        sel: dict[str, Any] = {}
        if roll < 0.75:
            key = self.pick(keys)
            vals = self._values(key)
            sel["matchLabels"] = {key: self.pick(vals)}
        if roll >= 0.6:
            sel["matchExpressions"] = [self._expr(keys)]
        if self.extra(0.1) and self.x is not None and self.versioned_labels:
            key = self.x.choice(self.versioned_labels)
            if self.x.random() < 0.5:
                sel = {"matchLabels": {key: self._values(key)[0]}}
            else:
                op = self.x.choice(("Exists", "DoesNotExist"))
                sel = {"matchExpressions": [{"key": key, "operator": op}]}
        return sel

    def ns_selector(self) -> dict[str, Any]:
        roll = self.r.random()
        if roll < 0.3:
            return {}
        if roll < 0.7:
            key = self.pick(("ns", "kubernetes.io/metadata.name", "team"))
            return {"matchLabels": {key: self.pick(self._values(key))}}
        return {"matchExpressions": [self._expr(("ns", "team"))]}

    # NetworkPolicy

    def np_port(self) -> dict[str, Any]:
        port: dict[str, Any] = {}
        if self.chance(0.7):
            port["protocol"] = self.pick(("TCP", "UDP", "SCTP", "TCP"))
        roll = self.r.random()
        if roll < 0.55:
            port["port"] = self.pick((80, 81, 8080))
            if self.chance(0.2):
                port["endPort"] = port["port"] + self.pick((1, 8000))
        elif roll < 0.85:
            port["port"] = self.pick(("serve-80-tcp", "serve-81-udp", "http"))
        return port

    def np_peer(self) -> dict[str, Any]:
        roll = self.r.random()
        if roll < 0.4:
            return {"podSelector": self.pod_selector(False)}
        if roll < 0.7:
            return {"namespaceSelector": self.ns_selector()}
        if roll < 0.9:
            return {
                "namespaceSelector": self.ns_selector(),
                "podSelector": self.pod_selector(False),
            }
        return {"ipBlock": {"cidr": "10.0.0.0/8"}}

    def np_rule(self, peer_key: str) -> dict[str, Any]:
        rule: dict[str, Any] = {}
        if self.chance(0.7):
            rule[peer_key] = [self.np_peer() for _ in range(self.r.randint(1, 2))]
        if self.chance(0.6):
            rule["ports"] = [self.np_port() for _ in range(self.r.randint(1, 2))]
        return rule

    def network_policy(self, name: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"podSelector": self.pod_selector(False)}
        types = self.pick(([], ["Ingress"], ["Egress"], ["Ingress", "Egress"]))
        if types:
            spec["policyTypes"] = types
        if self.chance(0.7):
            spec["ingress"] = [self.np_rule("from") for _ in range(self.r.randint(0, 2))]
        if self.chance(0.5):
            spec["egress"] = [self.np_rule("to") for _ in range(self.r.randint(0, 2))]
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": self.pick(NAMESPACES)},
            "spec": spec,
        }

    # CiliumNetworkPolicy

    def cnp_port_rule(self, deny: bool) -> dict[str, Any]:
        # L7 rules only where Cilium accepts them (protocol TCP, non-zero port), except now and
        # then, to check that both sides refuse the others.
        l7 = not deny and self.chance(0.35)
        strict = l7 and not self.chance(0.05)
        ports = []
        for _ in range(self.r.randint(1, 2)):
            choices: tuple[str, ...] = ("80", "81", "8080", "serve-80-tcp", "http", "80")
            if l7 and not self.l7_port_overlap:
                choices = ("81",)
            entry: dict[str, Any] = {"port": self.pick(choices if strict else (*choices, "0"))}
            if strict:
                entry["protocol"] = "TCP"
            elif self.chance(0.6):
                entry["protocol"] = self.pick(("TCP", "UDP", "ANY", "TCP"))
            if entry["port"].isdigit() and entry["port"] != "0" and self.chance(0.15):
                entry["endPort"] = int(entry["port"]) + self.pick((1, 8000))
            ports.append(entry)
        rule: dict[str, Any] = {"ports": ports}
        if self.chance(0.04):
            del rule["ports"]  # a toPorts entry without ports
        if l7:
            http = []
            for _ in range(self.r.randint(1, 2)):
                item: dict[str, str] = {}
                if self.chance(0.7):
                    item["method"] = self.pick(("GET", "POST", "GET|HEAD", "P.*"))
                if self.chance(0.7):
                    item["path"] = self.pick(("/", "/api/.*", "/admin", "/api/v1"))
                http.append(item)
            rule["rules"] = {"http": http}
        return rule

    def cnp_rule(self, side: str, deny: bool) -> dict[str, Any]:
        rule: dict[str, Any] = {}
        roll = self.r.random()
        if roll < 0.45:
            rule[f"{side}Endpoints"] = [
                self.pod_selector(True) for _ in range(self.r.randint(1, 2))
            ]
        elif roll < 0.65:
            rule[f"{side}Entities"] = [
                self.pick(("cluster", "world", "all", "host", "remote-node", "cluster"))
            ]
        elif roll < 0.72:
            rule[f"{side}CIDR"] = ["10.0.0.0/8"]
        if roll < 0.65 and self.chance(0.03):
            rule[f"{side}CIDR"] = ["10.0.0.0/8"]  # two L3 kinds in one rule: Cilium refuses
        # else: no L3 part (L4-only rule, or the empty rule)
        if self.extra(0.06) and self.x is not None:
            # An empty peer list: absent in 1.15, selects no identity from 1.16.
            rule[f"{side}{self.x.choice(('Endpoints', 'Entities', 'CIDR'))}"] = []
        if self.chance(0.6):
            rule["toPorts"] = [self.cnp_port_rule(deny) for _ in range(self.r.randint(1, 2))]
        return rule

    def cilium_policy(self, name: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"endpointSelector": self.pod_selector(True)}
        for key, side, deny, p in (
            ("ingress", "from", False, 0.7),
            ("ingressDeny", "from", True, 0.2),
            ("egress", "to", False, 0.5),
            ("egressDeny", "to", True, 0.15),
        ):
            if self.chance(p):
                spec[key] = [self.cnp_rule(side, deny) for _ in range(self.r.randint(1, 2))]
        if self.chance(0.1):
            spec["enableDefaultDeny"] = {
                self.pick(("ingress", "egress")): False,
            }
        clusterwide = self.chance(0.12)
        meta: dict[str, Any] = {"name": name}
        if not clusterwide:
            meta["namespace"] = self.pick(NAMESPACES)
        return {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumClusterwideNetworkPolicy" if clusterwide else "CiliumNetworkPolicy",
            "metadata": meta,
            "spec": spec,
        }

    def case(self) -> Case:
        namespaces, pods = self.cluster()
        policies = []
        for i in range(self.r.randint(1, 4)):
            if self.chance(0.4):
                policies.append(self.network_policy(f"np{i}"))
            else:
                policies.append(self.cilium_policy(f"cnp{i}"))
        return {"namespaces": namespaces, "pods": pods, "policies": policies}


def random_case(
    seed: int, l7_port_overlap: bool = True, versioned_labels: tuple[str, ...] = VERSIONED_LABELS
) -> Case:
    extra = random.Random(f"versions-{seed}")
    return Gen(random.Random(seed), l7_port_overlap, extra, versioned_labels).case()


# --- probes, both sides ----------------------------------------------------------------------


def has_l7(case: Case) -> bool:
    return '"rules"' in json.dumps(case["policies"])


def probes(case: Case) -> list[dict[str, Any]]:
    keys = [f"{p['namespace']}/{p['name']}" for p in case["pods"]]
    http = has_l7(case)
    out: list[dict[str, Any]] = []
    for src in keys:
        for dst in keys:
            if src == dst:
                continue
            for proto, port in L4_PROBES:
                out.append({"src": src, "dst": dst, "protocol": proto, "port": port})
            if http:
                for port in (80, 81, 8080):
                    for method, path in HTTP_REQUESTS:
                        out.append(
                            {
                                "src": src,
                                "dst": dst,
                                "protocol": "TCP",
                                "port": port,
                                "method": method,
                                "path": path,
                            }
                        )
    return out


def manifests(case: Case) -> list[dict[str, Any]]:
    """The case as Kubernetes objects, the analyzer's input."""
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": ns} for ns in case["namespaces"]
    ]
    for pod in case["pods"]:
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod["name"],
                    "namespace": pod["namespace"],
                    "labels": pod["labels"],
                },
                "spec": {
                    "serviceAccountName": pod["serviceAccount"],
                    "containers": [
                        {
                            "name": "main",
                            "ports": [
                                {
                                    "name": p["name"],
                                    "protocol": p["protocol"],
                                    "containerPort": p["port"],
                                }
                                for p in pod["ports"]
                            ],
                        }
                    ],
                },
            }
        )
    docs.extend(case["policies"])
    return docs


def case_from_documents(docs: list[dict[str, Any]]) -> Case:
    """The oracle's input for Kubernetes objects, read by our own loader (namespaces, pods with
    labels, service accounts and named ports; policies passed through untouched)."""
    inputs = load_documents((d, "case") for d in docs)
    for pod in inputs.pods:
        inputs.namespace(pod.namespace)
    return {
        "namespaces": [{"name": n.name, "labels": n.labels} for n in inputs.namespaces.values()],
        "pods": [
            {
                "namespace": pod.namespace,
                "name": pod.name,
                "labels": pod.labels,
                "serviceAccount": pod.service_account,
                "ports": [
                    {"name": cp.name or "", "protocol": cp.protocol, "port": cp.port}
                    for cp in pod.ports
                ],
            }
            for pod in inputs.pods
        ],
        "policies": [m.doc for m in inputs.policies],
    }


def oracle_case(entry: dict[str, Any], fixture: list[dict[str, Any]]) -> Case:
    """The oracle's input for an oracle-cases.yaml entry (`fixture: true` = fixture.yaml pods)."""
    case = entry["case"]
    if case.get("fixture"):
        return case_from_documents(fixture + list(case["policies"]))
    return {k: case[k] for k in ("namespaces", "pods", "policies")}


def probe_of(p: list[Any]) -> dict[str, Any]:
    """A cases.yaml probe [from, to, "PROTO/PORT", verdict(, method, path)] for the oracle."""
    proto, port = str(p[2]).split("/")
    out: dict[str, Any] = {"src": p[0], "dst": p[1], "protocol": proto, "port": int(port)}
    if len(p) > 4:
        out |= {"method": p[4], "path": p[5]}
    return out


@dataclass(frozen=True)
class Answer:
    allowed: bool
    l7_restricted: bool


def ours(
    case: Case, probe_list: list[dict[str, Any]], profile: str = "cilium"
) -> list[Answer] | str:
    """The analyzer's answers under `profile`, or the InputError text when it refuses the input."""
    try:
        analyzer = Analyzer(load_documents((d, "case") for d in manifests(case)), profile)
    except InputError as exc:
        return str(exc)
    out = []
    for pr in probe_list:
        verdict = analyzer.query(
            pr["src"],
            pr["dst"],
            Request(pr["protocol"], pr["port"], pr.get("method"), pr.get("path")),
        )
        out.append(Answer(verdict.allowed, verdict.l7_restricted))
    return out


class Oracle:
    """One long-running oracle process answering case after case (JSON lines)."""

    def __init__(self, binary: Path) -> None:
        self.proc = subprocess.Popen(
            [str(binary)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def ask(self, case: Case, probe_list: list[dict[str, Any]]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        payload = {**case, "probes": probe_list}
        self.proc.stdin.write(json.dumps(payload) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"cilium-oracle exited with {self.proc.wait()}")
        result: dict[str, Any] = json.loads(line)
        return result

    def answers(self, case: Case, probe_list: list[dict[str, Any]]) -> tuple[list[Answer], int]:
        """Answers in probe order, and how many policies the agent would refuse to import."""
        res = self.ask(case, probe_list)
        return [Answer(r["allowed"], r["l7Restricted"]) for r in res["results"]], len(
            res["rejected"]
        )

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def disagreements(
    oracle: Oracle,
    case: Case,
    probe_list: list[dict[str, Any]] | None = None,
    profile: str = "cilium",
) -> list[tuple[dict[str, Any], Answer | str, Answer]]:
    """(probe, ours, oracle's) for each probe where the analyzer and Cilium differ. When the
    analyzer refuses the input (InputError), that is a disagreement only if Cilium imports every
    policy of the case."""
    probe_list = probes(case) if probe_list is None else probe_list
    if not probe_list:
        return []
    theirs, rejected = oracle.answers(case, probe_list)
    mine = ours(case, probe_list, profile)
    if isinstance(mine, str):
        return [] if rejected else [(probe_list[0], mine, theirs[0])]
    out: list[tuple[dict[str, Any], Answer | str, Answer]] = []
    for pr, a, b in zip(probe_list, mine, theirs, strict=True):
        l4 = "method" not in pr
        if a.allowed != b.allowed or (l4 and a.allowed and a.l7_restricted != b.l7_restricted):
            out.append((pr, a, b))
    return out


def valid(oracle: Oracle, case: Case, profile: str = "cilium") -> bool:
    """Both sides accept every object of the case (shrinking must not leave invalid input)."""
    probe_list = probes(case)[:1]
    if not probe_list:
        return False
    _, rejected = oracle.answers(case, probe_list)
    return not rejected and not isinstance(ours(case, probe_list, profile), str)


# --- shrinking -------------------------------------------------------------------------------


def _children(node: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(node, dict):
        yield from ((node, k) for k in list(node))
    elif isinstance(node, list):
        yield from ((node, i) for i in range(len(node)))


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    for parent, key in _children(node):
        yield (*path, key)
        yield from _paths(parent[key], (*path, key))


def _without(case: Case, path: tuple[Any, ...]) -> Case:
    new = copy.deepcopy(case)
    node = new
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return new


_KEEP = {"metadata", "name", "namespace", "kind", "apiVersion", "spec", "src", "dst"}


def _removable(path: tuple[Any, ...]) -> bool:
    if path[0] == "pods":
        # whole pods, single labels, single container ports
        return len(path) == 2 or (len(path) == 4 and path[2] in ("labels", "ports"))
    if path[-1] == "port" and "toPorts" in path:
        return False  # required by the CiliumNetworkPolicy CRD schema
    return path[-1] not in _KEEP


def shrink(case: Case, still_fails: Callable[[Case], bool], budget: int = 400) -> Case:
    """Greedy delta debugging: drop pods, policies, rules, peers, ports and labels while the
    disagreement persists (one removal at a time, restarting after each success)."""
    current = case
    tries = 0
    progress = True
    while progress and tries < budget:
        progress = False
        for path in list(_paths({"policies": current["policies"], "pods": current["pods"]})):
            if tries >= budget:
                break
            if not _removable(path):
                continue
            tries += 1
            candidate = _without(current, path)
            try:
                ok = still_fails(candidate)
            except (KeyError, TypeError, IndexError):
                ok = False
            if ok:
                current = candidate
                progress = True
                break
    return current


def minimal_disagreement(
    oracle: Oracle, case: Case, profile: str = "cilium"
) -> tuple[Case, dict[str, Any]] | None:
    """Shrink `case` around its first disagreeing probe under `profile`; (minimal case, probe)."""
    found = disagreements(oracle, case, profile=profile)
    if not found:
        return None
    probe = found[0][0]

    must_be_valid = valid(oracle, case, profile)

    def still_fails(candidate: Case) -> bool:
        keys = {f"{p['namespace']}/{p['name']}" for p in candidate["pods"]}
        if probe["src"] not in keys or probe["dst"] not in keys:
            return False
        if must_be_valid and not valid(oracle, candidate, profile):
            return False
        return bool(disagreements(oracle, candidate, [probe], profile))

    return shrink(case, still_fails), probe
