"""`python -m cnistack render` writes, per stack, the manifests the program applies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from cnistack.chart_keys import unknown_value_keys
from cnistack.cli import main
from cnistack.cli.render_command import render_files, render_stack
from cnistack.stack_files import load_stack
from tests.conftest import ROOT
from tests.factories import HOMELAB_CREATE, PRODUCTION_VALUES


@pytest.mark.parametrize("stack", ["homelab", "production"])
def test_render_writes_one_file_per_applied_object(stack: str, tmp_path: Path) -> None:
    assert main(["render", "--stack", stack, "--out", str(tmp_path)]) == 0
    written = {p.name: yaml.safe_load(p.read_text()) for p in tmp_path.glob("manifests/*.yaml")}
    policies = {name: m for name, m in written.items() if not name.startswith("clusterrole")}
    assert sorted(policies.values(), key=str) == sorted(render_stack(stack).manifests, key=str)
    # Beside the policies, production (OpenShift) applies the SCC bindings of the Cni component.
    assert sorted(set(written) - set(policies)) == (
        [
            "clusterrole--cilium-scc-privileged.yaml",
            "clusterrolebinding--cilium-scc-privileged.yaml",
        ]
        if stack == "production"
        else []
    )


def test_production_render_has_the_two_cilium_policies(tmp_path: Path) -> None:
    main(["render", "--stack", "production", "--out", str(tmp_path)])
    assert sorted(p.name for p in tmp_path.glob("manifests/*ciliumnetworkpolicy*")) == [
        "ai-apps--ciliumnetworkpolicy--frontend-reads-api-ingress.yaml",
        "ai-apps--ciliumnetworkpolicy--router-to-frontend-ingress.yaml",
        "ai-inference--ciliumnetworkpolicy--router-to-open-webui-ingress.yaml",
        "ai-inference--ciliumnetworkpolicy--webui-generates-ingress.yaml",
    ]


def test_homelab_render_warns_about_the_widened_l7_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["render", "--stack", "homelab", "--out", str(tmp_path)])
    assert list(tmp_path.glob("manifests/*ciliumnetworkpolicy*")) == []
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


def test_a_rerender_leaves_no_stale_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["render", "--stack", "production", "--out", str(out)]) == 0
    assert (out / "cilium-values.yaml").is_file()
    # The homelab has no Cilium and no L7 policy: their files must go.
    assert main(["render", "--stack", "homelab", "--out", str(out)]) == 0
    names = {str(p.relative_to(out)) for p in out.rglob("*")}
    assert "cilium-values.yaml" not in names
    assert [n for n in names if "ciliumnetworkpolicy" in n] == []
    assert "manifests/storage--networkpolicy--default-deny.yaml" in names
    assert {p.name for p in tmp_path.iterdir()} == {"out"}  # no staging directory left behind


def test_render_refuses_to_replace_a_directory_it_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["render", "--stack", "homelab", "--out", str(tmp_path)]) == 2
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert f"render: refusing to replace {tmp_path}: not empty and not a previous render" in (
        capsys.readouterr().err
    )


def test_render_refuses_an_output_path_that_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out"
    target.write_text("mine")
    assert main(["render", "--stack", "homelab", "--out", str(target)]) == 2
    assert capsys.readouterr().err == f"render: refusing to replace {target}: not a directory\n"


def test_production_render_has_the_helm_values_the_program_installs(tmp_path: Path) -> None:
    main(["render", "--stack", "production", "--out", str(tmp_path)])
    text = (tmp_path / "cilium-values.yaml").read_text()
    assert yaml.safe_load(text) == PRODUCTION_VALUES
    assert (
        "#   helm upgrade --install cilium cilium --repo https://helm.cilium.io/ --version 1.19.7 "
        "--namespace kube-system -f cilium-values.yaml\n"
    ) in text
    assert unknown_value_keys(yaml.safe_load(text), "1.19.7") == []
    assert not (tmp_path / "k3d-cluster-create.sh").exists()


def test_homelab_render_has_the_k3d_create_command(tmp_path: Path) -> None:
    main(["render", "--stack", "homelab", "--out", str(tmp_path)])
    script = tmp_path / "k3d-cluster-create.sh"
    assert script.read_text().splitlines()[-1] == f"exec {HOMELAB_CREATE}"
    assert os.access(script, os.X_OK)
    assert not (tmp_path / "cilium-values.yaml").exists()


def test_render_never_writes_the_kubeconfig(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    stack = yaml.safe_load((ROOT / "Pulumi.production.yaml").read_text())
    stack["config"]["aisp-cni:kubeconfig"] = {"secure": "v1:c2VjcmV0LWt1YmVjb25maWc="}
    (project / "Pulumi.production.yaml").write_text(yaml.safe_dump(stack))
    config = load_stack("production", project)
    files = render_files("production", config, render_stack("production"))
    assert config.kubeconfig is None  # encrypted in the file: never decrypted without the engine
    assert [name for name in files if "kubeconfig" in name] == []
    assert all("c2VjcmV0" not in text and "apiVersion: v1\nkind: Config" not in text
               for text in files.values())  # fmt: skip


def test_the_rendered_manifests_are_what_the_analyzer_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The Helm values and the k3d script sit beside manifests/, never in it.
    main(["render", "--stack", "production", "--out", str(tmp_path)])
    capsys.readouterr()
    manifests = str(tmp_path / "manifests")
    assert main(["connectivity", "list", "--manifests", manifests, "--enforcement", "cilium"]) == 0
    assert "error" not in capsys.readouterr().err
