"""The CNI readiness gate's decisions (cnistack/cni_rollout.py): what to wait for, and when a
workload counts as rolled out. The waiting itself runs against a real API server in
tests/test_engine.py and tests/test_engine_faults.py.

Objects below are shaped as the API returns them (status fields of apps/v1 DaemonSet and
Deployment, pod conditions as kube-scheduler and kwok write them).
"""

from __future__ import annotations

from typing import Any

import pytest

from cnistack.cilium import helm_values
from cnistack.cni_rollout import (
    RolloutPlan,
    Verdict,
    Workload,
    assess,
    rollout_plan,
    rollout_workloads,
    runs_version,
    stuck_message,
)
from cnistack.config import parse_stack_config
from cnistack.stack_files import load_stack
from tests.factories import homelab_config, production_config

AGENT_IMAGE = (
    "quay.io/cilium/cilium:v1.15.0@sha256:"
    "9cfd6a0a3a964780e73a11159f93cc363e616f7d9783608f62af6cfdf3759619"
)
AGENT = Workload("DaemonSet", "kube-system", "cilium", "cilium-agent", "1.15.0")
RELAY = Workload("Deployment", "kube-system", "hubble-relay", "hubble-relay", "1.15.0")


def test_production_waits_for_agent_operator_relay_and_ui_at_the_chart_version() -> None:
    config = load_stack("production")
    plan = rollout_plan(config, helm_values(config, None), None)
    assert plan.workloads == (
        Workload("DaemonSet", "kube-system", "cilium", "cilium-agent", "1.19.7"),
        Workload("Deployment", "kube-system", "cilium-operator", "cilium-operator", "1.19.7"),
        Workload("Deployment", "kube-system", "hubble-relay", "hubble-relay", "1.19.7"),
        # hubble-ui's images have their own version line (hubble-ui v0.13.x).
        Workload("Deployment", "kube-system", "hubble-ui", None, None),
        # From 1.16 the chart runs Envoy as its own DaemonSet by default (upgrade notes of 1.16);
        # its image follows cilium-envoy's own version line.
        Workload("DaemonSet", "kube-system", "cilium-envoy", None, None),
    )
    assert plan.timeout_s == 900
    assert (plan.release, plan.namespace, plan.version) == ("cilium", "kube-system", "1.19.7")
    assert set(plan.receipt) == {"release", "version", "values-sha256"}
    assert plan.receipt["version"] == "1.19.7"


def test_the_receipt_changes_with_the_values_and_only_with_them() -> None:
    base = parse_stack_config(production_config())
    same = parse_stack_config(production_config())
    audit = parse_stack_config(production_config(cilium={"policyAuditMode": True}))
    timeout = parse_stack_config(production_config(cilium={"rolloutTimeoutSeconds": 60}))

    def receipt(config: Any) -> dict[str, str]:
        return rollout_plan(config, helm_values(config, None), None).receipt

    assert receipt(base) == receipt(same)
    assert receipt(base)["values-sha256"] != receipt(audit)["values-sha256"]
    # The timeout is not a value of the release: changing it does not make `up` wait again.
    assert receipt(base) == receipt(timeout)


def test_a_homelab_without_hubble_waits_for_no_hubble_workload() -> None:
    config = parse_stack_config(
        homelab_config(
            cni="cilium", cilium={"hubble": {"enabled": False, "relay": False, "ui": False}}
        )
    )
    plan = rollout_plan(config, helm_values(config, None), None)
    assert [w.name for w in plan.workloads] == ["cilium", "cilium-operator", "cilium-envoy"]


def test_a_release_held_by_a_preflight_stage_is_awaited_at_its_deployed_version() -> None:
    # Stage 1 of a minor step keeps the release as deployed (upstream's preflight check runs
    # beside it): the gate must not wait for agents of the target version that is not rolled out.
    config = load_stack("production")
    plan = rollout_plan(config, helm_values(config, "1.15.0"), "1.18.11")
    assert plan.version == "1.18.11"
    assert plan.workloads[0] == Workload(
        "DaemonSet", "kube-system", "cilium", "cilium-agent", "1.18.11"
    )
    assert plan.receipt["version"] == "1.18.11"


