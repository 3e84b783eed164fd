"""The local control plane's simulated nodes stay Ready the way real ones do: by renewing their
Lease (kube-node-lease), which the controller-manager's node lifecycle controller reads.

Without leases, kwok's node status heartbeat crossed the 50 s node-monitor-grace-period about
once a minute here, every pod's Ready condition was set False, and a rollout never completed
(scripts/local_cluster.py, where kwok starts)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.local_cluster import LocalCluster, local_cluster  # noqa: F401 (pytest fixture)

pytestmark = pytest.mark.engine


def _leases(cluster: LocalCluster) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = cluster.api().get(
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    )["items"]
    return found


def _renew_times(cluster: LocalCluster) -> dict[str, str]:
    return {
        lease["metadata"]["name"]: lease["spec"].get("renewTime", "") for lease in _leases(cluster)
    }


def test_every_node_renews_its_lease(local_cluster: LocalCluster) -> None:  # noqa: F811
    first = _renew_times(local_cluster)
    # A lease of 40 s is renewed every quarter of it (kwok's node lease controller, as the
    # kubelet's): wait for a second renewal of every node, bounded by one lease duration.
    deadline = time.monotonic() + 40
    renewed: set[str] = set()
    now = first
    while time.monotonic() < deadline:
        now = _renew_times(local_cluster)
        renewed = {n for n in local_cluster.node_names if now.get(n) and now[n] != first.get(n)}
        if renewed == set(local_cluster.node_names):
            break
        time.sleep(1)
    assert set(first) == set(local_cluster.node_names), first
    assert renewed == set(local_cluster.node_names), f"not renewed in 40 s: {first} -> {now}"
    durations = {lease["spec"]["leaseDurationSeconds"] for lease in _leases(local_cluster)}
    assert durations == {40}
