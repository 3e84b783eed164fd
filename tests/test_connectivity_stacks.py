"""`python -m cnistack connectivity` with the program's own stacks as sources (`--stack NAME`,
`stack:NAME`): the analyzer's command line (analyzer/, `reachability.cli`) fed by
cnistack/stack_documents.py. Tests of the analyzer alone live in analyzer/tests/."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cnistack.cli.connectivity_command import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_l7_forwarded_request_the_policy_refuses_is_a_gap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Against the production stack (Cilium L7 on frontend -> api-server): the L7 record of a
    request the HTTP rules do not allow, forwarded anyway, is an enforcement gap; an allowed one
    is consistent. Pods are matched to the stack's representative pods by their labels."""
    flows = tmp_path / "l7.jsonl"
    record = {
        "time": "2024-05-01T11:00:00Z",
        "verdict": "FORWARDED",
        "Type": "L7",
        "IP": {"source": "10.128.0.5", "destination": "10.128.0.9", "ipVersion": "IPv4"},
        "l4": {"TCP": {"source_port": 40000, "destination_port": 8080}},
        "source": {"identity": 4001, "namespace": "ai-apps", "pod_name": "frontend-6c9-abcde",
                   "labels": ["k8s:app=frontend", "k8s:io.kubernetes.pod.namespace=ai-apps"]},
        "destination": {"identity": 4002, "namespace": "ai-apps", "pod_name": "api-server-7f-xyz",
                        "labels": ["k8s:app=api-server"]},
        "l7": {"type": "REQUEST", "http": {"method": "GET", "url": "http://api:8080/api/v1/models"}},
        "is_reply": False,
    }  # fmt: skip
    refused = json.loads(json.dumps(record))
    refused["l7"]["http"] = {"method": "DELETE", "url": "http://api:8080/api/v1/models"}
    flows.write_text(
        json.dumps({"flow": record}) + "\n" + json.dumps({"flow": refused}) + "\n",
        encoding="utf-8",
    )
    code, out, _ = run(
        capsys, "audit", "--flows", str(flows), "--stack", "production", "--format", "json"
    )
    doc = json.loads(out)
    assert code == 1 and doc["consistent"] == 1
    (gap,) = doc["enforcement_gap"]
    assert (gap["from"], gap["to"], gap["method"], gap["path"]) == (
        "ai-apps/frontend",
        "ai-apps/api-server",
        "DELETE",
        "/api/v1/models",
    )
    # The namespace's default deny and the L7 rule that lets only GETs through.
    assert gap["policies"] == [
        "NetworkPolicy ai-apps/default-deny",
        "CiliumNetworkPolicy ai-apps/frontend-reads-api-ingress",
    ]
    assert gap["allowed"] == "TCP/8080 [HTTP ^GET$ ^/api/v1/health$ | ^GET$ ^/api/v1/models$]"


def test_stack_profiles_diff(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "diff", "stack:homelab", "stack:production", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["a"] == "homelab" and doc["b"] == "production"


def test_one_stack_under_two_cilium_versions(capsys: pytest.CaptureFixture[str]) -> None:
    # The upgrade path's two ends read the production stack's policies alike: the renderer uses
    # none of the fields whose meaning changed (endPort, empty peer lists, enableDefaultDeny),
    # and the agent of neither version refuses any of its policies.
    code, out, err = run(
        capsys, "diff", "stack:production@cilium@1.15", "stack:production@cilium@1.19"
    )
    assert (code, out) == (0, "# cilium@1.15 -> cilium@1.19: 0 added, 0 removed, 0 changed\n")
    # Both sides say what a placement-free answer leaves out (the router's host-network pod
    # reaches its node's pods under both lines: allow-localhost, daemon/cmd/daemon.go).
    assert err == "".join(
        f"note: under cilium@{line}, a host-network pod (openshift-ingress/host-network) "
        "reaches every pod of its own node on every port, whatever ingress policies allow; these "
        "objects do not say where 7 pod(s) run (spec.nodeName, e.g. openshift-dns/dns-default), "
        "so that reach is not in this answer\n"
        for line in ("1.15", "1.19")
    )


def test_production_picture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dot_file = tmp_path / "production.dot"
    code, _, _ = run(
        capsys, "list", "--stack", "production", "--format", "dot", "-o", str(dot_file)
    )
    text = dot_file.read_text(encoding="utf-8")
    assert code == 0
    # Production is OpenShift: its DNS in openshift-dns, its router on the host network.
    for ns in ("ai-apps", "ai-inference", "openshift-dns", "openshift-ingress", "storage"):
        assert f'subgraph "cluster_ns_{ns}" {{' in text
    # The unmanaged namespaces' open-to-everything flows are folded, the managed ones drawn.
    assert '"openshift-dns/dns-default" -> "openshift-ingress/host-network"' not in text
    assert '"cidr:0.0.0.0/0" -> "openshift-ingress/host-network"' not in text
    assert "6 unrestricted flows not drawn" in text
    assert '"openshift-ingress/host-network" -> "ai-apps/frontend"' in text
    assert '"ai-apps/frontend" -> "ai-apps/api-server" [label="TCP/8080 [HTTP ' in text
    assert "L7-restricted (HTTP rules)" in text and "whole-port (L4)" in text
    assert shutil.which("dot"), "graphviz `dot` is not on PATH: apt-get install graphviz"
    svg = subprocess.run(
        ["dot", "-Tsvg", str(dot_file)], check=True, capture_output=True, text=True
    )
    assert "<svg" in svg.stdout


def test_the_program_entry_point_reads_a_stack() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cnistack", "connectivity", "query", "--stack", "homelab",
         "--from", "ai-apps/frontend", "--to", "ai-apps/api-server", "--port", "8080"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(
        "allow ai-apps/frontend -> ai-apps/api-server TCP/8080  [kube-router]\n"
    )
