"""`cluster:[CONTEXT]` input: paging, error messages, workloads.

The unit tests drive `read_cluster` with `PagedLister`, a TEST DOUBLE of one API list call (it
returns pages the way the API server does and raises the client's own ApiException); the
unreachable-server and kubeconfig cases use the real client against a closed loopback port. The
live tests, against the repository's local control plane (tests/local_cluster.py), are in
tests/test_connectivity_cluster.py.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from factories import ANALYZER
from kubernetes.client.exceptions import ApiException

from reachability import cluster_source
from reachability.cluster_source import read_cluster
from reachability.engine import Analyzer, Request
from reachability.errors import InputError
from reachability.loader import load_documents


class PageResponse(io.BytesIO):
    """TEST DOUBLE of the client's raw response (`_preload_content=False`)."""

    def release_conn(self) -> None:
        self.close()


class PagedLister:
    """TEST DOUBLE of one list call: `items` in pages of `limit`, continue tokens as offsets."""

    def __init__(self, items: list[dict[str, Any]], error: ApiException | None = None) -> None:
        self.items = items
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> PageResponse:
        self.calls.append({k: v for k, v in kwargs.items() if k in ("limit", "_continue")})
        if self.error is not None:
            raise self.error
        start = int(kwargs.get("_continue") or 0)
        end = start + kwargs["limit"]
        meta = {"resourceVersion": "7"}
        if end < len(self.items):
            meta["continue"] = str(end)
        page = {"kind": "List", "apiVersion": "v1", "metadata": meta}
        page["items"] = self.items[start:end]
        return PageResponse(json.dumps(page).encode())


def api_error(status: int, reason: str, message: str) -> ApiException:
    exc = ApiException(status=status, reason=reason)
    exc.body = json.dumps({"kind": "Status", "status": "Failure", "message": message})
    return exc


def pod(ns: str, name: str, labels: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": ns, "name": name, "labels": labels, **meta},
        "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 80}]}]},
        "status": {"phase": "Running", "podIP": "10.244.0.5"},
    }


def listers(**overrides: PagedLister) -> dict[str, PagedLister]:
    base = {resource.plural: PagedLister([]) for resource in cluster_source.RESOURCES}
    base.update(overrides)
    return base


def test_pagination_reads_every_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_source, "PAGE_SIZE", 2)
    pods = [pod("a", f"p{i}", {"app": f"x{i}"}) for i in range(5)]
    calls = listers(pods=PagedLister(pods))
    inputs = read_cluster(calls, "cluster:", "https://127.0.0.1:6443")
    assert [p.key for p in inputs.pods] == ["a/p0", "a/p1", "a/p2", "a/p3", "a/p4"]
    assert calls["pods"].calls == [
        {"limit": 2},
        {"limit": 2, "_continue": "2"},
        {"limit": 2, "_continue": "4"},
    ]


def test_workload_pods_become_one_representative() -> None:
    owner = {"kind": "ReplicaSet", "name": "web-6d4cf56db6", "controller": True}
    pods = [
        pod("a", "web-6d4cf56db6-zx2", {"app": "web", "pod-template-hash": "6d4cf56db6"},
            ownerReferences=[owner]),
        pod("a", "web-6d4cf56db6-ab1", {"app": "web", "pod-template-hash": "6d4cf56db6"},
            ownerReferences=[owner]),
        pod("a", "db-0", {"app": "db", "statefulset.kubernetes.io/pod-name": "db-0"},
            ownerReferences=[{"kind": "StatefulSet", "name": "db", "controller": True}]),
        {**pod("a", "job-x", {"app": "job"}), "status": {"phase": "Succeeded"}},
    ]  # fmt: skip
    inputs = read_cluster(listers(pods=PagedLister(pods)), "cluster:", "https://127.0.0.1:1")
    assert [(p.key, p.labels) for p in inputs.pods] == [
        ("a/db", {"app": "db"}),
        ("a/web", {"app": "web"}),
    ]
    assert "cluster:: 1 pod(s) in phase Succeeded/Failed left out" in inputs.notes


def test_forbidden_names_the_resource() -> None:
    message = (
        'pods is forbidden: User "system:serviceaccount:a:reader" cannot list resource "pods" '
        'in API group "" at the cluster scope'
    )
    calls = listers(pods=PagedLister([], api_error(403, "Forbidden", message)))
    with pytest.raises(InputError) as info:
        read_cluster(calls, "cluster:prod", "https://127.0.0.1:6443")
    assert str(info.value) == (
        "cluster:prod: forbidden to list pods in all namespaces (RBAC: grant list on pods): "
        + message
    )


