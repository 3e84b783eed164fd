"""The upgrade path with the real engine: from 1.15.19 to the default, `pulumi up` per stage.

Each minor step is upstream's two stages (Documentation/operations/upgrade.rst, cnistack/
cilium_upgrade.py): one `up` installs the preflight check at the target and leaves the release,
the next removes it and upgrades. The charts are the real ones of every module on the path
(scripts/toolchain.sh piece cilium_path), installed by the real Helm of the Kubernetes plugin into
a real Kubernetes 1.35 control plane of its own (kwok nodes).

The matrix does not admit every step on one Kubernetes version: Cilium 1.15-1.18 are e2e-tested
on Kubernetes 1.26-1.33, and control planes 1.29-1.32 do not build from Go modules here
(scripts/toolchain.sh). Stepping the control plane would cover 1.18 only (1.33), so the chain runs
on 1.35 under the test-only CNISTACK_TEST_ONLY_ALLOW_OFF_MATRIX=1, which the program names in a
warning at every run: the test checks that warning, so the matrix is never off silently.

The pack runs at every `up`. Its end-of-life rule is mandatory in production; the intermediate
lines (1.15-1.17) are end of life, so those stages run under policies/config/
production-upgrade.json, the production config with that one rule advisory (the README's upgrade
procedure). The last stage and the final preview run under the plain production config.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cnistack.cilium_upgrade import ClusterFacts
from cnistack.config import StackConfig, parse_stack_config
from components.cluster_facts import read_cluster_facts  # the real reader, not conftest's double
from tests.engine_harness import Engine, toolchain
from tests.local_cluster import LocalCluster, apply_cilium_crds, script, start_cluster
from tests.test_engine import point_production_at

pytestmark = pytest.mark.engine

NODES = 3
STEPS = ["1.16.19", "1.17.17", "1.18.11", "1.19.7"]
OFF_MATRIX = "OFF-MATRIX, allowed by CNISTACK_TEST_ONLY_ALLOW_OFF_MATRIX=1"


def chart(version: str) -> str:
    gomod = Path(toolchain("--print-cilium-dir").strip()).parent
    return str(gomod / f"cilium@v{version}" / "install/kubernetes/cilium")


def helm_releases(cluster: LocalCluster, name: str) -> list[dict[str, Any]]:
    """Every stored revision of release `name`, as Helm recorded it (base64(gzip(JSON)) in the
    Secret's `release`, helm pkg/storage/driver/util.go), oldest first."""
    secrets = cluster.api().get(
        f"/api/v1/namespaces/kube-system/secrets?labelSelector=owner%3Dhelm%2Cname%3D{name}"
    )["items"]
    records = [
        json.loads(gzip.decompress(base64.b64decode(base64.b64decode(s["data"]["release"]))))
        for s in secrets
    ]
    return sorted(records, key=lambda r: int(r["version"]))


def deployed(cluster: LocalCluster, name: str) -> dict[str, Any] | None:
    live = [r for r in helm_releases(cluster, name) if r["info"]["status"] == "deployed"]
    return live[-1] if live else None


@pytest.fixture(scope="module")
def chain_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    workdir = tmp_path_factory.mktemp("upgrade-cluster")
    try:
        cluster = start_cluster(workdir, NODES)
        apply_cilium_crds(cluster)
        yield cluster
    finally:
        script.stop(workdir)


def chain_stack(cluster: LocalCluster) -> StackConfig:
    """The stack the chain runs, as the program reads it (kubeconfig of the local cluster)."""
    return parse_stack_config(
        {"cni": "cilium", "kubeconfig": cluster.kubeconfig.read_text(),
         "cluster": {"kind": "existing", "name": "chain", "server": cluster.server,
                     "context": "local", "openshift": True, "deployKubeProxy": False},
         "cilium": {"k8sServiceHost": "127.0.0.1", "k8sServicePort": 6443}}
    )  # fmt: skip


def test_the_real_reader_sees_the_servers_version_and_no_release_yet(
    chain_cluster: LocalCluster,
) -> None:
    facts = read_cluster_facts(chain_stack(chain_cluster))
    assert facts == ClusterFacts(server_version="v1.35.8", revisions=())


@pytest.fixture(scope="module")
def engine(chain_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    engine = Engine(tmp_path_factory.mktemp("upgrade"))
    engine.env["CNISTACK_TEST_ONLY_ALLOW_OFF_MATRIX"] = "1"
    point_production_at(engine, chain_cluster, chart("1.15.19"))
    engine.config("production", "cilium.chart.version", "1.15.19", path=True)
    # Three kwok nodes: one operator replica per node fits either way.
    engine.config("production", "cilium.extraValues.operator.replicas", "1", path=True)
    return engine


def set_version(engine: Engine, version: str) -> None:
    engine.config("production", "cilium.chart.version", version, path=True)
    engine.config("production", "cilium.chart.source.path", chart(version), path=True)


def test_the_chain_from_1_15_19_to_the_default(engine: Engine, chain_cluster: LocalCluster) -> None:
    up = engine.up("production", pack_config="production-upgrade")
    assert up.returncode == 0, up.output[-5000:]
    # The off-matrix install is named, never silent.
    assert OFF_MATRIX in up.output
    assert "Cilium 1.15.19 is not tested on Kubernetes v1.35.8" in up.output
    release = deployed(chain_cluster, "cilium")
    assert release is not None
    assert release["chart"]["metadata"]["version"] == "1.15.19"
    assert release["config"]["upgradeCompatibility"] == "1.15"
    # The 1.15 chart reads the export rotation outside `static`.
    assert release["config"]["hubble"]["export"]["fileMaxSizeMb"] == 50

    # A skipped minor, read from the cluster's Helm release: refused, naming the next version.
    set_version(engine, "1.17.17")
    refused = engine.preview("production", pack_config="production-upgrade")
    assert refused.returncode != 0
    assert (
        "cannot upgrade Cilium from 1.15.19 to 1.17.17: it skips 1.16. Upstream upgrades one "
        "minor at a time from the latest patch of each line (Documentation/operations/"
        "upgrade.rst); the next allowed version is 1.16.19"
    ) in refused.output
    assert "deployed version read from the cluster's Helm release kube-system/cilium" in (
        refused.output
    )

    previous = "1.15.19"
    for target in STEPS:
        set_version(engine, target)
        last = target == STEPS[-1]
        pack = None if last else "production-upgrade"
        # Stage 1: the preflight at the target; the release stays.
        stage1 = engine.up("production", pack_config=pack)
        assert stage1.returncode == 0, stage1.output[-5000:]
        assert f"Cilium {previous} -> {target} is a minor step" in stage1.output
        preflight = deployed(chain_cluster, "cilium-preflight")
        assert preflight is not None and preflight["chart"]["metadata"]["version"] == target
        assert preflight["config"]["preflight"] == {"enabled": True}
        release = deployed(chain_cluster, "cilium")
        assert release is not None and release["chart"]["metadata"]["version"] == previous
        # Stage 2: upgraded with that version's whole value set; the preflight removed.
        stage2 = engine.up("production", pack_config=pack)
        assert stage2.returncode == 0, stage2.output[-5000:]
        release = deployed(chain_cluster, "cilium")
        assert release is not None
        assert release["chart"]["metadata"]["version"] == target, target
        assert release["config"]["upgradeCompatibility"] == "1.15", target
        export = release["config"]["hubble"]["export"]
        if target in ("1.18.11", "1.19.7"):
            assert (export["static"]["fileMaxSizeMb"], "fileMaxSizeMb" in export) == (50, False)
        else:
            assert (export["fileMaxSizeMb"], "fileMaxSizeMb" in export["static"]) == (50, False)
        assert deployed(chain_cluster, "cilium-preflight") is None, target
        assert (OFF_MATRIX in stage2.output) is (target != "1.19.7"), target
        previous = target

    # The real reader of the cluster sees what Helm holds, and the stack agrees.
    facts = read_cluster_facts(chain_stack(chain_cluster))
    assert facts is not None and facts.server_version == "v1.35.8"
    # One Helm revision per version: the preflight stages left the release untouched.
    main = [r.chart_version for r in facts.revisions if r.release == "cilium"]
    assert main == ["1.15.19", "1.16.19", "1.17.17", "1.18.11", "1.19.7"]
    outputs = engine.pulumi("stack", "output", "-s", "production", "--json", check=True).json()
    assert outputs["ciliumInstall"] == {
        "version": "1.19.7",
        "firstInstalled": "1.15.19",
        "preflight": None,
    }
    # A second preview under the production pack: nothing to change.
    preview = engine.preview("production", "--expect-no-changes")
    assert preview.returncode == 0, preview.output[-5000:]
    assert OFF_MATRIX not in preview.output