def test_the_timeout_is_a_setting_with_bounds() -> None:
    config = parse_stack_config(production_config(cilium={"rolloutTimeoutSeconds": 45}))
    assert rollout_plan(config, helm_values(config, None), None).timeout_s == 45
    with pytest.raises(ValueError, match=r"cilium\.rolloutTimeoutSeconds"):
        parse_stack_config(production_config(cilium={"rolloutTimeoutSeconds": 0}))


def test_the_agent_rolls_one_node_at_a_time() -> None:
    config = parse_stack_config(production_config())
    # The chart's default is 2 (values.yaml `updateStrategy`).
    assert helm_values(config)["updateStrategy"] == {"rollingUpdate": {"maxUnavailable": 1}}


@pytest.mark.parametrize(
    ("version", "values", "envoy"),
    [
        # 1.15: only when set (values.yaml `envoy.enabled: false`).
        ("1.15.19", {}, False),
        ("1.15.19", {"envoy": {"enabled": True}}, True),
        # 1.16+ (templates/_helpers.tpl envoyDaemonSetEnabled): on for a new installation...
        ("1.16.19", {}, True),
        # ...off for one whose upgradeCompatibility predates 1.16, or without the L7 proxy.
        ("1.16.19", {"upgradeCompatibility": "1.15"}, False),
        ("1.19.7", {"l7Proxy": False}, False),
        ("1.19.7", {"envoy": {"enabled": False}}, False),
    ],
)
def test_the_envoy_daemonset_follows_the_charts_rule(
    version: str, values: dict[str, Any], envoy: bool
) -> None:
    names = [w.name for w in rollout_workloads(values, version, "kube-system")]
    assert ("cilium-envoy" in names) is envoy


def test_runs_version_reads_the_tag_not_a_prefix() -> None:
    assert runs_version(AGENT_IMAGE, "1.15.0")
    assert runs_version("quay.io/cilium/cilium:v1.15.0", "1.15.0")
    assert not runs_version(AGENT_IMAGE, "1.15.1")
    assert not runs_version("quay.io/cilium/cilium:v1.15.01", "1.15.0")
    assert not runs_version(None, "1.15.0")


# --- verdicts ---------------------------------------------------------------------------------


def _daemonset(desired: int, ready: int, updated: int, generation: int = 2) -> dict[str, Any]:
    return {
        "metadata": {"name": "cilium", "namespace": "kube-system", "generation": generation},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "cilium"}},
            "template": {"spec": {"containers": [{"name": "cilium-agent", "image": AGENT_IMAGE}]}},
        },
        "status": {
            "observedGeneration": 2,
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": desired,
            "updatedNumberScheduled": updated,
            "numberReady": ready,
            "numberAvailable": ready,
        },
    }


def _pod(name: str, node: str | None, ready: bool, image: str = AGENT_IMAGE) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = []
    if node is None:
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/6 nodes are available: 6 node(s) didn't match Pod's node "
                "affinity/selector.",
            }
        )
    else:
        conditions.append({"type": "PodScheduled", "status": "True"})
        conditions.append(
            {"type": "Ready", "status": "True"}
            if ready
            else {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}
        )
    return {
        "metadata": {"name": name, "namespace": "kube-system"},
        "spec": {
            **({"nodeName": node} if node else {}),
            "containers": [{"name": "cilium-agent", "image": image}],
        },
        "status": {"phase": "Running" if node else "Pending", "conditions": conditions},
    }


def test_a_daemonset_with_every_agent_ready_on_the_version_is_done() -> None:
    pods = [_pod(f"cilium-{i}", f"node-{i}", ready=True) for i in range(3)]
    assert assess(AGENT, _daemonset(3, 3, 3), pods) == Verdict(
        AGENT, True, "daemonset kube-system/cilium: 3 of 3 ready, 3 updated"
    )


