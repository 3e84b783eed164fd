"""Order under failure: a namespace's default-deny is applied only after all of its allows.

An `up` cut off between the two (killed, lost API server) would otherwise leave a namespace
isolated without DNS or its flows: every pod in it cut off. The engine runs a resource only
after everything it depends on (and deletes in the reverse order), so the deny must depend on
each allow of its namespace. Checked here on the dependencies the engine receives, and on a real
cluster under kills in tests/test_engine_faults.py.
"""

from __future__ import annotations

import pytest

from tests.conftest import run_program

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
CNP = "kubernetes:cilium.io/v2:CiliumNetworkPolicy"


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[1]


def test_production_ai_apps_deny_waits_for_dns_and_every_flow_of_the_namespace() -> None:
    run = run_program("production")
    (deny,) = [
        r
        for r in run.of_type(NETWORK_POLICY)
        if r.inputs["metadata"]["name"] == "default-deny"
        and r.inputs["metadata"]["namespace"] == "ai-apps"
    ]
    # The ADR model's ai-apps side: DNS, the egress of its three outgoing flows and the ingress
    # of its two L7 flows (CiliumNetworkPolicies on production), and its own namespace.
    assert sorted(map(_name, deny.options["dependencies"])) == [
        "platform-cnp-ai-apps-frontend-reads-api-ingress",
        "platform-cnp-ai-apps-router-to-frontend-ingress",
        "platform-np-ai-apps-ai-apps-to-postgresql-egress",
        "platform-np-ai-apps-allow-dns",
        "platform-np-ai-apps-api-server-to-vllm-egress",
        "platform-np-ai-apps-frontend-reads-api-egress",
        "platform-ns-ai-apps",
    ]


@pytest.mark.parametrize("stack", ["homelab", "production"])
def test_every_default_deny_depends_on_every_allow_of_its_namespace(stack: str) -> None:
    run = run_program(stack)
    policies = run.of_type(NETWORK_POLICY) + run.of_type(CNP)
    denies = [p for p in policies if p.inputs["metadata"]["name"] == "default-deny"]
    assert len(denies) == 3, [d.inputs["metadata"] for d in denies]
    for deny in denies:
        namespace = deny.inputs["metadata"]["namespace"]
        allows = {
            p.name
            for p in policies
            if p.inputs["metadata"]["namespace"] == namespace and p is not deny
        }
        assert f"platform-np-{namespace}-allow-dns" in allows
        missing = allows - set(map(_name, deny.options["dependencies"]))
        assert not missing, f"{stack}: {namespace}/default-deny may be applied before {missing}"
