"""Production's datapath: the real cilium-agent (the production stack's Cilium) with cilium-cni,
VXLAN tunnel between two node namespaces (scripts/datapath_lab.py, docs/datapath-lab.md)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

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
