"""The CNI readiness gate: an install or upgrade of Cilium is done when it is rolled out.

What to wait for is decided by cnistack/cni_rollout.py (pure); this component only waits, and
records the result in a receipt, the ConfigMap kube-system/cnistack-cni-rollout:
- the receipt holds the chart version and a digest of the Helm values, so it changes exactly when
  the release does; it is created after the release (depends_on). The Kubernetes provider
  replaces a ConfigMap whose data changes (delete, then create: its name is fixed), it does not
  update it (pulumi/pulumi-kubernetes#1567);
- a `before_create`/`before_update` resource hook on it waits until the rollout is complete
  (pulumi.ResourceHook: the engine runs it before the step and fails the step with its error,
  pkg/resource/deploy/step.go); so the receipt is written only for a verified rollout, and a
  failed or interrupted wait leaves no receipt of the new release, which makes the next `up`
  wait again;
- the receipt is never protected, even where the release is: it is a record that the next `up`
  rewrites, and `protect` would refuse the replacement every upgrade needs.
- what needs Cilium (CiliumNetworkPolicies) depends on the receipt, not on the release.
An `up` that changes nothing in the release does not wait, so a node that is down does not block
an unrelated policy change. Hooks do not run in previews.

The hook reads the cluster through the same kubeconfig and context as the stack's Kubernetes
provider (components/kube_reader.py: standard library only).
"""

from __future__ import annotations

import asyncio
import functools
import time
import urllib.error
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from cnistack.cni_rollout import (
    HELM_RELEASE_ANNOTATION,
    RECEIPT_NAME,
    RolloutPlan,
    Verdict,
    Workload,
    WorkloadKind,
    assess,
    stuck_message,
)
from cnistack.netpol.renderer import MANAGED_BY
from components.kube_reader import ApiError, KubeReader

POLL_S = 2.0


class RolloutStuckError(Exception):
    """The rollout did not finish in time; the message names every pod that is not ready."""


class HelmPendingError(Exception):
    """A Helm revision of the release was left pending by an interrupted operation."""


def helm_pending_hook(
    name: str,
    namespace: str,
    release: str,
    kubeconfig: pulumi.Output[str] | None,
    context: str | None,
) -> pulumi.ResourceHook:
    """A before_create/before_update hook for the Helm release: Helm refuses any install or
    upgrade while a revision is `pending-*` ("another operation (install/upgrade/rollback) is in
    progress", helm.sh/helm/v3 pkg/action/upgrade.go), which is what a killed `up` leaves; say
    so, with the revision and the way out, before Helm runs."""

    async def check(_: pulumi.ResourceHookArgs) -> None:
        config = await kubeconfig.future() if kubeconfig is not None else None
        reader = KubeReader(config, context)
        selector = urllib.parse.quote(f"owner=helm,name={release}")
        secrets = reader.get(f"/api/v1/namespaces/{namespace}/secrets?labelSelector={selector}")
        labels = [item["metadata"].get("labels") or {} for item in secrets["items"]]
        pending = sorted(
            (int(label.get("version", 0)), str(label.get("status", "")))
            for label in labels
            if str(label.get("status", "")).startswith("pending-")
        )
        if pending:
            revisions = ", ".join(f"revision {v} {status}" for v, status in pending)
            raise HelmPendingError(
                f"Helm release {namespace}/{release}: {revisions}, left by an interrupted "
                "operation; Helm refuses to install or upgrade it until that record goes. If no "
                "other helm or pulumi runs on it: kubectl -n "
                f"{namespace} delete secret -l 'owner=helm,name={release},status in "
                "(pending-install,pending-upgrade,pending-rollback)', then pulumi up "
                '(docs/recovery.md, "A killed `pulumi up`").'
            )

    return pulumi.ResourceHook(f"{name}-helm-pending", check)


@dataclass(frozen=True)
class CniRolloutArgs:
    plan: RolloutPlan
    provider: k8s.Provider
    release: pulumi.Resource
    # The provider's own access: the kubeconfig (None: the user's kubeconfig file) and context.
    kubeconfig: pulumi.Output[str] | None
    context: str | None


