"""Production's datapath: the real cilium-agent (the production stack's Cilium) with cilium-cni,
VXLAN tunnel between two node namespaces (scripts/datapath_lab.py, docs/datapath-lab.md)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from cnistack import datapath_check
from tests.datapath import host_state, lab_module, require_lab

pytestmark = [pytest.mark.engine, pytest.mark.datapath]


def test_cilium_packets_and_stop_leave_nothing_behind() -> None:
    """The hand-written NetworkPolicy case of tests/test_datapath_lab.py through cilium-agent:
    the same packets pass and drop; then stop leaves no namespace, process, BPF program or pin."""
    from tests.test_datapath_lab import NAMESPACES, PODS, POLICIES, PORTS

    require_lab("cilium")
    before = host_state()
    with tempfile.TemporaryDirectory(prefix="cnistack-lab-") as tmp:
        workdir = Path(tmp)
        try:
            lab = lab_module.Lab.start(workdir, "cilium", 2)
            lab.apply(NAMESPACES + PODS + POLICIES, PORTS, ("203.0.113.10",))
            lab.wait_converged()
            flows = [
                ("shop/web", "shop/db", "TCP", 5432),  # allowed: web, named port pg (cross-node)
                ("shop/web", "shop/db", "TCP", 5433),  # denied: not the port
                ("ops/admin", "shop/db", "TCP", 5432),  # denied: db's ingress
                ("ops/admin", "shop/web", "TCP", 5432),  # allowed: admin's egress to shop
                ("ops/admin", "shop/web", "TCP", 80),  # denied: admin's egress is 5432 only
                ("ops/admin", "203.0.113.10", "TCP", 5432),  # denied: not a shop pod
                ("203.0.113.10", "shop/web", "TCP", 80),  # allowed: web's ingress is open
                ("203.0.113.10", "shop/db", "TCP", 5432),  # denied: only web may reach db
            ]
            assert lab.probe(flows) == [True, False, False, True, False, False, True, False]
            pids = list(lab.state.pids.values())
        finally:
            lab_module.stop(workdir)
        assert lab_module.leftovers(workdir) == []
    assert [p for p in pids if lab_module._alive(p)] == []
    assert host_state() == before


def _cnp(name: str, app: str, ingress: list[Any], deny: list[Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"endpointSelector": {"matchLabels": {"app": app}}, "ingress": ingress}
    if deny is not None:
        spec["ingressDeny"] = deny
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"namespace": "edge", "name": name},
        "spec": spec,
    }


def _tcp(port: int) -> list[dict[str, Any]]:
    return [{"ports": [{"port": str(port), "protocol": "TCP"}]}]


CLUSTER_8080 = [{"fromEntities": ["cluster"], "toPorts": _tcp(8080)}]
# Placement is round robin in this order: router (host network) -> node0, api -> node1,
# web -> node0, client -> node1, db -> node0.
HOST_PODS = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "edge"}},
    {"apiVersion": "v1", "kind": "Pod",
     "metadata": {"namespace": "edge", "name": "router", "labels": {"app": "router"}},
     "spec": {"hostNetwork": True, "containers": [{"name": "main"}]}},
] + [
    {"apiVersion": "v1", "kind": "Pod",
     "metadata": {"namespace": "edge", "name": app, "labels": {"app": app}},
     "spec": {"containers": [{"name": "main"}]}}
    for app in ("api", "web", "client", "db")
]  # fmt: skip
HOST_POLICIES = [
    # web: the cluster on 8080; the `host` entity denied on 9090 only.
    _cnp("web-in", "web", CLUSTER_8080, [{"fromEntities": ["host"], "toPorts": _tcp(9090)}]),
    # db: the cluster on 8080; the `host` entity denied on every port.
    _cnp("db-in", "db", CLUSTER_8080, [{"fromEntities": ["host"]}]),
    # api (on the other node): the cluster on 8080; nothing about `host`.
    _cnp("api-in", "api", CLUSTER_8080),
]


def test_a_deny_on_the_host_entity_beats_the_local_host_allow() -> None:
    """Cilium allows its own node (`host`) into every local endpoint on every port
    (allow-localhost, pkg/policy/mapstate.go determineAllowLocalhostIngress). Cilium 1.19 inserts
    that allow as an ordinary priority-0 allow (insertWithChanges with newAllowEntryWithLabels):
    a deny of `host` on every port covers its key with a higher precedence (the deny byte, 0xff,
    pkg/policy/types/entry.go), so the allow is not inserted; a deny on one port is a narrower
    key that stays beside it, and the datapath's longest match picks it. Expectations written
    from that code, not from the analyzer; then the analyzer is compared on every flow."""
    require_lab("cilium")
    with tempfile.TemporaryDirectory(prefix="cnistack-lab-") as tmp:
        workdir = Path(tmp)
        try:
            lab = lab_module.Lab.start(workdir, "cilium", 2)
            # Every pod pair and the world, TCP and UDP, on 8080, 9090 and 9 (the port no object
            # names: datapath_check.probe_ports), each compared with the analyzer.
            outcome = datapath_check.differential(
                lab,
                HOST_PODS + HOST_POLICIES,
                "cilium",
                lab_module.CLUSTER_CIDR,
                lab_module.CONFIRM_TIMEOUT_S,
            )
            assert lab.nodes()["edge/router"] == lab.nodes()["edge/web"] == "node0"
            assert lab.nodes()["edge/db"] == "node0" and lab.nodes()["edge/api"] == "node1"
            flows = [
                ("edge/router", "edge/web", "TCP", 8080),  # allowed
                ("edge/router", "edge/web", "TCP", 9090),  # denied: host denied on 9090
                ("edge/router", "edge/web", "TCP", 9),  # allowed: local host, every port
                ("edge/router", "edge/web", "UDP", 9090),  # allowed: the deny is TCP only
                ("edge/router", "edge/db", "TCP", 8080),  # denied: host denied on every port
                ("edge/router", "edge/db", "TCP", 9),  # denied
                ("edge/router", "edge/api", "TCP", 8080),  # allowed: remote-node is in cluster
                ("edge/router", "edge/api", "TCP", 9),  # denied: not the local host there
                ("edge/client", "edge/web", "TCP", 9090),  # denied: cluster on 8080 only
                ("edge/client", "edge/db", "TCP", 8080),  # allowed: the deny names host only
            ]
            assert lab.probe(flows) == [True, False, True, True, False, False, True, False,
                                        False, True]  # fmt: skip
            assert outcome.disagreements == []
        finally:
            lab_module.stop(workdir)
