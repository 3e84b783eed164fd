"""Day-2 config through the real engine: `pulumi config set` as a user types it, then a preview.

Same harness as tests/test_engine.py: the real `pulumi`, the real Kubernetes and Command plugins,
the pack, and production pointed at the local control plane with the real Cilium chart.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine_harness import RELEASE_URN_NAME, Engine, point_production_at, steps_by_name
from tests.local_cluster import LocalCluster, cilium_dir

pytestmark = pytest.mark.engine


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(tmp_path)


@pytest.fixture
def production(engine: Engine, local_cluster: LocalCluster) -> Engine:
    point_production_at(engine, local_cluster, str(cilium_dir() / "install/kubernetes/cilium"))
    return engine


def test_a_misspelt_nested_key_gets_did_you_mean(engine: Engine) -> None:
    engine.new_stack("homelab")
    engine.config("homelab", "cluster.agent", "3", path=True)
    result = engine.preview("homelab")
    assert result.returncode != 0
    assert "aisp-cni:cluster.agent: unknown key; did you mean 'agents'?" in result.output


def test_a_misspelt_root_key_set_with_pulumi_config_gets_did_you_mean(engine: Engine) -> None:
    engine.new_stack("homelab")
    engine.config("homelab", "clsuter", "k3d")
    result = engine.preview("homelab")
    assert result.returncode != 0
    assert "aisp-cni:clsuter: unknown key; did you mean 'cluster'?" in result.output


def test_extra_values_set_by_path_reach_the_release(production: Engine) -> None:
    production.config("production", "cilium.extraValues.operator.replicas", "1", path=True)
    production.config("production", "cilium.extraValues.routingMode", "native", path=True)
    result = production.preview("production", "--json")
    assert result.returncode == 0, result.output
    step = steps_by_name(result.json())[RELEASE_URN_NAME][0]
    values = step["newState"]["inputs"]["values"]
    assert values["operator"] == {"prometheus": {"enabled": True}, "replicas": 1}
    assert values["routingMode"] == "native"


def test_extra_values_cannot_switch_off_wireguard(production: Engine) -> None:
    production.config("production", "cilium.extraValues.encryption.enabled", "false", path=True)
    result = production.preview("production")
    assert result.returncode != 0
    assert (
        "aisp-cni:cilium.extraValues.encryption.enabled: decided by the program from "
        "cilium.encryption (ADR-013)"
    ) in result.output
