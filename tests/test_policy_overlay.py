"""`networkPolicy: {extends: default, add, drop}`: a stack changes the default model."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from cnistack.config import ConfigError
from cnistack.netpol.policy_model import default_policy_model
from cnistack.netpol.renderer import render_policies
from cnistack.stack_checks import validate_stack_config
from tests.conftest import ROOT
from tests.factories import homelab_config, production_config

DEFAULT_FLOWS = [
    "ingress-to-frontend", "ingress-to-open-webui", "router-to-frontend", "router-to-open-webui",
    "frontend-reads-api", "ai-apps-to-postgresql", "api-server-to-vllm", "webui-generates",
]  # fmt: skip
WEBUI_LISTS_MODELS = {
    "name": "webui-lists-models",
    "from": "ai-inference/open-webui",
    "to": "ai-apps/api-server",
    "ports": [{"port": 8080}],
    "http": [{"method": "GET", "path": "/api/v1/models"}],
}


def _flows(network_policy: dict[str, Any]) -> list[str]:
    config = validate_stack_config(production_config(networkPolicy=network_policy))
    return [flow.name for flow in config.network_policy.flows]


def _cnps(network_policy: dict[str, Any]) -> set[tuple[str, str]]:
    config = validate_stack_config(production_config(networkPolicy=network_policy))
    rendered = render_policies(config.network_policy, config.capabilities, config.flavour)
    return {
        (m["metadata"]["namespace"], m["metadata"]["name"])
        for m in rendered.manifests
        if m["kind"] == "CiliumNetworkPolicy"
    }


def test_the_default_model_is_the_one_the_overlays_start_from() -> None:
    assert [flow.name for flow in default_policy_model().flows] == DEFAULT_FLOWS


def test_an_added_flow_extends_the_default_model() -> None:
    overlay = {"extends": "default", "add": {"flows": [WEBUI_LISTS_MODELS]}}
    assert _flows(overlay) == [*DEFAULT_FLOWS, "webui-lists-models"]
    # Rendered for production's flavour (OpenShift): its router flows, from host-network
    # sources, are CiliumNetworkPolicies with the host/remote-node entities.
    assert _cnps(overlay) == {
        ("ai-apps", "frontend-reads-api-ingress"),
        ("ai-apps", "router-to-frontend-ingress"),
        ("ai-apps", "webui-lists-models-ingress"),
        ("ai-inference", "router-to-open-webui-ingress"),
        ("ai-inference", "webui-generates-ingress"),
    }


def test_a_dropped_flow_is_gone_and_nothing_else() -> None:
    overlay = {"extends": "default", "drop": {"flows": ["frontend-reads-api"]}}
    assert _flows(overlay) == [f for f in DEFAULT_FLOWS if f != "frontend-reads-api"]
    assert _cnps(overlay) == {
        ("ai-apps", "router-to-frontend-ingress"),
        ("ai-inference", "router-to-open-webui-ingress"),
        ("ai-inference", "webui-generates-ingress"),
    }


def test_drop_and_add_redefine_a_flow() -> None:
    narrower = {**WEBUI_LISTS_MODELS, "name": "frontend-reads-api", "from": "ai-apps/frontend"}
    overlay = {
        "extends": "default",
        "drop": {"flows": ["frontend-reads-api"]},
        "add": {"flows": [narrower]},
    }
    config = validate_stack_config(production_config(networkPolicy=overlay))
    (flow,) = [f for f in config.network_policy.flows if f.name == "frontend-reads-api"]
    assert flow.l7_rules == ("GET /api/v1/models",)


def test_added_namespace_and_workloads_can_be_flow_endpoints() -> None:
    overlay = {
        "extends": "default",
        "add": {
            "namespaces": [{"name": "monitoring"}],
            "workloads": [
                {"name": "prometheus", "namespace": "monitoring", "labels": {"app": "prometheus"}},
            ],
            "flows": [
                {"name": "prometheus-scrapes-vllm", "from": "monitoring/prometheus",
                 "to": "ai-inference/vllm", "ports": [{"port": 8000}]},
            ],
        },
    }  # fmt: skip
    config = validate_stack_config(homelab_config(networkPolicy=overlay))
    assert [ns.name for ns in config.network_policy.namespaces][-1] == "monitoring"
    assert len(config.network_policy.workloads) == len(default_policy_model().workloads) + 1
    assert [f.name for f in config.network_policy.flows][-1] == "prometheus-scrapes-vllm"


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        (
            {"extends": "default", "drop": {"flows": ["frontend-read-api"]}},
            "aisp-cni:networkPolicy.drop.flows: no flow 'frontend-read-api' in the default "
            "model; nearest: frontend-reads-api, ",
        ),
        (
            {
                "extends": "default",
                "add": {"flows": [{**WEBUI_LISTS_MODELS, "name": "webui-generates"}]},
            },
            "aisp-cni:networkPolicy.add.flows: flow 'webui-generates' is already in the default "
            "model; drop it as well to redefine it",
        ),
        (
            {"extends": "default", "add": {"namespaces": [{"name": "storage"}]}},
            "aisp-cni:networkPolicy.add.namespaces: namespace 'storage' is already in the "
            "default model",
        ),
        (
            {
                "extends": "default",
                "add": {"flows": [{**WEBUI_LISTS_MODELS, "to": "ai-apps/nope"}]},
            },
            "aisp-cni:networkPolicy: flow 'webui-lists-models': unknown workload 'ai-apps/nope' "
            "in to",
        ),
        (
            {"extends": "default", "drop": {"flow": ["webui-generates"]}},
            "aisp-cni:networkPolicy: drop.flow: unknown key; did you mean 'flows'?",
        ),
        (
            {"extends": "platform"},
            "aisp-cni:networkPolicy: extends: Input should be 'default'",
        ),
    ],
    ids=["drop-unknown", "add-existing-flow", "add-existing-ns", "dangling", "typo", "base"],
)
def test_a_bad_overlay_is_refused_naming_the_key(overlay: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(homelab_config(networkPolicy=overlay))
    assert message in str(caught.value)


def test_the_readme_example_adds_one_flow_to_production() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- add-a-flow -->\n```yaml\n(.*?)```", readme, re.DOTALL)
    assert block is not None, "README.md lost its add-a-flow example"
    stack = yaml.safe_load((ROOT / "Pulumi.production.yaml").read_text())["config"]
    stack.update(yaml.safe_load(block.group(1)))
    raw = {key.removeprefix("aisp-cni:"): value for key, value in stack.items()}
    config = validate_stack_config(raw)
    assert [flow.name for flow in config.network_policy.flows] == [
        *DEFAULT_FLOWS,
        "webui-lists-models",
    ]
