"""Cilium's policy semantics per version: where `cilium@1.19` (the production default's line)
differs from `cilium@1.15` (ADR-013's line, the oracle's), each case with its upstream source."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reachability import Analyzer, InputError, load_documents
from reachability.cli import main
from reachability.engine import Request
from reachability.profiles import CILIUM_1_19, profile

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "x", "labels": {"app": name}},
        "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
    }


def cnp(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "p", "namespace": "x"},
        "spec": {"endpointSelector": {"matchLabels": {"app": "a"}}, **spec},
    }


def allowed(policy: dict[str, Any], name: str, src: str) -> bool:
    docs = [(d, "test") for d in (NAMESPACE, pod("a"), pod("b"), pod("c"), policy)]
    analyzer = Analyzer(load_documents(docs), name)
    return analyzer.query(f"x/{src}", "x/a", Request("TCP", 80)).allowed


FROM_B = {"fromEndpoints": [{"matchLabels": {"app": "b"}}]}


def test_enable_default_deny_false_adds_rules_without_isolating_from_1_16() -> None:
    # pkg/policy/repository.go (v1.16.19) reads it; the 1.15 CRD prunes the field.
    policy = cnp({"enableDefaultDeny": {"ingress": False}, "ingress": [FROM_B]})
    assert [allowed(policy, name, "c") for name in ("cilium@1.15", "cilium@1.19")] == [
        False,
        True,
    ]
    assert allowed(policy, "cilium@1.19", "b")


def test_an_empty_peer_list_selects_no_one_from_1_16() -> None:
    # upgrade.rst of v1.16.19: "an empty slice ... will not select any identity".
    policy = cnp({"ingress": [{"fromEndpoints": [], "toPorts": [{"ports": [{"port": "80"}]}]}]})
    assert [allowed(policy, name, "b") for name in ("cilium@1.15", "cilium@1.19")] == [
        True,
        False,
    ]


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("cilium@1.15",
         "fromRequires (deprecated in Cilium 1.17, refused from 1.19) is not analysed"),
        ("cilium@1.19", "Cilium 1.19's CRD refuses a non-empty fromRequires (maxItems 0)"),
    ],
)  # fmt: skip
def test_requires_is_refused_never_under_reported(name: str, why: str) -> None:
    # The shape where reading it as "no peer" said deny while Cilium allows: only a requirement
    # as peer, with toPorts.
    requires = {"fromRequires": [{"matchLabels": {"env": "prod"}}]}
    policy = cnp({"ingress": [{**requires, "toPorts": [{"ports": [{"port": "80"}]}]}]})
    with pytest.raises(InputError) as caught:
        allowed(policy, name, "b")
    assert f"spec.ingress[0].fromRequires: {why}; remove it" in str(caught.value)


def test_the_1_19_profile_names_its_version() -> None:
    assert profile("cilium@1.19") is CILIUM_1_19
    assert (CILIUM_1_19.version, CILIUM_1_19.end_port, CILIUM_1_19.enable_default_deny) == (
        "1.19",
        True,
        True,
    )


def test_diff_shows_what_an_upgrade_changes(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = cnp({"enableDefaultDeny": {"ingress": False}, "ingress": [FROM_B]})
    path = tmp_path / "m.yaml"
    path.write_text(
        "\n---\n".join(json.dumps(d) for d in (NAMESPACE, pod("a"), pod("b"), pod("c"), policy))
    )
    code = main(["diff", f"manifests:{path}@cilium@1.15", f"manifests:{path}@cilium@1.19",
                 "--format", "json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert (code, doc["a"], doc["b"]) == (0, "cilium@1.15", "cilium@1.19")
    assert {(f["from"], f["to"]) for f in doc["added"]} >= {("x/c", "x/a")}
