"""An interrupted Cilium minor upgrade, with the real engine, chart, Helm and control plane.

1.18.11 is installed, the preflight stage of the step to 1.19.7 runs (tests/test_engine_upgrade.py
has the whole chain), then the second stage's `up` is SIGKILLed, with every process it started,
inside Helm's upgrade of the `cilium` release: once Helm has stored the new revision's record
(`pending-upgrade`) and before it records the end. Not a timer: the condition is polled on the
API server, and the test checks afterwards that the kill did land there (the revision is still
pending). Recovery is docs/recovery.md, "An interrupted Cilium upgrade" (the steps of "A killed
`pulumi up`", tests/test_engine_faults.py `recover`), then the rerun must finish the upgrade.

The pack runs at every `up`: the install under policies/config/production-upgrade.json as the
chain does for the 1.18 stage, every 1.19.7 run under the plain production config.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from cnistack.cni_rollout import values_digest
from cnistack.stack_files import load_stack
from tests.engine_harness import Engine, point_production_at
from tests.faults import (
    MANAGED,
    Watcher,
    expected_allows,
    helm_statuses,
    kill_tree,
    recover,
    rendered_manifests,
    start_up,
)
from tests.local_cluster import LocalCluster, apply_cilium_crds, script, start_cluster
from tests.test_engine_upgrade import OFF_MATRIX, chart, deployed, helm_releases, set_version

pytestmark = pytest.mark.engine

NODES = 3
FROM, TO = "1.18.11", "1.19.7"
STACK = "production"
# The engine's summary of a pack that ran and found no mandatory violation: ✅, or ⚠️ for
# advisory ones (pulumi pkg/backend/display/progress.go printPolicies); ❌ fails the `up`.
PACK_PASSED = re.compile(r"Policies:\n +(✅|⚠️) (\x1b\[[0-9;]*m)*adr013-cni-guard@v0\.1\.0")
KILL_TIMEOUT_S = 600


def _policies(cluster: LocalCluster) -> set[str]:
    """`kind namespace/name` of every (Cilium)NetworkPolicy the program manages in the cluster."""
    api = cluster.api()
    found = set()
    for kind, path in (
        ("NetworkPolicy", "/apis/networking.k8s.io/v1/networkpolicies"),
        ("CiliumNetworkPolicy", "/apis/cilium.io/v2/ciliumnetworkpolicies"),
    ):
        for item in api.get(f"{path}?labelSelector={MANAGED}")["items"]:
            found.add(f"{kind} {item['metadata']['namespace']}/{item['metadata']['name']}")
    return found


def _kill_inside_the_release_upgrade(
    engine: Engine, cluster: LocalCluster, revision: int
) -> tuple[subprocess.CompletedProcess[str], str]:
    """`pulumi up`, SIGKILLed (with its plugins) as soon as Helm's record of `revision` exists;
    returns the killed run and the record's status right after the kill."""
    secret = f"/api/v1/namespaces/kube-system/secrets/sh.helm.release.v1.cilium.v{revision}"
    api = cluster.api()
    process, out, err = start_up(engine, STACK, engine.workdir / "killed-events.jsonl")
    deadline = time.monotonic() + KILL_TIMEOUT_S
    try:
        while not api.exists(secret):
            if process.poll() is not None:
                raise AssertionError(
                    f"pulumi up ended (rc {process.returncode}) before Helm stored revision "
                    f"{revision}:\n{out.read_text()[-3000:]}{err.read_text()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"Helm did not store revision {revision} in {KILL_TIMEOUT_S} s"
                )
            time.sleep(0.02)
        kill_tree(process.pid)
    finally:
        if process.poll() is None:
            kill_tree(process.pid)
        process.wait(timeout=60)
    status = api.get(secret)["metadata"]["labels"]["status"]
    killed = subprocess.CompletedProcess(
        process.args, process.returncode, out.read_text(), err.read_text()
    )
    return killed, status


def _engine(workdir: Path, cluster: LocalCluster) -> Engine:
    """The chain's production stack (tests/test_engine_upgrade.py `engine`) at 1.18.11."""
    engine = Engine(workdir)
    engine.env["CNISTACK_TEST_ONLY_ALLOW_OFF_MATRIX"] = "1"
    # `up --event-log` (tests/faults.py `start_up`) needs it (pkg/cmd/pulumi/operations/up.go).
    engine.env["PULUMI_DEBUG_COMMANDS"] = "true"
    point_production_at(engine, cluster, chart(FROM))
    set_version(engine, FROM)
    # Three kwok nodes: one operator replica per node fits either way.
    engine.config(STACK, "cilium.extraValues.operator.replicas", "1", path=True)
    return engine


