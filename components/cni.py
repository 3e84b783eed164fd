"""The CNI: nothing to install for K3s's Flannel; for Cilium a Helm release, or on OpenShift
the OLM operator's CiliumConfig (cnistack/openshift.py), plus the SCC bindings (ADR-013)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from cnistack import cilium, openshift
from cnistack.capabilities import CapabilityProfile
from cnistack.cilium_upgrade import UpgradePlan
from cnistack.cni_rollout import RolloutPlan, rollout_plan
from cnistack.config import StackConfig
from components.cni_rollout import CniRollout, CniRolloutArgs, helm_pending_hook

# What a release keeps while the preflight of a minor step runs: everything that would change it.
HELD_DURING_PREFLIGHT = ["chart", "version", "values", "repositoryOpts"]


@dataclass(frozen=True)
class CniArgs:
    config: StackConfig
    provider: k8s.Provider
    # The provider's access, for the readiness gate (components/cni_rollout.py).
    kubeconfig: pulumi.Output[str] | None = None
    context: str | None = None
    # This run's step on Cilium's upgrade path (cnistack/cilium_upgrade.py); None for OLM.
    upgrade: UpgradePlan | None = None


class Cni(pulumi.ComponentResource):
    """Exposes the stack's ``capabilities``: what the CNI enforces, asked instead of its name."""

    capabilities: CapabilityProfile
    release: k8s.helm.v3.Release | None
    # What needs Cilium waits on: the receipt of a verified rollout of the Helm release
    # (components/cni_rollout.py), or the CiliumConfig the OLM operator reconciles.
    installed: pulumi.Resource | None

    def __init__(
        self, name: str, args: CniArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aisp-cni:index:Cni", name, None, opts)
        self.capabilities = args.config.capabilities
        # Flannel ships inside K3s and kube-router enforces NetworkPolicy: nothing to install.
        settings = args.config.cilium_settings
        self.release = None
        self.installed = None
        if settings is not None:
            scc = self._bind_sccs(name, args)
            if settings.install_method == "olm":
                self.installed = self._configure_olm(name, args, scc)
            else:
                self.release = self._install_cilium(name, args, scc)
                self.installed = CniRollout(
                    f"{name}-rollout",
                    CniRolloutArgs(
                        plan=self._rollout_plan(args),
                        provider=args.provider,
                        release=self.release,
                        kubeconfig=args.kubeconfig,
                        context=args.context,
                    ),
                    pulumi.ResourceOptions(parent=self),
                ).receipt
            for warning in openshift.preview_warnings(args.config):
                pulumi.log.warn(warning, resource=self)
        self.register_outputs({"capabilities": self.capabilities.as_output()})

    def _bind_sccs(self, name: str, args: CniArgs) -> list[pulumi.Resource]:
        opts = pulumi.ResourceOptions(
            parent=self, provider=args.provider, protect=args.config.protect_cluster_network
        )
        resources: list[pulumi.Resource] = []
        for manifest in openshift.scc_manifests(args.config):
            if manifest["kind"] == "ClusterRole":
                resources.append(
                    k8s.rbac.v1.ClusterRole(
                        f"{name}-scc-role",
                        metadata=manifest["metadata"],
                        rules=manifest["rules"],
                        opts=opts,
                    )
                )
            else:
                resources.append(
                    k8s.rbac.v1.ClusterRoleBinding(
                        f"{name}-scc-binding",
                        metadata=manifest["metadata"],
                        role_ref=manifest["roleRef"],
                        subjects=manifest["subjects"],
                        opts=opts,
                    )
                )
        return resources

    def _configure_olm(
        self, name: str, args: CniArgs, scc: list[pulumi.Resource]
    ) -> k8s.apiextensions.CustomResourcePatch:
        manifest = openshift.cilium_config(args.config)
        # A patch (server-side apply), not a create: the CiliumConfig `cilium/cilium` is laid
        # down with the cluster (olm-for-cilium cluster-network-07-cilium-ciliumconfig.yaml).
        return k8s.apiextensions.CustomResourcePatch(
            f"{name}-ciliumconfig",
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=scc,
                protect=args.config.protect_cluster_network,
            ),
        )

    @staticmethod
    def _rollout_plan(args: CniArgs) -> RolloutPlan:
        """The gate waits for what the release runs after this `up`: while the preflight stage of
        a minor step holds the release (cnistack/cilium_upgrade.py), that is the deployed
        version, not the target."""
        upgrade = args.upgrade
        if upgrade is None:
            return rollout_plan(args.config, cilium.helm_values(args.config), None)
        held = upgrade.release_version if upgrade.release_version != upgrade.target else None
        values = cilium.helm_values(args.config, upgrade.first_installed)
        return rollout_plan(args.config, values, held)

    def _install_cilium(
        self, name: str, args: CniArgs, scc: list[pulumi.Resource]
    ) -> k8s.helm.v3.Release:
        upgrade = args.upgrade
        settings = args.config.cilium_settings
        assert settings is not None  # cni == "cilium"
        first_installed = upgrade.first_installed if upgrade else None
        # Stage 1 of a minor step (upstream's preflight check, cnistack/cilium_upgrade.py): the
        # release stays exactly as deployed, so the engine keeps its stored chart and values.
        holding = bool(upgrade and upgrade.release_version != upgrade.target)
        values = cilium.helm_values(args.config, first_installed)
        # One chart for both releases: the preflight check runs the target version's chart.
        ref = cilium.chart_ref(settings)
        if upgrade and upgrade.preflight:
            scc = [
                *scc,
                k8s.helm.v3.Release(
                    f"{name}-cilium-preflight",
                    k8s.helm.v3.ReleaseArgs(
                        name=cilium.PREFLIGHT_RELEASE_NAME,
                        chart=ref.chart,
                        version=ref.version,
                        namespace=cilium.NAMESPACE,
                        repository_opts=(
                            k8s.helm.v3.RepositoryOptsArgs(repo=ref.repository)
                            if ref.repository
                            else None
                        ),
                        values=cilium.preflight_values(args.config),
                    ),
                    opts=pulumi.ResourceOptions(
                        parent=self, provider=args.provider, depends_on=scc
                    ),
                ),
            ]
        pending = helm_pending_hook(
            name, cilium.NAMESPACE, cilium.RELEASE_NAME, args.kubeconfig, args.context
        )
        # A helm.v3.Release rather than a rendered Chart: Cilium's chart relies on Helm
        # hooks and lookups, and operators keep `helm history`/rollback and the cilium
        # CLI, which both read the Helm release.
        return k8s.helm.v3.Release(
            f"{name}-cilium",
            k8s.helm.v3.ReleaseArgs(
                name=cilium.RELEASE_NAME,
                chart=ref.chart,
                version=ref.version,
                namespace=cilium.NAMESPACE,
                repository_opts=(
                    k8s.helm.v3.RepositoryOptsArgs(repo=ref.repository) if ref.repository else None
                ),
                values=values,
                # The whole value set every time: upstream forbids `--reuse-values` across
                # minors (Documentation/operations/upgrade.rst), and a value the stack dropped
                # must not survive in the release.
                reuse_values=False,
                # Helm's own wait counts a one-replica Deployment as ready with no pod and 4 of
                # 6 agents as enough (pkg/kube/ready.go), and its timeout names nothing
                # (pulumi/pulumi-kubernetes#2921, #4389): the rollout is awaited by the gate
                # (components/cni_rollout.py) instead. Helm still waits for the chart's hooks,
                # within `timeout`.
                skip_await=True,
                timeout=settings.rollout_timeout_seconds,
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=scc,
                # Deleting the release takes every pod's network down.
                protect=args.config.protect_cluster_network,
                hooks=pulumi.ResourceHookBinding(before_create=[pending], before_update=[pending]),
                ignore_changes=HELD_DURING_PREFLIGHT if holding else None,
            ),
        )
