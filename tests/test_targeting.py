"""Safe targeting: an existing cluster needs an explicit kubeconfig or context, and the API
server it resolves to must be the one the stack declares, checked before any registration."""

from __future__ import annotations

import runpy

import pytest
import yaml

from cnistack.config import ConfigError, parse_stack_config
from cnistack.targeting import (
    TargetError,
    check_secrets_passphrase,
    check_target,
    kubeconfig_server,
    same_server,
)
from tests.conftest import ROOT, USER_KUBECONFIG, run_under_mocks
from tests.factories import homelab_config, production_config

HOMELAB_ONLY = yaml.safe_dump(
    {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "gtt-prod",
        "clusters": [{"name": "lab", "cluster": {"server": "https://127.0.0.1:6550"}}],
        # Named like production, pointing at the laptop: the dangerous case.
        "contexts": [{"name": "gtt-prod", "context": {"cluster": "lab", "user": "me"}}],
        "users": [{"name": "me", "user": {}}],
    }
)

WRONG_TARGET = (
    "refusing to deploy stack cluster 'gtt-prod': the kubeconfig's context 'gtt-prod' points at "
    "https://127.0.0.1:6550, but aisp-cni:cluster.server declares "
    "https://api.gtt-prod.internal:6443. Fix the kubeconfig or context; nothing was changed."
)


def test_existing_cluster_without_kubeconfig_or_context_is_refused() -> None:
    raw = production_config(cluster={"context": None})
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    assert str(err.value) == (
        "invalid stack config:\n  aisp-cni:kubeconfig: an existing cluster needs an explicit "
        "kubeconfig (pulumi config set --secret aisp-cni:kubeconfig < FILE) or cluster.context; "
        "the ambient kube context may point at another cluster"
    )


def test_existing_cluster_without_server_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(production_config(cluster={"server": None}))
    assert str(err.value) == (
        "invalid stack config:\n  aisp-cni:cluster.server: declare the API server this stack "
        "targets (e.g. https://api.gtt-prod.internal:6443); the program refuses a kubeconfig "
        "that points elsewhere"
    )


def test_server_must_be_an_https_url() -> None:
    with pytest.raises(ConfigError, match=r"aisp-cni:cluster\.server: must be the API server's"):
        parse_stack_config(production_config(cluster={"server": "api.gtt-prod.internal:6443"}))


def test_secret_kubeconfig_pointing_elsewhere_is_refused_naming_both_servers() -> None:
    config = parse_stack_config(production_config(kubeconfig=HOMELAB_ONLY))
    with pytest.raises(TargetError) as err:
        check_target(config, env={})
    assert str(err.value) == WRONG_TARGET


def test_declared_context_of_the_users_kubeconfig_is_used_not_the_current_one() -> None:
    # USER_KUBECONFIG's current-context is the homelab; the stack names gtt-prod.
    env = {"KUBECONFIG": str(USER_KUBECONFIG)}
    config = parse_stack_config(production_config())
    assert check_target(config, env=env) == "https://api.gtt-prod.internal:6443"
    assert kubeconfig_server(None, None, env) == ("homelab", "https://127.0.0.1:6550")


def test_unknown_context_and_missing_kubeconfig_are_named() -> None:
    config = parse_stack_config(production_config(cluster={"context": "nope"}))
    with pytest.raises(
        TargetError, match=r"^context 'nope' is not in .*kubeconfig-gtt-prod\.yaml$"
    ):
        check_target(config, env={"KUBECONFIG": str(USER_KUBECONFIG)})
    with pytest.raises(TargetError, match=r"^no kubeconfig found \(looked at /nonexistent/k\)$"):
        check_target(config, env={"KUBECONFIG": "/nonexistent/k"})


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("https://API.gtt-prod.internal:6443", "https://api.gtt-prod.internal:6443/", True),
        ("https://api.example", "https://api.example:443", True),
        ("https://api.example:6443", "https://api.example:443", False),
        ("https://api.gtt-prod.internal:6443", "https://api.gtt-prod.internal.evil:6443", False),
    ],
)
def test_same_server(a: str, b: str, same: bool) -> None:
    assert same_server(a, b) is same


def test_k3d_stacks_need_no_check() -> None:
    assert check_target(parse_stack_config(homelab_config()), env={}) is None


def test_program_stops_before_any_registration_on_a_wrong_target() -> None:
    run = run_under_mocks(
        "production",
        lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
        {"kubeconfig": HOMELAB_ONLY},
    )
    assert isinstance(run.error, TargetError)
    assert str(run.error) == WRONG_TARGET
    assert run.registrations == []


def test_lab_passphrase_never_protects_production_secrets() -> None:
    config = parse_stack_config(production_config())
    with pytest.raises(TargetError) as err:
        check_secrets_passphrase(
            config, env={"PULUMI_CONFIG_PASSPHRASE": "homelab-only-passphrase"}
        )
    assert str(err.value) == (
        "stack cluster 'gtt-prod' holds production secrets: set your own "
        "PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE), or use another secrets "
        "provider; the Makefile's lab passphrase is for the homelab only"
    )
    check_secrets_passphrase(config, env={"PULUMI_CONFIG_PASSPHRASE": "my own"})
    check_secrets_passphrase(
        parse_stack_config(homelab_config()),
        env={"PULUMI_CONFIG_PASSPHRASE": "homelab-only-passphrase"},
    )


def test_makefile_lab_passphrase_is_the_one_the_program_refuses() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "LAB_PASSPHRASE := homelab-only-passphrase\n" in makefile
    assert "export PULUMI_CONFIG_PASSPHRASE ?=" not in makefile


def test_a_json_kubeconfig_stays_a_kubeconfig() -> None:
    # kubectl reads JSON kubeconfigs too (the local control plane writes one).
    text = '{"apiVersion": "v1", "kind": "Config", "clusters": []}'
    config = parse_stack_config(production_config(kubeconfig=text))
    assert config.kubeconfig is not None
    assert config.kubeconfig.get_secret_value() == text
