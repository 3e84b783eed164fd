"""Real packets through K3s's datapath: Flannel (VXLAN between two node namespaces) and
kube-router's network-policy controller, in network namespaces the lab creates
(scripts/datapath_lab.py, docs/datapath-lab.md).

The expectations below are the NetworkPolicy semantics written out by hand (Kubernetes API
reference, networking.k8s.io/v1 NetworkPolicy), not the analyzer's answers; a second test
checks that the analyzer agrees with the packets on the same objects.
"""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cnistack import datapath_check
from tests.datapath import host_state, lab_module, require_lab

pytestmark = [pytest.mark.engine, pytest.mark.datapath]


def _pod(
    ns: str, name: str, labels: dict[str, str], ports: list[tuple[str, int]] = ()
) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"namespace": ns, "name": name, "labels": labels},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports],
                }
            ]
        },
    }


NAMESPACES = [
    {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"team": "shop"}},
    },
    {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "ops", "labels": {"team": "ops"}},
    },
]
# Placement is round robin in this order: web -> node0, db -> node1, admin -> node0.
PODS = [
    _pod("shop", "web", {"app": "web"}),
    _pod("shop", "db", {"app": "db"}, [("pg", 5432)]),
    _pod("ops", "admin", {"app": "admin"}),
]
# db: ingress only from web, on its named port `pg` (5432/TCP). admin: no egress except DNS-less
# TCP 5432 to shop's pods (egress policy).
POLICIES = [
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"namespace": "shop", "name": "db-from-web"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                         "ports": [{"port": "pg"}]}],
        },
    },
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"namespace": "ops", "name": "admin-egress"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "admin"}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"team": "shop"}}}],
                        "ports": [{"protocol": "TCP", "port": 5432}]}],
        },
    },
]  # fmt: skip
PORTS = {"TCP": [80, 5432, 5433], "UDP": [80, 5432, 5433]}


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    require_lab()
    with tempfile.TemporaryDirectory(prefix="cnistack-lab-") as tmp:
        try:
            lab = lab_module.Lab.start(Path(tmp), "kube-router", 2)
            lab.apply(NAMESPACES + PODS + POLICIES, PORTS, ("203.0.113.10",))
            lab.wait_converged()
            yield lab
        finally:
            lab_module.stop(Path(tmp))


def test_pods_are_wired_by_flannel_on_two_nodes(lab: Any) -> None:
    pods = lab.state.pods
    assert [pods[k].node for k in ("shop/web", "shop/db", "ops/admin")] == [
        "node0",
        "node1",
        "node0",
    ]
    # host-local gives each pod an address in its node's Flannel subnet (10.42.N.0/24).
    assert pods["shop/web"].ip.startswith("10.42.0.")
    assert pods["shop/db"].ip.startswith("10.42.1.")
    pod = lab.api.get("/api/v1/namespaces/shop/pods/db")
    assert pod["status"]["podIP"] == pods["shop/db"].ip
    assert pod["status"]["hostIP"] == "172.30.0.12"


def test_packets_follow_the_policies(lab: Any) -> None:
    flows = [
        ("shop/web", "shop/db", "TCP", 5432),  # allowed: web, named port pg (cross-node)
        ("shop/web", "shop/db", "TCP", 5433),  # denied: not the port
        ("shop/web", "shop/db", "UDP", 5432),  # denied: pg is TCP
        ("ops/admin", "shop/db", "TCP", 5432),  # denied: db's ingress (admin is not web)
        ("ops/admin", "shop/web", "TCP", 5432),  # allowed: egress to shop on 5432, web open
        ("ops/admin", "shop/web", "TCP", 80),  # denied: admin's egress is 5432 only
        ("shop/db", "shop/web", "TCP", 80),  # allowed: nothing restricts db's egress
        ("shop/web", "203.0.113.10", "UDP", 5432),  # allowed: web's egress is open
        ("ops/admin", "203.0.113.10", "TCP", 5432),  # denied: not a shop pod
        ("203.0.113.10", "shop/web", "TCP", 80),  # allowed: web's ingress is open
        ("203.0.113.10", "shop/db", "TCP", 5432),  # denied: only web may reach db
    ]
    assert lab.probe(flows) == [
        True,
        False,
        False,
        False,
        True,
        False,
        True,
        True,
        False,
        True,
        False,
    ]


def test_the_analyzer_agrees_with_the_packets(lab: Any) -> None:
    ips = {k: r.ip for k, r in lab.state.pods.items()}
    documents = NAMESPACES + PODS + POLICIES
    analyzer = datapath_check.analyzer_for(
        datapath_check.as_placed(documents, ips, lab.nodes()), "kube-router"
    )
    probes = datapath_check.flows(ips, ["203.0.113.10"], [80, 5432, 5433])
    packets = lab.probe([(f.src, f.dst, f.protocol, f.port) for f in probes])
    model = datapath_check.model_verdicts(analyzer, probes)
    diffs = [(f, m, p) for f, m, p in zip(probes, model, packets, strict=True) if m != p]
    assert diffs == []
    # Not vacuous. Allowed, of 6 (protocol, port) per pair: web->db 1 (TCP/5432), admin->web 1,
    # admin->db 0, admin->world 0, world->db 0, the 7 other pairs 6 each.
    assert (len(packets), sum(packets)) == (72, 44)


def test_a_stalled_enforcer_is_a_named_timeout_not_a_silent_deny(lab: Any) -> None:
    pid = lab.state.pids["kube-router-node1"]
    os.kill(pid, signal.SIGSTOP)
    try:
        lab.apply([{
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"namespace": "shop", "name": "web-closed"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": []},
        }], PORTS)  # fmt: skip
        with pytest.raises(lab_module.LabError) as caught:
            lab.wait_converged(timeout=3.0)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert str(caught.value) == (
        "kube-router-node1 did not converge: 1 object(s) not seen, e.g. "
        "['Received update for network policy: shop/web-closed']"
    )
    lab.wait_converged()
    # web (node0) now refuses everyone, across nodes too.
    flows = [("shop/db", "shop/web", "TCP", 80), ("203.0.113.10", "shop/web", "TCP", 80)]
    assert lab.probe(flows) == [False, False]
    lab.delete("NetworkPolicy", "shop", "web-closed")
    lab.wait_converged()
    assert lab.probe(flows) == [True, True]


def test_stop_leaves_nothing_behind() -> None:
    require_lab()
    before = host_state()
    with tempfile.TemporaryDirectory(prefix="cnistack-lab-") as tmp:
        workdir = Path(tmp)
        try:
            lab = lab_module.Lab.start(workdir, "kube-router", 2)
            lab.apply(NAMESPACES + PODS[:2] + POLICIES[:1], PORTS, ("203.0.113.10",))
            lab.wait_converged()
            pids = list(lab.state.pids.values())
            made = list(lab.state.netns)
        finally:
            lab_module.stop(workdir)
        assert lab_module.leftovers(workdir) == []
    assert len(made) == 6  # underlay, world, 2 nodes, 2 pods
    assert [p for p in pids if lab_module._alive(p)] == []
    assert host_state() == before
