""" "Did you mean" at every level of the stack config, and nearest pods for `connectivity query`."""

from __future__ import annotations

from typing import Any

import pytest

from cnistack.cli import main
from cnistack.config import ConfigError, parse_stack_config
from cnistack.netpol.policy_model import default_policy_model
from tests.factories import homelab_config, production_config


def _model_with(change: Any) -> dict[str, Any]:
    model = default_policy_model().model_dump(by_alias=True, mode="json")
    change(model)
    return model


def _typo_flow_from(model: dict[str, Any]) -> None:
    model["flows"][0]["form"] = model["flows"][0].pop("from")


def _typo_http_method(model: dict[str, Any]) -> None:
    model["flows"][4]["http"][0]["methd"] = model["flows"][4]["http"][0].pop("method")


TYPOS = [
    (
        homelab_config(clsuter={"kind": "k3d"}),
        "aisp-cni:clsuter: unknown key; did you mean 'cluster'?",
    ),
    (
        homelab_config(cluster={"agent": 2}),
        "aisp-cni:cluster.agent: unknown key; did you mean 'agents'? Allowed keys: agents, "
        "apiPort, k3sImage, kind, name, podCidr, servers, serviceCidr.",
    ),
    (
        production_config(cluster={"opensift": True}),
        "aisp-cni:cluster.opensift: unknown key; did you mean 'openshift'?",
    ),
    (
        production_config(cilium={"hubble": {"realy": True}}),
        "aisp-cni:cilium.hubble.realy: unknown key; did you mean 'relay'?",
    ),
    (
        production_config(cilium={"chart": {"verison": "1.15.0"}}),
        "aisp-cni:cilium.chart.verison: unknown key; did you mean 'version'?",
    ),
    (
        production_config(cilium={"chart": {"source": {"repositry": "https://x"}}}),
        "aisp-cni:cilium.chart.source.repositry: unknown key; did you mean 'repository'?",
    ),
    (
        homelab_config(networkPolicy={"flow": []}),
        "aisp-cni:networkPolicy.flow: unknown key; did you mean 'flows'?",
    ),
    (
        homelab_config(networkPolicy=_model_with(_typo_flow_from)),
        "flow 'ingress-to-frontend': from: Field required; form: unknown key; did you mean 'from'?",
    ),
    (
        homelab_config(networkPolicy=_model_with(_typo_http_method)),
        "flow 'frontend-reads-api': http[0].method: Field required; http[0].methd: unknown key; "
        "did you mean 'method'?",
    ),
]


@pytest.mark.parametrize(("raw", "message"), TYPOS, ids=[m.split(":")[1] for _, m in TYPOS])
def test_a_misspelt_key_gets_the_nearest_key_at_its_level(
    raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw)
    assert message in str(caught.value)


def test_an_unknown_pod_in_a_query_gets_the_nearest_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["connectivity", "query", "--stack", "production", "--from", "ai-apps/frontnd",
                 "--to", "ai-apps/api-server", "--port", "8080"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.splitlines()[-1]  # after the production stack's note
    assert err.startswith(
        "error: query: unknown pod 'ai-apps/frontnd'; nearest: ai-apps/frontend, "
        "ai-apps/api-server, "
    )
    assert err.count(", ") == 2  # three names
