"""Day-2 config through the real engine: `pulumi config set` as a user types it, then a preview.

Same harness as tests/test_engine.py (real `pulumi`, provider test doubles, the pack).
"""

from __future__ import annotations

import pytest

from tests import test_engine as base

pytestmark = pytest.mark.engine

engine = base.engine
production = base.production
Engine = base.Engine


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
    production.config("production", "cilium.extraValues.ipam.mode", "kubernetes", path=True)
    result = production.preview("production", "--json")
    assert result.returncode == 0, result.output
    values = base.steps_by_name(result.json())["cni-cilium"]["newState"]["inputs"]["values"]
    assert values["operator"] == {"prometheus": {"enabled": True}, "replicas": 1}
    assert values["ipam"] == {"mode": "kubernetes"}


def test_extra_values_cannot_switch_off_wireguard(production: Engine) -> None:
    production.config("production", "cilium.extraValues.encryption.enabled", "false", path=True)
    result = production.preview("production")
    assert result.returncode != 0
    assert (
        "aisp-cni:cilium.extraValues.encryption.enabled: decided by the program from "
        "cilium.encryption (ADR-013)"
    ) in result.output
