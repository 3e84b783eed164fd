"""`python -m cnistack verify`: each committed stack through its real datapath (ADR-013's
verification step, before merge). The homelab runs on K3s's Flannel (VXLAN between two node
namespaces) with kube-router's network-policy controller."""

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
