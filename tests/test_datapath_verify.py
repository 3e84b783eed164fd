"""`python -m cnistack verify`: each committed stack through its real datapath (ADR-013's
verification step, before merge). The homelab runs on K3s's Flannel (VXLAN between two node
namespaces) with kube-router's network-policy controller; production on the real cilium-agent
(the production stack's Cilium, VXLAN tunnel between the two node namespaces)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from cnistack.cli.verify_command import run_verify
from tests.datapath import require_lab

pytestmark = [pytest.mark.engine, pytest.mark.datapath]


def test_verify_homelab() -> None:
    require_lab()
    with tempfile.TemporaryDirectory(prefix="cnistack-verify-") as tmp:
        status, lines = run_verify("homelab", Path(tmp))
    text = "\n".join(lines)
    assert status == 0, text
    assert lines[0].startswith("# verify homelab: kube-router on 2 nodes, 7 pods, ")
    rows = {tuple(line.split()[:2]): line.split(maxsplit=2)[2] for line in lines[3:]}
    # ADR-013's flows, seen by packets: the frontend reaches the API server on 8080 only ...
    assert rows[("ai-apps/frontend", "ai-apps/api-server")].split() == [
        "TCP/8080",
        "TCP/8080",
        "ok",
    ]
    # ... and DNS on CoreDNS over both protocols; the frontend never reaches vLLM.
    assert rows[("ai-apps/frontend", "kube-system/coredns")].split() == [
        "TCP/53;",
        "UDP/53",
        "TCP/53;",
        "UDP/53",
        "ok",
    ]
    assert rows[("ai-apps/frontend", "ai-inference/vllm")].split() == ["denied", "denied", "ok"]


EVERY_PORT = ["TCP/9,5353,5432,8000-8001,8080;", "UDP/9,5353,5432,8000-8001,8080"]


def test_verify_production() -> None:
    require_lab("cilium")
    with tempfile.TemporaryDirectory(prefix="cnistack-verify-") as tmp:
        status, lines = run_verify("production", Path(tmp))
    text = "\n".join(lines)
    assert status == 0, text
    assert lines[0] == (
        "# verify production: cilium on 2 nodes, 7 pods, 672 probes "
        "(TCP, UDP; SCTP: not in this kernel)"
    )
    rows = {tuple(line.split()[:2]): line.split(maxsplit=2)[2] for line in lines[3:]}
    # ADR-013's flows under Cilium: DNS on openshift-dns's 5353 only; the frontend never
    # reaches vLLM.
    assert rows[("ai-apps/frontend", "openshift-dns/dns-default")].split() == [
        *("TCP/5353;", "UDP/5353") * 2,
        "ok",
    ]
    assert rows[("ai-apps/frontend", "ai-inference/vllm")].split() == ["denied", "denied", "ok"]
    # The router (host-network, OpenShift on bare metal) from the other node: the `remote-node`
    # entity, admitted on the flow's port only.
    router = "openshift-ingress/host-network"
    assert rows[(router, "ai-inference/open-webui")].split() == ["TCP/8080", "TCP/8080", "ok"]
    assert rows[(router, "storage/postgresql")].split() == ["denied", "denied", "ok"]
    # What the packets found first: on its own node (the lab places pods round robin, the router
    # with the frontend and vLLM) the router reaches every port, because Cilium allows the
    # local host into every endpoint under Kubernetes (allow-localhost=auto is `always`,
    # daemon/cmd/daemon.go). The model says so too now (profile `local_host_reaches_node_pods`).
    assert rows[(router, "ai-apps/frontend")].split() == [*EVERY_PORT, *EVERY_PORT, "ok"]
    assert rows[(router, "ai-inference/vllm")].split() == [*EVERY_PORT, *EVERY_PORT, "ok"]
