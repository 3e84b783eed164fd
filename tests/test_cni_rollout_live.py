"""The rollout gate's wait (components/cni_rollout.py) against a real API server, with kwok
making the pods ready or not: no engine, no chart, seconds per case.

The workloads are plain apps/v1 objects shaped like the chart's (same names, labels and image
tags), in a namespace of their own on the session's local cluster.
"""

from __future__ import annotations

import functools
import re
import threading
import time
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest

from cnistack.cni_rollout import RolloutPlan, Workload
from components.cni_rollout import RolloutStuckError, wait_for_rollout
from components.kube_reader import KubeReader
from tests.local_cluster import LocalCluster, script

pytestmark = pytest.mark.engine

NAMESPACE = "gate-test"
AGENT_IMAGE = "quay.io/cilium/cilium:v1.15.0"


def _daemonset(labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "cilium", "namespace": NAMESPACE},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "cilium"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "cilium", **labels}},
                "spec": {"containers": [{"name": "cilium-agent", "image": AGENT_IMAGE}]},
            },
        },
    }


@pytest.fixture
def namespace(local_cluster: LocalCluster) -> Iterator[Any]:
    api = local_cluster.api()
    api.request("POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
    try:
        yield api
    finally:
        api.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}")
        deadline = time.monotonic() + 120
        while api.exists(f"/api/v1/namespaces/{NAMESPACE}") and time.monotonic() < deadline:
            time.sleep(0.5)


def _plan(timeout_s: int) -> RolloutPlan:
    agent = Workload("DaemonSet", NAMESPACE, "cilium", "cilium-agent", "1.15.0")
    return RolloutPlan("cilium", NAMESPACE, "1.15.0", (agent,), timeout_s, {})


def _connect(cluster: LocalCluster) -> Any:
    return functools.partial(KubeReader, cluster.kubeconfig.read_text(), "local")


def test_the_gate_returns_once_every_agent_is_ready(
    namespace: Any, local_cluster: LocalCluster
) -> None:
    namespace.request("POST", f"/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets", _daemonset({}))
    started = time.monotonic()
    wait_for_rollout(_plan(120), _connect(local_cluster))
    ds = namespace.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets/cilium")
    # What it waited for, read back: one ready agent per node.
    assert ds["status"]["numberReady"] == len(local_cluster.node_names)
    assert time.monotonic() - started < 120


def test_the_gate_names_every_agent_that_never_gets_ready(
    namespace: Any, local_cluster: LocalCluster
) -> None:
    stuck = _daemonset({script.NEVER_READY_LABEL: "true"})
    namespace.request("POST", f"/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets", stuck)
    started = time.monotonic()
    with pytest.raises(RolloutStuckError) as raised:
        wait_for_rollout(_plan(15), _connect(local_cluster))
    assert 15 <= time.monotonic() - started < 60
    message = str(raised.value)
    # 15 s, or a poll later: the first one past the deadline raises.
    assert re.match(r"Cilium 1\.15\.0 is not rolled out after 1[5-9] s ", message), message
    for node in local_cluster.node_names:
        assert f" on {node}: not ready (ContainersNotReady)" in message, message


def test_the_gate_rides_out_an_api_server_restart(
    namespace: Any, local_cluster: LocalCluster
) -> None:
    namespace.request("POST", f"/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets", _daemonset({}))
    # Rolled out first: kwok drops a pod status patch that fails while the API server is down
    # and never retries it (a kubelet would resync), so only the gate's reads are cut here.
    wait_for_rollout(_plan(120), _connect(local_cluster))
    script.stop_process(local_cluster.workdir, "kube-apiserver")
    try:
        with pytest.raises(urllib.error.URLError):
            namespace.get("/readyz")
        # The wait starts while the server is down and must not fail on that alone.
        connect = _connect(local_cluster)
        result: list[BaseException | None] = []

        def run() -> None:
            try:
                wait_for_rollout(_plan(120), connect)
                result.append(None)
            except BaseException as error:  # reported below
                result.append(error)

        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(5)
    finally:
        script.restart_process(local_cluster.workdir, "kube-apiserver")
    thread.join(timeout=150)
    assert result == [None], result
