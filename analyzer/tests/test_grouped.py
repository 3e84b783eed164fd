"""Grouped listings (the default of `list`) and the pictures drawn from them."""

from __future__ import annotations

import csv
import io
import ipaddress
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from factories import conformance_cases, conformance_fixture, generator

from reachability.cli import main
from reachability.engine import Analyzer
from reachability.grouped import build_grouping
from reachability.loader import load_documents


def _pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "labels": labels},
            "spec": {"containers": [{"name": "c"}]}}  # fmt: skip


# Three StatefulSet replicas that differ only in labels no policy tests (pod-name, team), two web
# replicas; the namespace is default-deny for ingress and db accepts TCP/5432 from web.
SHOP = [
    *(
        _pod(
            f"db-{i}",
            {"app": "db", "statefulset.kubernetes.io/pod-name": f"db-{i}", "team": f"t{i}"},
        )
        for i in range(3)
    ),
    _pod("web-a", {"app": "web", "pod-template-hash": "aaa"}),
    _pod("web-b", {"app": "web", "pod-template-hash": "bbb"}),
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny", "namespace": "shop"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    },
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "db", "namespace": "shop"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                    "ports": [{"port": 5432}],
                }
            ],
        },
    },
]


@pytest.fixture
def shop(tmp_path: Path) -> str:
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump_all(SHOP), encoding="utf-8")
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_grouped_txt(shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "list", "--manifests", shop, "--enforcement", "kube-router")
    assert code == 0
    assert out == (
        "# allowed flows under kube-router: 3 groups of endpoints that behave alike, 3 flows "
        "between them (--per-pod: every pod pair)\n"
        "group shop/{app=db} (3 pods): shop/db-0, shop/db-1, shop/db-2\n"
        "group shop/{app=web} (2 pods): shop/web-a, shop/web-b\n"
        "shop/{app=db} -> cidr:0.0.0.0/0  SCTP/all; TCP/all; UDP/all\n"
        "shop/{app=web} -> cidr:0.0.0.0/0  SCTP/all; TCP/all; UDP/all\n"
        "shop/{app=web} -> shop/{app=db}  TCP/5432\n"
    )


def test_grouped_json(shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out = run(capsys, "list", "--manifests", shop, "--enforcement", "kube-router",
                 "--format", "json")  # fmt: skip
    doc = json.loads(out)
    assert doc["grouped"] is True
    assert doc["groups"] == [
        {"name": "cidr:0.0.0.0/0", "cidrs": ["cidr:0.0.0.0/0"]},
        {"name": "shop/{app=db}", "namespace": "shop", "labels": {"app": "db"},
         "pods": ["shop/db-0", "shop/db-1", "shop/db-2"]},
        {"name": "shop/{app=web}", "namespace": "shop", "labels": {"app": "web"},
         "pods": ["shop/web-a", "shop/web-b"]},
    ]  # fmt: skip
    assert doc["flows"][-1] == {
        "from": "shop/{app=web}",
        "to": "shop/{app=db}",
        "protocol": "TCP",
        "ports": [[5432, 5432]],
        "http": None,
    }
    assert len(doc["flows"]) == 7  # two groups x three protocols to the world, one to db


def test_grouped_csv_and_md(shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out = run(capsys, "list", "--manifests", shop, "--enforcement", "kube-router",
                 "--format", "csv")  # fmt: skip
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["record", "from", "to", "protocol", "ports", "http", "members"]
    assert rows[2] == ["group", "shop/{app=db}", "", "", "", "", "shop/db-0 shop/db-1 shop/db-2"]
    assert rows[-1] == ["flow", "shop/{app=web}", "shop/{app=db}", "TCP", "5432", "", ""]
    _, out = run(capsys, "list", "--manifests", shop, "--enforcement", "kube-router",
                 "--format", "md")  # fmt: skip
    assert "| `shop/{app=web}` | shop/web-a, shop/web-b |\n" in out
    assert out.endswith("| `shop/{app=web}` | `shop/{app=db}` | TCP/5432 |\n")


def test_per_pod_flag_lists_pod_pairs(shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out = run(capsys, "list", "--manifests", shop, "--enforcement", "kube-router", "--per-pod")
    into_db = [line for line in out.splitlines() if "-> shop/db-0" in line]
    assert into_db == ["shop/web-a -> shop/db-0  TCP/5432", "shop/web-b -> shop/db-0  TCP/5432"]


def _facts(flows: Iterable[tuple[str, str, object]]) -> dict[tuple[str, str, str], object]:
    """Pod pairs as they are; flows with the outside as (pod, direction, ports) -> the merged
    address intervals, so CIDRs cut or summarised differently compare equal."""
    pods: dict[tuple[str, str, str], object] = {}
    outside: dict[tuple[str, str, object], list[tuple[int, int]]] = {}
    for src, dst, ports in flows:
        if src.startswith("cidr:") or dst.startswith("cidr:"):
            pod, cidr, direction = (
                (dst, src, "in") if src.startswith("cidr:") else (src, dst, "out")
            )
            net = ipaddress.ip_network(cidr.removeprefix("cidr:"))
            lo = int(net.network_address) + (0 if net.version == 4 else 1 << 32)
            outside.setdefault((pod, direction, ports), []).append((lo, lo + net.num_addresses - 1))
        else:
            pods[(src, dst, "pod")] = ports
    for (pod, direction, ports), ivs in outside.items():
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(ivs):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        pods[(pod, direction, repr(ports))] = tuple(merged)
    return pods


def _expand(analyzer: Analyzer) -> dict[tuple[str, str, str], object]:
    grouping = build_grouping(analyzer)
    return _facts(
        (s, d, ports)
        for src, dst, ports in grouping.named_flows()
        for s in src.members
        for d in dst.members
        if s != d
    )


@pytest.mark.parametrize("enforcement", ["kube-router", "cilium"])
def test_groups_expand_to_the_per_pod_listing(enforcement: str) -> None:
    """Every member pair of a group flow is a per-pod flow with the same ports, and back."""
    gen = generator()
    docs = gen.generate(300, 500, 7, 40)
    items = [(d, "gen") for key in ("namespaces", "pods", "policies") for d in docs[key]]
    analyzer = Analyzer(load_documents(items), enforcement)  # type: ignore[arg-type]
    assert len(build_grouping(analyzer).groups) < len(docs["pods"]) // 2
    assert _expand(analyzer) == _facts(analyzer.flows())


def test_conformance_cases_expand_alike() -> None:
    fixture = conformance_fixture()
    cases = conformance_cases()
    for case in cases:
        for enforcement in case["enforcement"]:
            docs = [(d, "fixture") for d in fixture] + [(p, case["id"]) for p in case["policies"]]
            analyzer = Analyzer(load_documents(docs), enforcement)
            assert _expand(analyzer) == _facts(analyzer.flows()), case["id"]
