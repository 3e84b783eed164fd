"""The synthetic cluster generator of benchmarks/ (fast: shape and determinism only, no timing)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from reachability.engine import Analyzer
from reachability.loader import load_paths

GENERATOR = Path(__file__).resolve().parent.parent / "benchmarks" / "generate.py"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_generate", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_generate"] = module
    spec.loader.exec_module(module)
    return module


def test_deterministic_from_seed(gen: ModuleType) -> None:
    assert gen.generate(120, 240, seed=7) == gen.generate(120, 240, seed=7)
    assert gen.generate(120, 240, seed=7) != gen.generate(120, 240, seed=8)


def test_shape(gen: ModuleType) -> None:
    docs = gen.generate(200, 400, seed=1, pods_per_ns=50)
    pods, policies, namespaces = docs["pods"], docs["policies"], docs["namespaces"]
    # 200 application pods in 4 namespaces, plus CoreDNS x2 and Prometheus.
    assert len(pods) == 203
    assert len(namespaces) == 4 + 2
    assert len(policies) == 400
    assert all(p["apiVersion"] == "networking.k8s.io/v1" for p in policies)
    assert all(p["kind"] == "NetworkPolicy" for p in policies)
    keys = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods + policies]
    assert len(set(keys)) == len(keys)
    for ns in namespaces:
        labels = ns["metadata"]["labels"]
        assert labels["kubernetes.io/metadata.name"] == ns["metadata"]["name"]
        assert "team" in labels
    ips = [p["status"]["podIP"] for p in pods]
    assert len(set(ips)) == len(ips)
    assert all(ip.startswith("10.42.") for ip in ips)
    app_pods = [p for p in pods if p["metadata"]["namespace"].startswith("ns-")]
    assert all({"app", "tier", "team"} <= set(p["metadata"]["labels"]) for p in app_pods)
    assert any(
        port.get("name")
        for p in pods
        for c in p["spec"]["containers"]
        for port in c.get("ports", [])
    )
    text = repr(policies)
    # The features the benchmark is meant to exercise are all present.
    for needle in (
        "'podSelector': {}",
        "matchExpressions",
        "namespaceSelector",
        "endPort",
        "'except'",
        "ipBlock",
        "'Egress'",
    ):
        assert needle in text, needle
    assert any(
        isinstance(port.get("port"), str)
        for p in policies
        for rule in p["spec"].get("ingress", []) + p["spec"].get("egress", [])
        for port in rule.get("ports", [])
    )


def test_most_pairs_denied(gen: ModuleType, tmp_path: Path) -> None:
    gen.write(gen.generate(200, 400, seed=1), tmp_path)
    assert sorted(f.name for f in tmp_path.iterdir()) == [
        "namespaces.yaml",
        "pods.yaml",
        "policies.yaml",
    ]
    analyzer = Analyzer(load_paths([tmp_path]), "kube-router")
    pods = {p.key for p in analyzer.inputs.pods}
    pairs = {(s, d) for s, d, _ in analyzer.flows() if s in pods and d in pods}
    fraction = len(pairs) / (len(pods) * (len(pods) - 1))
    assert 0.001 < fraction < 0.25
