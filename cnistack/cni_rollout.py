"""When an install or upgrade of Cilium counts as done: the readiness gate (pure part).

ADR-013 installs Cilium and then runs `cilium status --wait`: the CNI is in place when its agents
and operator run the new version and are ready, not when Helm returns. Helm's own `--wait` is
weaker (helm.sh/helm/v3 pkg/kube/ready.go, v3.18.6, the Helm inside the Kubernetes plugin):
- a Deployment counts as ready with `replicas - maxUnavailable` ready pods of its new ReplicaSet:
  0 for the one-replica hubble-relay and hubble-ui (chart 1.15 `maxUnavailable: 1`);
- a DaemonSet counts as ready with `desired - maxUnavailable` ready pods: 4 of 6 agents with the
  chart's `maxUnavailable: 2`.
And when its timeout trips, the release is marked failed with "timed out waiting for the
condition", naming no pod (pulumi/pulumi-kubernetes#2921, #4389).

So the program installs the release without Helm's wait (`skipAwait`: Helm still runs and waits
for the chart's hooks) and gates what needs Cilium on this module's stricter condition, checked
by components/cni_rollout.py against the API server:
- every workload of the release exists, its controller has seen its latest generation, and
  every one of its pods is scheduled, ready and runs the current pod template;
- the pods of Cilium's own images (agent, operator, relay) run the chart's version;
- it holds within `cilium.rolloutTimeoutSeconds`, or `up` fails with one message that names
  each pod that is not there yet, and why.

Nothing here talks to a cluster: objects come in as the API's JSON (dicts), verdicts go out.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from cnistack import cilium
from cnistack.config import StackConfig

# Kept in the message per workload; the rest is counted.
MAX_PODS_NAMED = 6
RECEIPT_NAME = "cnistack-cni-rollout"
# Helm's annotation on everything it installs (helm.sh/helm/v3 pkg/action/validate.go).
HELM_RELEASE_ANNOTATION = "meta.helm.sh/release-name"


WorkloadKind = Literal["DaemonSet", "Deployment"]


@dataclass(frozen=True)
class Workload:
    """A workload of the Cilium release, and the version its pods must run."""

    kind: WorkloadKind
    namespace: str
    name: str
    # The container whose image is tagged with the chart's version; None for images versioned
    # on their own (hubble-ui's frontend/backend, Envoy).
    versioned_container: str | None
    version: str | None

    @property
    def label(self) -> str:
        return f"{self.kind.lower()} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class RolloutPlan:
    """What the gate waits for, decided from the stack config alone."""

    release: str
    namespace: str
    version: str
    workloads: tuple[Workload, ...]
    timeout_s: int
    # The receipt: a ConfigMap the program writes only once the rollout is verified, and whose
    # change (a new version or new values) makes the next `up` wait again.
    receipt: dict[str, str]


def _get(values: dict[str, Any], path: str, default: Any) -> Any:
    node: Any = values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _minor(version: str) -> tuple[int, int]:
    major, minor, *_ = (int(p) for p in re.findall(r"\d+", version)[:2])
    return major, minor


def _envoy_daemonset(values: dict[str, Any], version: str) -> bool:
    """Whether the chart runs Envoy as its own DaemonSet `cilium-envoy`.

    Chart 1.15 (values.yaml `envoy.enabled: false`): only when set. From 1.16 the chart's
    `envoyDaemonSetEnabled` helper (templates/_helpers.tpl, v1.16.19): never without l7Proxy; else
    `envoy.enabled` when set; else on when `upgradeCompatibility` (default 1.16) is >= 1.16.
    """
    if _minor(version) < (1, 16):
        return bool(_get(values, "envoy.enabled", False))
    if not _get(values, "l7Proxy", True):
        return False
    enabled = _get(values, "envoy.enabled", None)
    if enabled is not None:
        return bool(enabled)
    return _minor(str(_get(values, "upgradeCompatibility", None) or "1.16")) >= (1, 16)


def rollout_workloads(values: dict[str, Any], version: str, namespace: str) -> tuple[Workload, ...]:
    """The chart's workloads for these values (chart templates: cilium-agent/daemonset.yaml,
    cilium-operator/deployment.yaml, hubble-relay/deployment.yaml, hubble-ui/deployment.yaml,
    cilium-envoy/daemonset.yaml, each behind the value tested here)."""
    workloads: list[Workload] = []
    if _get(values, "agent", True):
        workloads.append(Workload("DaemonSet", namespace, "cilium", "cilium-agent", version))
    if _get(values, "operator.enabled", True):
        workloads.append(
            Workload("Deployment", namespace, "cilium-operator", "cilium-operator", version)
        )
    if _get(values, "hubble.enabled", True) and _get(values, "hubble.relay.enabled", False):
        workloads.append(Workload("Deployment", namespace, "hubble-relay", "hubble-relay", version))
    if _get(values, "hubble.enabled", True) and _get(values, "hubble.ui.enabled", False):
        workloads.append(Workload("Deployment", namespace, "hubble-ui", None, None))
    if _envoy_daemonset(values, version):
        workloads.append(Workload("DaemonSet", namespace, "cilium-envoy", None, None))
    return tuple(workloads)


def values_digest(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def rollout_plan(
    config: StackConfig, values: dict[str, Any], held_version: str | None
) -> RolloutPlan:
    """The gate of a Helm-installed Cilium (`values` as helm_values gives them). `held_version`:
    the version the release keeps while a minor step's preflight stage holds it; None otherwise,
    and the pods must run the stack's chart version."""
    settings = config.cilium_settings
    if settings is None or settings.install_method != "helm":
        raise ValueError("rollout_plan needs a stack that installs Cilium with Helm")
    version = held_version or settings.chart.version
    return RolloutPlan(
        release=cilium.RELEASE_NAME,
        namespace=cilium.NAMESPACE,
        version=version,
        workloads=rollout_workloads(values, version, cilium.NAMESPACE),
        timeout_s=settings.rollout_timeout_seconds,
        receipt={
            "release": cilium.RELEASE_NAME,
            "version": version,
            "values-sha256": values_digest(values),
        },
    )


