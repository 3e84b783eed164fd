"""The cluster: a K3d cluster created on the laptop, or an existing one (ADR-013)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s
from pydantic import SecretStr

from cnistack import k3d
from cnistack.config import ExistingCluster, K3dCluster


@dataclass(frozen=True)
class ClusterArgs:
    cluster: K3dCluster | ExistingCluster
    cni: str
    kube_proxy_replacement: bool
    kubeconfig: SecretStr | None = None


class Cluster(pulumi.ComponentResource):
    """Exposes ``name``, a secret ``kubeconfig`` (None for the ambient context), ``provider``
    and ``created`` (the resource that creates the cluster, None for an existing one)."""

    name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str] | None
    provider: k8s.Provider
    created: pulumi.Resource | None = None
    context: str | None = None

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aisp-cni:index:Cluster", name, None, opts)
        self.name = pulumi.Output.from_input(args.cluster.name)
        if isinstance(args.cluster, K3dCluster):
            self.kubeconfig = self._create_k3d(name, args.cluster, args)
        else:
            self.kubeconfig = (
                pulumi.Output.secret(args.kubeconfig.get_secret_value())
                if args.kubeconfig
                else None
            )
        context = args.cluster.context if isinstance(args.cluster, ExistingCluster) else None
        self.context = context
        self.provider = k8s.Provider(
            f"{name}-kubernetes",
            kubeconfig=self.kubeconfig,
            context=context,
            # A k3d cluster is this stack's own: once it is gone (deleted by hand, laptop
            # reset), its objects are gone with it, so `pulumi destroy` drops them from the
            # state instead of failing on the unreachable API server. Never on a cluster we
            # did not create: there an unreachable API server must stop the destroy.
            delete_unreachable=isinstance(args.cluster, K3dCluster),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"name": self.name, "kubeconfig": self.kubeconfig})

    def _create_k3d(self, name: str, cluster: K3dCluster, args: ClusterArgs) -> pulumi.Output[str]:
        create = k3d.create_args(
            cluster, cni=args.cni, kube_proxy_replacement=args.kube_proxy_replacement
        )
        self.created = k3d_cluster = command.local.Command(
            f"{name}-k3d",
            create=k3d.command_line(create),
            # Exits 0 when the cluster is already gone ("No clusters found"), so destroy works
            # then too. Ref: k3d-io/k3d cmd/cluster/clusterDelete.go, parseDeleteClusterCmd.
            delete=k3d.command_line(k3d.delete_args(cluster)),
            # K3s cannot change its CNI in place: any change of the create command (CNI
            # flags included) must show as a replacement in the preview, and the old
            # cluster must go first because k3d names are unique.
            opts=pulumi.ResourceOptions(
                parent=self, replace_on_changes=["create"], delete_before_replace=True
            ),
        )
        kubeconfig = command.local.Command(
            f"{name}-kubeconfig",
            create=k3d.command_line(k3d.kubeconfig_args(cluster)),
            # A new cluster has new certificates: read its kubeconfig again.
            triggers=[k3d_cluster.id],
            logging=command.local.Logging.NONE,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[k3d_cluster], additional_secret_outputs=["stdout"]
            ),
        )
        return pulumi.Output.secret(kubeconfig.stdout)
