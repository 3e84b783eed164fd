"""__main__.py reads the stack config through `pulumi.Config` only, as the engine passes it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml
from pulumi.runtime.config import set_all_config

from cnistack.config import ConfigError, StackConfig
from components.stack_config import read_stack_config
from tests.conftest import ROOT, run_under_mocks

INTERNALS = {"CONFIG", "get_config_env", "set_all_config"}


def _shell_sources() -> list[Path]:
    return [ROOT / "__main__.py", *sorted((ROOT / "components").glob("*.py"))]


@pytest.mark.parametrize("path", _shell_sources(), ids=lambda p: p.name)
def test_the_shell_uses_no_sdk_config_internals(path: Path) -> None:
    tree = ast.parse(path.read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert "pulumi.runtime.config" not in modules
    assert names & INTERNALS == set()


def _engine_env(monkeypatch: pytest.MonkeyPatch, config: dict[str, str], secret: list[str]) -> None:
    # How the language host hands config to the program: environment variables only.
    set_all_config({}, [])
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(secret))


PRODUCTION = {
    "aisp-cni:cni": "cilium",
    "aisp-cni:cluster": json.dumps(
        {"kind": "existing", "name": "gtt-prod", "server": "https://api.internal:6443"}
    ),
    "aisp-cni:cilium": json.dumps({"k8sServiceHost": "api.internal", "k8sServicePort": 6443}),
    "aisp-cni:kubeconfig": "apiVersion: v1\nkind: Config\n",
    "kubernetes:context": "not ours",
}


def test_config_as_the_engine_passes_it_with_a_secret_kubeconfig(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _engine_env(monkeypatch, PRODUCTION, ["aisp-cni:kubeconfig"])
    config = read_stack_config("production", tmp_path)
    assert isinstance(config, StackConfig)
    assert config.cluster.name == "gtt-prod"
    assert config.kubeconfig is not None
    assert config.kubeconfig.get_secret_value() == "apiVersion: v1\nkind: Config\n"


def test_a_kubeconfig_the_engine_holds_in_plain_text_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _engine_env(monkeypatch, PRODUCTION, [])
    with pytest.raises(ConfigError) as caught:
        read_stack_config("production", tmp_path)
    assert "aisp-cni:kubeconfig: stored in plain text" in str(caught.value)


def test_a_misspelt_root_key_of_the_stack_file_gets_a_suggestion(tmp_path: Path) -> None:
    stack = {"config": {"aisp-cni:cni": "flannel", "aisp-cni:clsuter": {"kind": "k3d"}}}
    (tmp_path / "Pulumi.homelab.yaml").write_text(yaml.safe_dump(stack))
    run = run_under_mocks(
        "homelab",
        lambda: {"config": read_stack_config(project_dir=tmp_path)},
        {"clsuter": {"kind": "k3d"}},
    )
    assert isinstance(run.error, ConfigError)
    assert "aisp-cni:clsuter: unknown key; did you mean 'cluster'?" in str(run.error)
