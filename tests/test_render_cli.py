"""`python -m cnistack render` writes, per stack, the manifests the program applies."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cnistack.cli import main
from cnistack.cli.render_command import render_stack


@pytest.mark.parametrize("stack", ["homelab", "production"])
def test_render_writes_one_file_per_applied_object(stack: str, tmp_path: Path) -> None:
    assert main(["render", "--stack", stack, "--out", str(tmp_path)]) == 0
    written = {p.name: yaml.safe_load(p.read_text()) for p in tmp_path.glob("*.yaml")}
    assert sorted(written.values(), key=str) == sorted(render_stack(stack).manifests, key=str)


def test_production_render_has_the_two_cilium_policies(tmp_path: Path) -> None:
    main(["render", "--stack", "production", "--out", str(tmp_path)])
    assert sorted(p.name for p in tmp_path.glob("*ciliumnetworkpolicy*")) == [
        "ai-apps--ciliumnetworkpolicy--frontend-reads-api-ingress.yaml",
        "ai-apps--ciliumnetworkpolicy--router-to-frontend-ingress.yaml",
        "ai-inference--ciliumnetworkpolicy--router-to-open-webui-ingress.yaml",
        "ai-inference--ciliumnetworkpolicy--webui-generates-ingress.yaml",
    ]


def test_homelab_render_warns_about_the_widened_l7_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["render", "--stack", "homelab", "--out", str(tmp_path)])
    assert list(tmp_path.glob("*ciliumnetworkpolicy*")) == []
    assert (
        "L7 rules not enforced: GET /api/v1/models, GET /api/v1/health" in capsys.readouterr().err
    )


def test_unknown_stack_exits_2_and_lists_the_committed_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", "--stack", "staging", "--out", str(tmp_path)]) == 2
    assert "no stack file Pulumi.staging.yaml (committed stacks: homelab, production)" in (
        capsys.readouterr().err
    )
