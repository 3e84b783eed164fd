"""Traffic from a pod's own node reaches it whatever its ingress policies allow
(reachability/profiles.py `local_host_reaches_node_pods`).

What each enforcer does, read upstream, not from the analyzer:
- kube-router v2.1.0, pkg/controllers/netpol/pod.go: every pod's firewall chain starts with
  `-m addrtype --src-type LOCAL -d POD_IP -j ACCEPT` ("rule to permit the traffic to pods when
  source is the pod's local node"), before any NetworkPolicy chain.
- Cilium v1.19.7, daemon/cmd/daemon.go: under Kubernetes `allow-localhost=auto` becomes
  `always`; pkg/policy/mapstate.go then allows the `host` identity into every endpoint. A deny
  rule on the `host` entity still wins in 1.15 (`denyPreferredInsert`), which the test of the
  deny below follows.
The packets agreed: `verify --stack production` on real cilium-agent 1.19.7 (the router's
host-network pod reached every port of the pods of its node, tests/test_datapath_verify.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from reachability import Analyzer, InputError, Request, load_documents
from reachability.cli import main

NAMESPACES = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in ("app", "edge")
]


def pod(namespace: str, name: str, node: str | None, host: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "ports": [{"containerPort": 5432}]}]}
    if node is not None:
        spec["nodeName"] = node
    if host:
        spec["hostNetwork"] = True
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": spec,
        "status": {"podIP": "192.168.0.10" if host else f"10.42.0.{len(name)}"},
    }


DEFAULT_DENY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "default-deny", "namespace": "app"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
}
DENY_HOST = {
    "apiVersion": "cilium.io/v2",
    "kind": "CiliumNetworkPolicy",
    "metadata": {"name": "no-host", "namespace": "app"},
    "spec": {
        "endpointSelector": {"matchLabels": {"app": "web"}},
        "ingressDeny": [{"fromEntities": ["host"]}],
    },
}
PG = Request("TCP", 5432)


def analyzer(docs: list[dict[str, Any]], profile: str) -> Analyzer:
    return Analyzer(load_documents((d, "test") for d in docs), profile)


def placed(router_node: str | None = "node-a") -> list[dict[str, Any]]:
    return [
        *NAMESPACES,
        pod("edge", "router", router_node, host=True),
        pod("app", "web", "node-a"),
        pod("app", "db", "node-b"),
    ]


@pytest.mark.parametrize("profile", ["kube-router", "cilium@1.15", "cilium@1.19"])
def test_the_node_reaches_its_own_pods_only(profile: str) -> None:
    model = analyzer([*placed(), DEFAULT_DENY], profile)
    assert model.query("edge/router", "app/web", PG).allowed
    assert model.query("edge/router", "app/web", Request("UDP", 9)).allowed
    assert not model.query("edge/router", "app/db", PG).allowed
    # Pods of the node do not gain from it: web to db is still denied.
    assert not model.query("app/web", "app/db", PG).allowed
    listed = {(src, dst): ports for src, dst, ports in model.flows()}
    assert listed[("edge/router", "app/web")].allows("TCP", 1, None, None)
    assert ("edge/router", "app/db") not in listed
    assert model.notes == []


def test_a_deny_on_the_host_entity_still_applies() -> None:
    model = analyzer([*placed(), DEFAULT_DENY, DENY_HOST], "cilium@1.15")
    assert not model.query("edge/router", "app/web", PG).allowed
    assert ("edge/router", "app/web") not in {(s, d) for s, d, _ in model.flows()}


def test_without_placement_the_answer_says_what_it_leaves_out() -> None:
    model = analyzer([*placed(router_node=None), DEFAULT_DENY], "cilium@1.19")
    assert not model.query("edge/router", "app/web", PG).allowed
    assert model.notes == [
        "under cilium@1.19, a host-network pod (edge/router) reaches every pod of its own node "
        "on every port, whatever ingress policies allow; these objects do not say where 1 "
        "pod(s) run (spec.nodeName, e.g. edge/router), so that reach is not in this answer"
    ]


def test_a_node_name_that_is_not_a_name_is_refused() -> None:
    bad = pod("app", "web", None)
    bad["spec"]["nodeName"] = 7
    with pytest.raises(InputError, match=r"spec.nodeName must be a node's name, got 7"):
        analyzer([*NAMESPACES, bad], "kube-router")


def test_query_names_the_node_as_what_decided(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifests = tmp_path / "placed.yaml"
    manifests.write_text(yaml.safe_dump_all([*placed(), DEFAULT_DENY]))
    argv = ["query", "--manifests", str(manifests), "--enforcement", "cilium",
            "--from", "edge/router", "--to", "app/web", "--port", "5432"]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr().out == (
        "allow edge/router -> app/web TCP/5432  [cilium]\n"
        "  decided by: (the destination's own node: its host-network pods reach it on every "
        "port, whatever ingress allows)\n"
    )
    assert main([*argv[:-4], "--to", "app/db", "--port", "5432"]) == 1
    assert capsys.readouterr().out == (
        "deny edge/router -> app/db TCP/5432  [cilium]\n"
        "  decided by: NetworkPolicy app/default-deny\n"
    )
