"""The CNI: nothing to install for K3s's Flannel, a Helm release for Cilium (ADR-013)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from cnistack import cilium
from cnistack.capabilities import CapabilityProfile
from cnistack.config import StackConfig


@dataclass(frozen=True)
class CniArgs:
    config: StackConfig
    provider: k8s.Provider


class Cni(pulumi.ComponentResource):
    """Exposes the stack's ``capabilities``: what the CNI enforces, asked instead of its name."""

    capabilities: CapabilityProfile
    release: k8s.helm.v3.Release | None

    def __init__(
        self, name: str, args: CniArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aisp-cni:index:Cni", name, None, opts)
        self.capabilities = args.config.capabilities
        # Flannel ships inside K3s and kube-router enforces NetworkPolicy: nothing to install.
        self.release = self._install_cilium(name, args) if args.config.cni == "cilium" else None
        self.register_outputs({"capabilities": self.capabilities.as_output()})

    def _install_cilium(self, name: str, args: CniArgs) -> k8s.helm.v3.Release:
        settings = args.config.cilium_settings
        assert settings is not None  # cni == "cilium"
        ref = cilium.chart_ref(settings)
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
                values=cilium.helm_values(args.config),
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                # Deleting the release takes every pod's network down.
                protect=args.config.protect_cluster_network,
            ),
        )
