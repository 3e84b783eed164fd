"""What `pulumi destroy` does, per stack, as the options the engine receives (docs/destroy.md)."""

from __future__ import annotations

from tests.conftest import run_program

NAMESPACE = "kubernetes:core/v1:Namespace"
PROVIDER = "pulumi:providers:kubernetes"
RELEASE = "kubernetes:helm.sh/v3:Release"


def _retained(stack: str) -> dict[str, bool]:
    run = run_program(stack)
    return {
        r.inputs["metadata"]["name"]: r.options["retainOnDelete"] for r in run.of_type(NAMESPACE)
    }


def test_only_the_namespace_holding_data_is_retained_on_delete() -> None:
    expected = {"ai-apps": False, "ai-inference": False, "storage": True}
    assert _retained("homelab") == expected
    assert _retained("production") == expected


def test_homelab_destroy_drops_objects_of_a_cluster_that_is_gone() -> None:
    run = run_program("homelab")
    assert run.one(PROVIDER).inputs["deleteUnreachable"] == "true"
    assert run.named("cluster-k3d").inputs["delete"] == "k3d cluster delete aisp-homelab"


def test_production_destroy_stops_on_an_unreachable_cluster_and_on_protected_objects() -> None:
    run = run_program("production")
    assert run.one(PROVIDER).inputs["deleteUnreachable"] == "false"
    assert run.one(RELEASE).options["protect"] is True
    assert {r.options["protect"] for r in run.of_type(NAMESPACE)} == {True}