def test_missing_cilium_crds_is_a_note_not_an_error() -> None:
    missing = api_error(404, "Not Found", "the server could not find the requested resource")
    calls = listers(
        ciliumnetworkpolicies=PagedLister([], missing),
        ciliumclusterwidenetworkpolicies=PagedLister([], missing),
    )
    inputs = read_cluster(calls, "cluster:", "https://127.0.0.1:6443")
    assert inputs.policies == []
    assert inputs.notes == [
        "cluster:: ciliumnetworkpolicies.cilium.io/v2 is not served (Cilium's CRDs are not "
        "installed): no CiliumNetworkPolicy read",
        "cluster:: ciliumclusterwidenetworkpolicies.cilium.io/v2 is not served (Cilium's CRDs "
        "are not installed): no CiliumClusterwideNetworkPolicy read",
    ]


def test_bad_object_from_the_cluster_is_named() -> None:
    bad = pod("a", "p", {"app": "x" * 64})
    with pytest.raises(InputError) as info:
        read_cluster(listers(pods=PagedLister([bad])), "cluster:", "https://127.0.0.1:6443")
    assert str(info.value) == (
        f"cluster:: Pod a/p: metadata.labels.app: value '{'x' * 64}': must be no more than 63 "
        "characters"
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_kubeconfig(path: Path, server: str, context: str = "lab") -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
                "current-context": context,
            }
        )
    )
    return path


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reachability", *argv],
        cwd=ANALYZER, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def test_unreachable_server_real_client(tmp_path: Path) -> None:
    port = _closed_port()
    kubeconfig = write_kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{port}")
    proc = cli("list", "--cluster", "--kubeconfig", str(kubeconfig), "--enforcement", "cilium")
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: cluster:: cannot reach the API server https://127.0.0.1:{port}: "
        "[Errno 111] Connection refused\n"
    )


def test_unknown_context_real_client(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:1")
    proc = cli("list", "--cluster", "prod", "--kubeconfig", str(kubeconfig), "--enforcement",
               "cilium")  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: cluster:prod: cannot use {kubeconfig}: Invalid kube-config file. Expected object "
        f"with name prod in {kubeconfig}/contexts list\n"
    )


def test_cluster_side_needs_a_profile_without_a_stack(tmp_path: Path) -> None:
    proc = cli("diff", "cluster:prod", "manifests:x.yaml@cilium")
    assert (proc.returncode, proc.stderr) == (
        2,
        "error: diff side 'cluster:prod': add @kube-router or @cilium (or --enforcement)\n",
    )


def test_pods_are_slimmed_per_page_without_changing_the_answer() -> None:
    fat = pod("a", "p", {"app": "x"})
    fat["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}] * 50
    fat["metadata"]["annotations"] = {"note": "n" * 10_000}
    fat["spec"]["volumes"] = [{"name": "v", "emptyDir": {}}]
    fat["spec"]["serviceAccountName"] = "runner"
    fat["spec"]["containers"][0]["env"] = [{"name": "E", "value": "v"}]
    fat["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    calls = listers(pods=PagedLister([fat]))
    live = read_cluster(calls, "cluster:", "https://127.0.0.1:6443").pods
    from_file = load_documents([({**fat, "kind": "Pod", "apiVersion": "v1"}, "f")]).pods
    assert live == from_file
    assert (live[0].service_account, live[0].ip) == ("runner", "10.244.0.5")
    assert cluster_source._slim_pod({**fat, "kind": "Pod"})["metadata"] == {
        "name": "p", "namespace": "a", "labels": {"app": "x"},
    }  # fmt: skip


def test_a_policy_the_agent_refuses_is_left_out_of_a_live_cluster() -> None:
    # The API server stored it (the CRD schema accepts HTTP rules on a port without protocol);
    # the agent refuses it (PortRule.sanitize) and enforces the rest: so does the analysis.
    refused = {
        "metadata": {"namespace": "a", "name": "l7"},
        "spec": {
            "endpointSelector": {},
            "ingress": [{"toPorts": [{"ports": [{"port": "80"}], "rules": {"http": [{}]}}]}],
        },
    }
    kept = {
        "metadata": {"namespace": "a", "name": "kept"},
        "spec": {"endpointSelector": {"matchLabels": {"app": "db"}}, "ingress": [{}]},
    }
    pods = [pod("a", "web", {"app": "web"}), pod("a", "db", {"app": "db"})]
    calls = listers(pods=PagedLister(pods), ciliumnetworkpolicies=PagedLister([refused, kept]))
    analyzer = Analyzer(read_cluster(calls, "cluster:prod", "https://127.0.0.1:6443"), "cilium")
    assert [(r.policy, r.source, r.reason) for r in analyzer.rejected] == [
        (
            "CiliumNetworkPolicy a/l7",
            "cluster:prod",
            "spec.ingress[0].toPorts[0].ports[0]: L7 rules can only apply to TCP (not ANY)",
        )
    ]
    request = Request("TCP", 80)
    assert [
        analyzer.query(s, d, request).allowed for s, d in (("a/db", "a/web"), ("a/web", "a/db"))
    ] == [True, False]
