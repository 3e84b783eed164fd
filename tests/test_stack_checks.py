"""The stack's one validation step (cnistack/stack_checks.py): the model, then rendering.

`parse_stack_config` builds the typed model alone (no renderer runs); `validate_stack_config`,
which the program, `render` and the analyzer's stack adapter read through, also refuses what only
rendering tells: extraValues against the chart, policies this cluster cannot enforce.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cnistack.config import ConfigError, parse_stack_config
from cnistack.stack_checks import check_stack, validate_stack_config
from cnistack.stack_files import load_stack
from tests.factories import homelab_config, production_config

HOST_NETWORK_ON_K3S: dict[str, Any] = {
    "extends": "default",
    "drop": {"flows": ["router-to-open-webui"]},
    "add": {
        "flows": [
            {
                "name": "router-to-open-webui",
                "from": {"hostNetwork": "openshift-ingress"},
                "to": "ai-inference/open-webui",
                "ports": [{"port": 8080, "protocol": "TCP"}],
            }
        ]
    },
}
NETWORK_POLICY_ERROR = (
    "invalid stack config:\n"
    "  aisp-cni:networkPolicy: flow 'router-to-open-webui': a hostNetwork source needs "
    "Cilium's host/remote-node entities or OpenShift's ingress policy-group label; cluster "
    "flavour 'k3s' with enforcer 'kube-router' has neither"
)
EXTRA_VALUES_ERROR = (
    "invalid stack config:\n"
    "  aisp-cni:cilium.extraValues.routingMod: not a value of the cilium chart 1.19.7; "
    "did you mean 'routingMode'?"
)


def test_the_model_is_built_without_rendering() -> None:
    raw = production_config(cilium={"extraValues": {"routingMod": "x"}})
    config = parse_stack_config(raw)
    assert config.cilium_settings is not None
    assert config.cilium_settings.extra_values == {"routingMod": "x"}
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(raw)
    assert str(caught.value) == EXTRA_VALUES_ERROR


def test_a_policy_the_cluster_cannot_enforce_is_a_model_but_not_a_stack() -> None:
    config = parse_stack_config(homelab_config(networkPolicy=HOST_NETWORK_ON_K3S))
    assert "router-to-open-webui" in [flow.name for flow in config.network_policy.flows]
    with pytest.raises(ConfigError) as caught:
        check_stack(config)
    assert str(caught.value) == NETWORK_POLICY_ERROR


def test_a_good_stack_passes_the_step_unchanged() -> None:
    config = parse_stack_config(production_config())
    assert check_stack(config) is config


def test_a_field_error_is_reported_before_any_rendering() -> None:
    # The model refuses first; the rendering checks never see a half-built stack.
    raw = production_config(cni="weave", cilium={"extraValues": {"routingMod": "x"}})
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(raw)
    assert str(caught.value) == (
        "invalid stack config:\n  aisp-cni:cni: Input should be 'flannel' or 'cilium' (got 'weave')"
    )


def test_a_stack_file_goes_through_the_step(tmp_path: Path) -> None:
    # load_stack is what `render` and the analyzer's stack adapter read a stack with.
    raw = production_config(cilium={"extraValues": {"routingMod": "x"}})
    document = {"config": {f"aisp-cni:{key}": value for key, value in raw.items()}}
    (tmp_path / "Pulumi.staging.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError) as caught:
        load_stack("staging", tmp_path)
    assert str(caught.value) == EXTRA_VALUES_ERROR


def _l7_flow(port: dict[str, Any]) -> dict[str, Any]:
    return {
        "extends": "default",
        "add": {
            "flows": [
                {
                    "name": "frontend-posts-logs",
                    "from": "ai-apps/frontend",
                    "to": "ai-apps/api-server",
                    "ports": [port],
                    "http": [{"method": "POST", "path": "/logs"}],
                }
            ]
        },
    }


@pytest.mark.parametrize(
    ("port", "why"),
    [
        (
            {"port": 514, "protocol": "UDP"},
            "aisp-cni:networkPolicy: add.flows[0]: flow 'frontend-posts-logs': "
            "http rules need TCP ports, got "
            "UDP/514 (L7 rules only apply to TCP)",
        ),
        (
            {"port": 0, "protocol": "TCP"},
            "aisp-cni:networkPolicy: add.flows[0]: flow 'frontend-posts-logs': "
            "ports[0].port: Input should be "
            "greater than or equal to 1",
        ),
    ],
)
def test_an_l7_rule_the_agent_would_refuse_is_refused_at_config_time(
    port: dict[str, Any], why: str
) -> None:
    # The analyzer leaves such a CiliumNetworkPolicy out of a manifest or live cluster, as the
    # agent does (analyzer/tests/test_rejected.py); the program never renders one: its stacks
    # refuse the flow, naming the key, before anything is registered.
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(production_config(networkPolicy=_l7_flow(port)))
    assert str(caught.value) == f"invalid stack config:\n  {why}"
