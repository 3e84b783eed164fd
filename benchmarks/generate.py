"""Synthetic, realistic clusters for benchmarking `connectivity list` (deterministic from a seed).

    python benchmarks/generate.py --pods 1000 --policies 2000 --seed 1 --out /tmp/c1000

writes `namespaces.yaml`, `pods.yaml` and `policies.yaml` (multi-document YAML, standard
`networking.k8s.io/v1` NetworkPolicy only, so network-config-analyzer reads the same input).

Shape: ceil(pods / pods-per-ns) application namespaces plus `kube-system` (CoreDNS) and `monitoring`
(Prometheus). Each application namespace runs a handful of apps drawn from a small vocabulary
(web, api, postgres, redis, worker, ...) as Deployment-like replicas (shared labels) or
StatefulSet-like pods (with the per-pod `statefulset.kubernetes.io/pod-name` label). Pods carry
`app`/`tier`/`team` labels, named container ports and `status.podIP` (10.42.0.0/16, then
10.43.0.0/16 and on past 64,000 pods).

Policies: most namespaces are default-deny for ingress (podSelector {} + policyTypes), many for
egress too (then with a DNS allow to kube-system); Prometheus may scrape the named `metrics` port;
the remaining budget is spent on allow policies: same-namespace and cross-namespace pod peers
(`matchLabels` and `matchExpressions`, namespaceSelector by name or by team), numbered, named and
`endPort` ports, and ipBlock peers with `except` (all outside the pod CIDR). Most pod pairs end up
denied; a few percent are allowed.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path
from typing import Any

import yaml

from reachability.k8s_names import NAMESPACE_NAME_LABEL

TEAMS = ("payments", "search", "identity", "catalog", "platform", "data")
ENVS = ("prod", "staging")
# app -> (tier, container ports as (name, protocol, number)), statefulset?
APPS: dict[str, tuple[str, tuple[tuple[str, str, int], ...], bool]] = {
    "web": ("frontend", (("http", "TCP", 8080), ("metrics", "TCP", 9090)), False),
    "ui": ("frontend", (("http", "TCP", 3000), ("metrics", "TCP", 9090)), False),
    "api": (
        "backend",
        (("http", "TCP", 8080), ("grpc", "TCP", 9000), ("metrics", "TCP", 9090)),
        False,
    ),
    "auth": ("backend", (("grpc", "TCP", 9000), ("metrics", "TCP", 9091)), False),
    "orders": ("backend", (("http", "TCP", 8081), ("metrics", "TCP", 9090)), False),
    "search": ("backend", (("http", "TCP", 9200), ("transport", "TCP", 9300)), False),
    "postgres": ("db", (("postgres", "TCP", 5432), ("metrics", "TCP", 9187)), True),
    "mysql": ("db", (("mysql", "TCP", 3306), ("metrics", "TCP", 9104)), True),
    "redis": ("cache", (("redis", "TCP", 6379), ("metrics", "TCP", 9121)), True),
    "memcached": ("cache", (("memcache", "TCP", 11211), ("memcache-udp", "UDP", 11211)), False),
    "worker": ("worker", (("metrics", "TCP", 9090),), False),
    "cron": ("worker", (), False),
}
APP_NAMES = tuple(APPS)
TIERS = ("frontend", "backend", "db", "cache", "worker")
# Callers a tier typically accepts (same namespace).
CALLERS = {
    "frontend": ("frontend",),
    "backend": ("frontend", "backend", "worker"),
    "db": ("backend", "worker"),
    "cache": ("backend", "frontend"),
    "worker": ("backend",),
}
PRIVATE_EXCEPT = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


class Cluster:
    def __init__(self, pods: int, policies: int, pods_per_ns: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.target_pods = pods
        self.target_policies = policies
        self.pods_per_ns = pods_per_ns
        self.namespaces: list[dict[str, Any]] = []
        self.pods: list[dict[str, Any]] = []
        self.policies: list[dict[str, Any]] = []
        # ns -> app -> ports
        self.apps: dict[str, dict[str, tuple[tuple[str, str, int], ...]]] = {}
        self.ns_team: dict[str, str] = {}
        self._ip = 0

    # --- objects -------------------------------------------------------------------------------

    def _namespace(self, name: str, team: str, env: str) -> None:
        self.ns_team[name] = team
        self.apps[name] = {}
        self.namespaces.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "labels": {NAMESPACE_NAME_LABEL: name, "team": team, "env": env},
                },
            }
        )

    def _next_ip(self) -> str:
        self._ip += 1
        n = self._ip
        block = n // 250  # 64,000 pods per /16: 10.42.0.0/16 first, then 10.43, 10.44, ...
        return f"10.{42 + block // 256}.{block % 256}.{n % 250 + 1}"

    def _pod(self, ns: str, name: str, labels: dict[str, str], ports: Any) -> None:
        container: dict[str, Any] = {"name": "main", "image": "registry.example/app:1"}
        if ports:
            container["ports"] = [
                {"name": n, "protocol": proto, "containerPort": num} for n, proto, num in ports
            ]
        self.pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "spec": {"containers": [container]},
                "status": {"podIP": self._next_ip()},
            }
        )

    def build(self) -> Cluster:
        rng = self.rng
        self._namespace("kube-system", "platform", "prod")
        dns_ports = (("dns", "UDP", 53), ("dns-tcp", "TCP", 53), ("metrics", "TCP", 9153))
        for i in range(2):
            self._pod(
                "kube-system",
                f"coredns-{i}",
                {"k8s-app": "kube-dns", "team": "platform"},
                dns_ports,
            )
        self._namespace("monitoring", "platform", "prod")
        self._pod(
            "monitoring",
            "prometheus-0",
            {"app": "prometheus", "tier": "worker", "team": "platform"},
            (("web", "TCP", 9090),),
        )
        n_ns = max(1, math.ceil(self.target_pods / self.pods_per_ns))
        app_ns: list[str] = []
        for i in range(n_ns):
            ns = f"ns-{i:04d}"
            self._namespace(ns, rng.choice(TEAMS), rng.choice(ENVS))
            app_ns.append(ns)
        # Spread the pods: every namespace gets pods_per_ns (the last one the remainder).
        remaining = self.target_pods
        for ns in app_ns:
            count = min(self.pods_per_ns, remaining)
            remaining -= count
            napps = max(1, min(len(APP_NAMES), rng.randint(4, 8), count))
            chosen = rng.sample(APP_NAMES, napps)
            # Replicas: at least one pod per app, the rest spread at random.
            replicas = dict.fromkeys(chosen, 1)
            for _ in range(count - napps):
                replicas[rng.choice(chosen)] += 1
            team = self.ns_team[ns]
            for app in chosen:
                tier, ports, stateful = APPS[app]
                template_hash = f"{rng.getrandbits(32):08x}"[:8]
                self.apps[ns][app] = ports
                for r in range(replicas[app]):
                    labels = {"app": app, "tier": tier, "team": team}
                    if stateful:
                        name = f"{app}-{r}"
                        labels["statefulset.kubernetes.io/pod-name"] = name
                    else:
                        name = f"{app}-{template_hash}-{r}"
                    self._pod(ns, name, labels, ports)
        self.app_ns = app_ns
        self._policies()
        return self

    # --- policies ------------------------------------------------------------------------------

    def _np(self, ns: str, name: str, spec: dict[str, Any]) -> None:
        self.policies.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": name, "namespace": ns},
                "spec": spec,
            }
        )

    def _ports(self, target_ports: Any) -> list[dict[str, Any]] | None:
        """A `ports` list towards an app: named, numbered or a small endPort range."""
        rng = self.rng
        if not target_ports:
            return [{"protocol": "TCP", "port": 8080}]
        name, proto, num = rng.choice(target_ports)
        roll = rng.random()
        if roll < 0.5:
            spec: dict[str, Any] = {"port": name}
        elif roll < 0.85:
            spec = {"port": num}
        else:
            spec = {"port": num, "endPort": num + rng.choice((1, 10, 100))}
        if proto != "TCP" or rng.random() < 0.3:
            spec["protocol"] = proto
        out = [spec]
        if rng.random() < 0.15:
            extra = rng.choice(target_ports)
            out.append({"port": extra[2], "protocol": extra[1]})
        return out

    def _pod_selector(self, app: str) -> dict[str, Any]:
        if self.rng.random() < 0.7:
            return {"matchLabels": {"app": app}}
        return {"matchExpressions": [{"key": "app", "operator": "In", "values": [app]}]}

    def _policies(self) -> None:
        rng = self.rng
        budget = self.target_policies
        # Per-namespace baseline (at most a third of the budget so the allows get the rest).
        baseline: list[tuple[str, str, dict[str, Any]]] = [
            (
                "kube-system",
                "default-deny-ingress",
                {"podSelector": {}, "policyTypes": ["Ingress"]},
            ),
            (
                "kube-system",
                "allow-dns-from-cluster",
                {
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [{"namespaceSelector": {}}],
                            "ports": [
                                {"protocol": "UDP", "port": "dns"},
                                {"protocol": "TCP", "port": "dns-tcp"},
                            ],
                        }
                    ],
                },
            ),
            ("monitoring", "default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]}),
        ]
        for ns in self.app_ns:
            deny_in = rng.random() < 0.92
            deny_out = rng.random() < 0.6
            if deny_in and deny_out:
                baseline.append(
                    (
                        ns,
                        "default-deny-all",
                        {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
                    )
                )
            elif deny_in:
                baseline.append(
                    (ns, "default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
                )
            elif deny_out:
                baseline.append(
                    (ns, "default-deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]})
                )
            if deny_out:
                baseline.append(
                    (
                        ns,
                        "allow-dns",
                        {
                            "podSelector": {},
                            "policyTypes": ["Egress"],
                            "egress": [
                                {
                                    "to": [
                                        {
                                            "namespaceSelector": {
                                                "matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}
                                            },
                                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                                        }
                                    ],
                                    "ports": [
                                        {"protocol": "UDP", "port": 53},
                                        {"protocol": "TCP", "port": 53},
                                    ],
                                }
                            ],
                        },
                    )
                )
            if deny_in and rng.random() < 0.5:
                baseline.append(
                    (
                        ns,
                        "allow-prometheus",
                        {
                            "podSelector": {
                                "matchExpressions": [
                                    {"key": "tier", "operator": "NotIn", "values": ["db"]}
                                ]
                            },
                            "ingress": [
                                {
                                    "from": [
                                        {
                                            "namespaceSelector": {
                                                "matchLabels": {NAMESPACE_NAME_LABEL: "monitoring"}
                                            },
                                            "podSelector": {"matchLabels": {"app": "prometheus"}},
                                        }
                                    ],
                                    "ports": [{"port": "metrics"}],
                                }
                            ],
                        },
                    )
                )
        baseline = baseline[: max(0, budget // 3)] if len(baseline) > budget // 3 else baseline
        for ns, name, spec in baseline:
            self._np(ns, name, spec)
        i = 0
        while len(self.policies) < budget:
            ns = self.app_ns[rng.randrange(len(self.app_ns))]
            apps = self.apps[ns]
            if not apps:
                continue
            app = rng.choice(sorted(apps))
            self._allow(ns, app, f"allow-{app}-{i:05d}")
            i += 1

    def _allow(self, ns: str, app: str, name: str) -> None:
        rng = self.rng
        tier = APPS[app][0]
        ports = self.apps[ns][app]
        roll = rng.random()
        spec: dict[str, Any] = {"podSelector": self._pod_selector(app)}
        if roll < 0.30:
            # Same-namespace callers by tier (matchExpressions).
            callers = list(CALLERS[tier])
            peer = {
                "podSelector": {
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": callers}]
                }
            }
            spec["ingress"] = [{"from": [peer], "ports": self._ports(ports)}]
        elif roll < 0.45:
            # A specific same-namespace caller app.
            other = rng.choice(sorted(self.apps[ns]))
            spec["ingress"] = [
                {"from": [{"podSelector": self._pod_selector(other)}], "ports": self._ports(ports)}
            ]
        elif roll < 0.58:
            # A caller app in one other namespace (namespace picked by name).
            src_ns = rng.choice(self.app_ns)
            src_app = rng.choice(sorted(self.apps[src_ns]))
            peer = {
                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: src_ns}},
                "podSelector": {"matchLabels": {"app": src_app}},
            }
            spec["ingress"] = [{"from": [peer], "ports": self._ports(ports)}]
        elif roll < 0.64:
            # Frontends of the same team's prod namespaces (namespace label selector).
            peer = {
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "team", "operator": "In", "values": [self.ns_team[ns]]},
                        {"key": "env", "operator": "In", "values": ["prod"]},
                    ]
                },
                "podSelector": {"matchLabels": {"app": rng.choice(("web", "ui"))}},
            }
            spec["ingress"] = [{"from": [peer], "ports": self._ports(ports)}]
        elif roll < 0.67:
            # Load balancer range, with a carved-out subnet.
            third = rng.randrange(256)
            peer = {
                "ipBlock": {"cidr": f"172.20.{third}.0/24", "except": [f"172.20.{third}.128/26"]}
            }
            spec["ingress"] = [{"from": [peer], "ports": self._ports(ports)}]
        elif roll < 0.84:
            # Egress to another app in the namespace.
            other = rng.choice(sorted(self.apps[ns]))
            spec["policyTypes"] = ["Egress"]
            spec["egress"] = [
                {
                    "to": [{"podSelector": self._pod_selector(other)}],
                    "ports": self._ports(self.apps[ns][other]),
                }
            ]
        elif roll < 0.91:
            # Egress to an app in another namespace.
            dst_ns = rng.choice(self.app_ns)
            other = rng.choice(sorted(self.apps[dst_ns]))
            peer = {
                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: dst_ns}},
                "podSelector": self._pod_selector(other),
            }
            spec["policyTypes"] = ["Egress"]
            spec["egress"] = [{"to": [peer], "ports": self._ports(self.apps[dst_ns][other])}]
        elif roll < 0.96:
            # Egress to the internet (not private ranges), HTTPS.
            spec["policyTypes"] = ["Egress"]
            spec["egress"] = [
                {
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_EXCEPT}}],
                    "ports": [{"protocol": "TCP", "port": 443}],
                }
            ]
        elif roll < 0.98:
            # Egress to a partner network, a port range.
            third = rng.randrange(1, 255)
            spec["policyTypes"] = ["Egress"]
            spec["egress"] = [
                {
                    "to": [
                        {
                            "ipBlock": {
                                "cidr": f"192.168.{third}.0/24",
                                "except": [f"192.168.{third}.128/25"],
                            }
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8100}],
                }
            ]
        else:
            # Both directions in one policy.
            other = rng.choice(sorted(self.apps[ns]))
            spec["policyTypes"] = ["Ingress", "Egress"]
            spec["ingress"] = [
                {"from": [{"podSelector": self._pod_selector(other)}], "ports": self._ports(ports)}
            ]
            spec["egress"] = [
                {
                    "to": [{"podSelector": self._pod_selector(other)}],
                    "ports": self._ports(self.apps[ns][other]),
                }
            ]
        if "policyTypes" not in spec and rng.random() < 0.8:
            spec["policyTypes"] = ["Ingress"]  # the rest rely on the inferred default
        self._np(ns, name, spec)


def generate(
    pods: int, policies: int, seed: int = 1, pods_per_ns: int = 50
) -> dict[str, list[dict[str, Any]]]:
    """The cluster as {file stem: documents}."""
    cluster = Cluster(pods, policies, pods_per_ns, seed).build()
    return {"namespaces": cluster.namespaces, "pods": cluster.pods, "policies": cluster.policies}


def write(docs: dict[str, list[dict[str, Any]]], out: Path, fmt: str = "yaml") -> None:
    """`yaml`: multi-document files; `json`: one `List` per file, as `kubectl get -o json`."""
    out.mkdir(parents=True, exist_ok=True)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    for stem, items in docs.items():
        if fmt == "json":
            with (out / f"{stem}.json").open("w", encoding="utf-8") as fh:
                json.dump({"apiVersion": "v1", "kind": "List", "items": items}, fh)
            continue
        with (out / f"{stem}.yaml").open("w", encoding="utf-8") as fh:
            yaml.dump_all(items, fh, Dumper=dumper, sort_keys=False, default_flow_style=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pods", type=int, required=True)
    parser.add_argument("--policies", type=int, required=True)
    parser.add_argument("--pods-per-ns", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--format", choices=("yaml", "json"), default="yaml")
    args = parser.parse_args(argv)
    docs = generate(args.pods, args.policies, args.seed, args.pods_per_ns)
    write(docs, args.out, args.format)
    print(
        f"{args.out}: {len(docs['namespaces'])} namespaces, {len(docs['pods'])} pods, "
        f"{len(docs['policies'])} policies"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