# --- verdicts on live objects (the API's JSON) ------------------------------------------------


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in obj.get("status", {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return None


def _image(spec: dict[str, Any], container: str) -> str | None:
    for entry in spec.get("containers") or []:
        if entry.get("name") == container:
            return str(entry.get("image"))
    return None


def runs_version(image: str | None, version: str) -> bool:
    """`quay.io/cilium/cilium:v1.15.0@sha256:...` runs 1.15.0 (the chart pins tag and digest)."""
    return image is not None and re.search(rf":v{re.escape(version)}(@|$)", image) is not None


def pod_problem(
    pod: dict[str, Any], workload: Workload, template_images: dict[str, str]
) -> str | None:
    """Why this pod does not count yet, or None when it is ready on the current template."""
    name = pod["metadata"]["name"]
    node = pod.get("spec", {}).get("nodeName")
    where = f"{name} on {node}" if node else name
    scheduled = _condition(pod, "PodScheduled")
    if not node and scheduled is not None and scheduled.get("status") == "False":
        return f"{name}: not scheduled ({scheduled.get('message') or scheduled.get('reason')})"
    if not node:
        return f"{name}: not scheduled yet"
    images = {c.get("name"): c.get("image") for c in pod.get("spec", {}).get("containers") or []}
    if workload.versioned_container and workload.version:
        image = images.get(workload.versioned_container)
        if not runs_version(image, workload.version):
            return f"{where}: runs {image}, not v{workload.version}"
    stale = sorted(c for c, image in template_images.items() if images.get(c) != image)
    if stale:
        return f"{where}: an older pod template (containers {', '.join(stale)})"
    for status in pod.get("status", {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting")
        if waiting:
            reason = waiting.get("reason") or "waiting"
            return f"{where}: container {status.get('name')} {reason}"
    ready = _condition(pod, "Ready")
    if ready is None or ready.get("status") != "True":
        reason = (ready or {}).get("reason")
        return f"{where}: not ready" + (f" ({reason})" if reason else "")
    return None


@dataclass(frozen=True)
class Verdict:
    workload: Workload
    done: bool
    summary: str
    pods: tuple[str, ...] = ()


def assess(workload: Workload, obj: dict[str, Any] | None, pods: list[dict[str, Any]]) -> Verdict:
    """Whether one workload is rolled out: `obj` is the DaemonSet/Deployment (None: absent),
    `pods` the pods its selector matches."""
    if obj is None:
        return Verdict(workload, False, f"{workload.label}: not created")
    status = obj.get("status") or {}
    generation = obj.get("metadata", {}).get("generation", 0)
    if status.get("observedGeneration", 0) < generation:
        return Verdict(workload, False, f"{workload.label}: generation {generation} not seen yet")
    template = obj.get("spec", {}).get("template", {}).get("spec", {})
    template_images = {c["name"]: c.get("image") for c in template.get("containers") or []}
    if workload.versioned_container and workload.version:
        image = template_images.get(workload.versioned_container)
        if not runs_version(image, workload.version):
            return Verdict(
                workload, False, f"{workload.label}: template runs {image}, not v{workload.version}"
            )
    if workload.kind == "DaemonSet":
        desired = int(status.get("desiredNumberScheduled", 0))
        counts = {
            "updated": int(status.get("updatedNumberScheduled", 0)),
            "ready": int(status.get("numberReady", 0)),
            "available": int(status.get("numberAvailable", 0)),
        }
        if desired == 0:
            return Verdict(workload, False, f"{workload.label}: scheduled on no node")
    else:
        desired = int(obj.get("spec", {}).get("replicas", 1))
        counts = {
            "updated": int(status.get("updatedReplicas", 0)),
            "ready": int(status.get("readyReplicas", 0)),
            "available": int(status.get("availableReplicas", 0)),
        }
        # Old ReplicaSets' pods still counted: the rollout has not finished.
        counts["total"] = int(status.get("replicas", 0))
    current = [p for p in pods if not p.get("metadata", {}).get("deletionTimestamp")]
    problems = [
        problem
        for pod in sorted(current, key=lambda p: str(p["metadata"]["name"]))
        if (problem := pod_problem(pod, workload, template_images)) is not None
    ]
    done = (
        all(count == desired for count in counts.values())
        and len(current) == desired
        and not problems
    )
    summary = f"{workload.label}: {counts['ready']} of {desired} ready, {counts['updated']} updated"
    if len(current) < desired and not problems:
        problems.append(f"{desired - len(current)} pod(s) not created yet")
    return Verdict(workload, done, summary, tuple(problems))


def stuck_message(
    plan: RolloutPlan, verdicts: list[Verdict], waited_s: float, last_error: str | None
) -> str:
    """The one message `up` fails with when the rollout does not finish in time."""
    lines = [
        f"Cilium {plan.version} is not rolled out after {waited_s:.0f} s "
        f"(aisp-cni:cilium.rolloutTimeoutSeconds = {plan.timeout_s}); not ready:"
    ]
    for verdict in verdicts:
        if verdict.done:
            continue
        lines.append(f"  {verdict.summary}")
        named = verdict.pods[:MAX_PODS_NAMED]
        lines += [f"    {pod}" for pod in named]
        if len(verdict.pods) > len(named):
            lines.append(f"    ... and {len(verdict.pods) - len(named)} more")
    if last_error:
        lines.append(f"  last error reading the cluster: {last_error}")
    lines.append(
        "The release is applied; what needs Cilium (its network policies) is not. "
        'Fix the cause, then run `pulumi up` again (docs/recovery.md, "A stuck Cilium rollout").'
    )
    return "\n".join(lines)