class CniRollout(pulumi.ComponentResource):
    """Exposes ``receipt``: the resource that exists only once the rollout is verified."""

    receipt: k8s.core.v1.ConfigMap

    def __init__(
        self, name: str, args: CniRolloutArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aisp-cni:index:CniRollout", name, None, opts)
        plan = args.plan

        async def wait(_: pulumi.ResourceHookArgs) -> None:
            kubeconfig = await args.kubeconfig.future() if args.kubeconfig is not None else None
            reader = functools.partial(KubeReader, kubeconfig, args.context)
            await asyncio.get_running_loop().run_in_executor(
                None, functools.partial(wait_for_rollout, plan, reader)
            )

        hook = pulumi.ResourceHook(f"{name}-wait", wait)
        self.receipt = k8s.core.v1.ConfigMap(
            f"{name}-receipt",
            metadata={
                "name": RECEIPT_NAME,
                "namespace": plan.namespace,
                "labels": dict([MANAGED_BY]),
            },
            data=plan.receipt,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[args.release],
                hooks=pulumi.ResourceHookBinding(before_create=[hook], before_update=[hook]),
            ),
        )
        self.register_outputs({})


class _Cluster:
    """The few reads the gate needs, as the API's JSON."""

    def __init__(self, reader: KubeReader) -> None:
        self.reader = reader

    def workload(self, workload: Workload) -> dict[str, Any] | None:
        plural = "daemonsets" if workload.kind == "DaemonSet" else "deployments"
        try:
            return dict(
                self.reader.get(
                    f"/apis/apps/v1/namespaces/{workload.namespace}/{plural}/{workload.name}"
                )
            )
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def pods(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        labels = obj.get("spec", {}).get("selector", {}).get("matchLabels") or {}
        selector = urllib.parse.quote(",".join(f"{k}={v}" for k, v in sorted(labels.items())))
        namespace = obj["metadata"]["namespace"]
        found = self.reader.get(f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}")
        return list(found["items"])

    def release_workloads(self, namespace: str, release: str) -> list[Workload]:
        """Every DaemonSet and Deployment Helm installed for the release (values the stack sets
        through extraValues may add some the plan does not name)."""
        found: list[Workload] = []
        kinds: tuple[tuple[WorkloadKind, str], ...] = (
            ("DaemonSet", "daemonsets"),
            ("Deployment", "deployments"),
        )
        for kind, plural in kinds:
            for item in self.reader.get(f"/apis/apps/v1/namespaces/{namespace}/{plural}")["items"]:
                annotations = item["metadata"].get("annotations") or {}
                if annotations.get(HELM_RELEASE_ANNOTATION) == release:
                    found.append(Workload(kind, namespace, item["metadata"]["name"], None, None))
        return found


def _survey(cluster: _Cluster, plan: RolloutPlan) -> list[Verdict]:
    named = {(w.kind, w.name) for w in plan.workloads}
    extra = [
        w
        for w in cluster.release_workloads(plan.namespace, plan.release)
        if (w.kind, w.name) not in named
    ]
    verdicts: list[Verdict] = []
    for workload in (*plan.workloads, *extra):
        obj = cluster.workload(workload)
        verdicts.append(assess(workload, obj, cluster.pods(obj) if obj else []))
    return verdicts


def wait_for_rollout(
    plan: RolloutPlan,
    connect: Callable[[], KubeReader],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once every workload of the plan is rolled out; else raise RolloutStuckError at the
    plan's timeout. An unreachable API server (restarting, say) is retried until then."""
    start = clock()
    verdicts: list[Verdict] = []
    last_error: str | None = None
    cluster = _Cluster(connect())
    while True:
        try:
            verdicts = _survey(cluster, plan)
            last_error = None
            if all(v.done for v in verdicts):
                return
        except (ApiError, urllib.error.URLError, OSError, ValueError) as error:
            last_error = _short(error)
        waited = clock() - start
        if waited >= plan.timeout_s:
            raise RolloutStuckError(stuck_message(plan, verdicts, waited, last_error))
        sleep(POLL_S)


def _short(error: Exception) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0]
