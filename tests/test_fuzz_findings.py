"""The inputs fuzzing (tests/test_fuzz.py) found crashing or mis-reporting, kept as exact cases.

Before each fix these ended in a traceback (TypeError/AttributeError/ValueError) or in an error
message split over several lines; now each is one clean error naming the key or the object.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest

from cnistack.cli.connectivity_command import main as connectivity_main
from cnistack.config import ConfigError
from cnistack.stack_checks import validate_stack_config
from tests.factories import homelab_config, production_config

NAMESPACE_AND_POD = """\
apiVersion: v1
kind: Namespace
metadata: {name: storage}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: storage, labels: {app: db}}
---
"""


@pytest.mark.parametrize(
    ("cilium", "line"),
    [
        # A key with a line break used to start a second, key-less line of the error.
        ({"\n": None}, "aisp-cni:cilium.\\n: unknown key"),
        # "" passed validation, then helm_values raised "unreachable".
        ({"k8sServiceHost": ""}, "aisp-cni:cilium.k8sServiceHost: String should match pattern"),
    ],
)
def test_stack_config_findings(cilium: dict[str, Any], line: str) -> None:
    with pytest.raises(ConfigError) as raised:
        validate_stack_config(production_config(cilium=cilium))
    lines = str(raised.value).split("\n")
    assert len(lines) == 2
    assert lines[1].startswith(f"  {line}")


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            "metadata: {name: p, namespace: storage}\n"
            "spec: {podSelector: {matchLabels: [app, db]}}\n",
            "NetworkPolicy storage/p: spec.podSelector.matchLabels: must be a mapping",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: [NetworkPolicy]\nmetadata: {name: p}\n",
            "kind must be a string, got <list>",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: [{name: p}]\n",
            "NetworkPolicy: metadata must be a mapping",
        ),
        (
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
            "metadata: {name: p, namespace: storage}\n"
            "spec: {endpointSelector: {}, ingress: [{fromEntities: 7}]}\n",
            "CiliumNetworkPolicy storage/p: spec.ingress[0].fromEntities: must be a list (got int)",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            "metadata: {name: p, namespace: storage}\n"
            "spec: {podSelector: {}, ingress: [{from: true}]}\n",
            "NetworkPolicy storage/p: spec.ingress[0].from: must be a list (got bool)",
        ),
    ],
)
def test_manifest_findings_exit_2_with_one_line(tmp_path: Path, document: str, error: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(NAMESPACE_AND_POD + document, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = connectivity_main(["list", "--manifests", str(path), "--enforcement", "cilium"])
    assert (code, err.getvalue()) == (2, f"error: {path}: {error}\n")


def test_a_model_the_cluster_cannot_enforce_is_a_config_error() -> None:
    # Found by fuzzing the policy model (a flow's `flavours` deleted): the router's hostNetwork
    # source on K3s + kube-router has no rendering; the stack is refused before any resource.
    overlay = {
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
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(homelab_config(networkPolicy=overlay))
    assert str(caught.value) == (
        "invalid stack config:\n"
        "  aisp-cni:networkPolicy: flow 'router-to-open-webui': a hostNetwork source needs "
        "Cilium's host/remote-node entities or OpenShift's ingress policy-group label; cluster "
        "flavour 'k3s' with enforcer 'kube-router' has neither"
    )