def _install_then_preflight(engine: Engine, cluster: LocalCluster, expected: set[str]) -> None:
    install = engine.up(STACK, pack_config="production-upgrade")
    assert install.returncode == 0, install.output[-5000:]
    assert PACK_PASSED.search(install.output), install.output[-3000:]
    first = deployed(cluster, "cilium")
    assert first is not None and first["chart"]["metadata"]["version"] == FROM
    assert first["config"]["upgradeCompatibility"] == "1.18"
    assert _policies(cluster) == expected
    # Stage 1 of the step: the preflight at 1.19.7; the release held at 1.18.11.
    set_version(engine, TO)
    stage1 = engine.up(STACK)
    assert stage1.returncode == 0, stage1.output[-5000:]
    assert f"Cilium {FROM} -> {TO} is a minor step" in stage1.output
    assert PACK_PASSED.search(stage1.output), stage1.output[-3000:]
    preflight = deployed(cluster, "cilium-preflight")
    assert preflight is not None and preflight["chart"]["metadata"]["version"] == TO


def _assert_upgrade_finished(engine: Engine, cluster: LocalCluster, expected: set[str]) -> None:
    releases = helm_releases(cluster, "cilium")
    statuses = [(r["version"], r["info"]["status"]) for r in releases]
    # One live revision, none pending: what was superseded stays as Helm's history.
    assert [s for _, s in statuses if s != "superseded"] == ["deployed"], statuses
    assert not [s for s in helm_statuses(cluster) if s.startswith("pending-")], statuses
    final: dict[str, Any] = releases[-1]
    assert final["chart"]["metadata"]["version"] == TO
    # The first install's compatibility survives the interruption (upgrade.rst).
    assert final["config"]["upgradeCompatibility"] == "1.18"
    assert helm_releases(cluster, "cilium-preflight") == []
    receipt = cluster.api().get("/api/v1/namespaces/kube-system/configmaps/cnistack-cni-rollout")[
        "data"
    ]
    assert receipt["version"] == TO
    assert receipt["values-sha256"] == values_digest(final["config"])
    assert _policies(cluster) == expected
    outputs = engine.pulumi("stack", "output", "-s", STACK, "--json", check=True).json()
    assert outputs["ciliumInstall"] == {"version": TO, "firstInstalled": FROM, "preflight": None}
    again = engine.preview(STACK, "--expect-no-changes")
    assert again.returncode == 0, again.output[-3000:]
    assert PACK_PASSED.search(again.output), again.output[-3000:]


def test_a_killed_cilium_upgrade_is_finished_by_the_rerun(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "cluster", NODES)
    try:
        apply_cilium_crds(cluster)
        engine = _engine(tmp_path / "engine", cluster)
        # The stack's policies: what the committed production stack renders (the version only
        # changes the Cilium release, not which policies exist).
        manifests = rendered_manifests(load_stack(STACK))
        expected = {
            f"{m['kind']} {m['metadata']['namespace']}/{m['metadata']['name']}"
            for m in manifests
            if m["kind"] in ("NetworkPolicy", "CiliumNetworkPolicy")
        }
        assert any(p.startswith("CiliumNetworkPolicy ") for p in expected), expected
        with Watcher(cluster, expected_allows(manifests)) as watcher:
            _install_then_preflight(engine, cluster, expected)
            # Stage 2, killed inside Helm's upgrade of the release.
            revision = int(helm_releases(cluster, "cilium")[-1]["version"]) + 1
            killed, status = _kill_inside_the_release_upgrade(engine, cluster, revision)
            assert killed.returncode == -9, killed.stdout[-3000:] + killed.stderr[-3000:]
            assert status == "pending-upgrade", f"the kill missed Helm's upgrade: {status}"
            # What the user finds before touching anything: the release still deployed at
            # 1.18.11, the preflight still there, every policy in place.
            release = deployed(cluster, "cilium")
            assert release is not None and release["chart"]["metadata"]["version"] == FROM
            assert deployed(cluster, "cilium-preflight") is not None
            assert _policies(cluster) == expected
            assert watcher.violations == [], watcher.violations
            # docs/recovery.md: cancel; the retry names the pending revision; drop it; refresh;
            # rerun.
            steps = recover(engine, STACK, cluster)
        cancel, retry, refresh, rerun = steps
        assert cancel.returncode == 0, cancel.output[-3000:]
        assert (
            f"Helm release kube-system/cilium: revision {revision} pending-upgrade, left by an "
            "interrupted operation"
        ) in retry.output, retry.output[-3000:]
        # The release is in the state already (its update was cut off, not its create): the
        # import recovery.md's step 3 names matches nothing, and says so.
        assert refresh.returncode == 0, refresh.output[-3000:]
        assert "did not correspond to a pending create" in refresh.output, refresh.output[-3000:]
        assert rerun.returncode == 0, "\n---\n".join(s.output[-3000:] for s in steps)
        assert watcher.violations == [], watcher.violations
        assert watcher.observations > 0
        # The rerun is the step's second stage, checked by the pack like any other `up`.
        assert PACK_PASSED.search(rerun.output), rerun.output[-3000:]
        assert OFF_MATRIX not in rerun.output
        _assert_upgrade_finished(engine, cluster, expected)
    finally:
        script.stop(cluster.workdir)