def test_helm_would_accept_two_of_three_agents_the_gate_names_the_third() -> None:
    pods = [_pod("cilium-a", "node-0", True), _pod("cilium-b", "node-1", True)]
    pods.append(_pod("cilium-c", "node-2", ready=False))
    verdict = assess(AGENT, _daemonset(3, 2, 3), pods)
    assert not verdict.done
    assert verdict.pods == ("cilium-c on node-2: not ready (ContainersNotReady)",)


def test_an_agent_on_the_old_version_is_named_with_its_image() -> None:
    old = "quay.io/cilium/cilium:v1.14.6@sha256:aaaa"
    pods = [_pod("cilium-a", "node-0", True), _pod("cilium-b", "node-1", True, image=old)]
    verdict = assess(AGENT, _daemonset(2, 2, 1), pods)
    assert not verdict.done
    assert verdict.pods == (f"cilium-b on node-1: runs {old}, not v1.15.0",)


def test_a_daemonset_scheduled_nowhere_or_not_yet_observed_is_not_done() -> None:
    assert assess(AGENT, _daemonset(0, 0, 0), []).summary == (
        "daemonset kube-system/cilium: scheduled on no node"
    )
    unseen = _daemonset(3, 3, 3, generation=3)
    assert assess(AGENT, unseen, []).summary == (
        "daemonset kube-system/cilium: generation 3 not seen yet"
    )
    assert assess(AGENT, None, []).summary == "daemonset kube-system/cilium: not created"


def test_a_one_replica_deployment_with_its_pod_pending_is_not_done() -> None:
    # What Helm's wait accepts (replicas 1 - maxUnavailable 1 = 0 ready expected).
    relay = {
        "metadata": {"name": "hubble-relay", "namespace": "kube-system", "generation": 1},
        "spec": {
            "replicas": 1,
            "template": {
                "spec": {
                    "containers": [
                        {"name": "hubble-relay", "image": "quay.io/cilium/hubble-relay:v1.15.0"}
                    ]
                }
            },
        },
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1},
    }
    pod = _pod("hubble-relay-5d7f9-x2k4q", None, ready=False)
    pod["spec"]["containers"] = [
        {"name": "hubble-relay", "image": "quay.io/cilium/hubble-relay:v1.15.0"}
    ]
    verdict = assess(RELAY, relay, [pod])
    assert not verdict.done
    assert verdict.summary == "deployment kube-system/hubble-relay: 0 of 1 ready, 1 updated"
    assert verdict.pods == (
        "hubble-relay-5d7f9-x2k4q: not scheduled (0/6 nodes are available: 6 node(s) didn't "
        "match Pod's node affinity/selector.)",
    )


def test_the_stuck_message_names_each_pod_and_the_way_out() -> None:
    plan = RolloutPlan("cilium", "kube-system", "1.15.0", (AGENT, RELAY), 60, {})
    verdicts = [
        Verdict(
            AGENT,
            False,
            "daemonset kube-system/cilium: 1 of 2 ready, 2 updated",
            ("cilium-b on node-1: not ready (ContainersNotReady)",),
        ),
        Verdict(RELAY, True, "deployment kube-system/hubble-relay: 1 of 1 ready, 1 updated"),
    ]
    assert stuck_message(plan, verdicts, 61.2, None) == (
        "Cilium 1.15.0 is not rolled out after 61 s "
        "(aisp-cni:cilium.rolloutTimeoutSeconds = 60); not ready:\n"
        "  daemonset kube-system/cilium: 1 of 2 ready, 2 updated\n"
        "    cilium-b on node-1: not ready (ContainersNotReady)\n"
        "The release is applied; what needs Cilium (its network policies) is not. Fix the "
        'cause, then run `pulumi up` again (docs/recovery.md, "A stuck Cilium rollout").'
    )
