"""k3d command lines for the homelab cluster (ADR-013 "Home Lab (K3d + Flannel)").

Flannel is K3s's default, so a Flannel cluster gets no CNI-related K3s argument.
For Cilium (ADR-013 "Migration Flannel → Cilium") K3s must start without its CNI,
its embedded network-policy controller and, with kube-proxy replacement, without
kube-proxy; and the k3d node containers need /sys/fs/bpf and the cgroup v2 root as
shared mounts, which Docker does not give them. Ref: k3d-io/k3d#363, k3d-io/k3d#1268.
"""

from __future__ import annotations

import shlex

from cnistack.config import K3S_POD_CIDR, K3S_SERVICE_CIDR, K3dCluster


def _on_servers(arg: str) -> list[str]:
    return ["--k3s-arg", f"{arg}@server:*"]


def create_args(cluster: K3dCluster, *, cni: str, kube_proxy_replacement: bool) -> list[str]:
    args = [
        "k3d", "cluster", "create", cluster.name,
        "--servers", str(cluster.servers),
        "--agents", str(cluster.agents),
        "--image", cluster.k3s_image,
        "--api-port", f"127.0.0.1:{cluster.api_port}",
        # The program reads the kubeconfig back as a secret; it does not touch ~/.kube.
        "--kubeconfig-update-default=false",
        "--kubeconfig-switch-context=false",
        "--wait",
    ]  # fmt: skip
    if cni == "cilium":
        args += _on_servers("--flannel-backend=none")
        args += _on_servers("--disable-network-policy")
        args += _on_servers(f"--cluster-cidr={cluster.pod_cidr}")
        args += _on_servers(f"--service-cidr={cluster.service_cidr}")
        if kube_proxy_replacement:
            args += _on_servers("--disable-kube-proxy")
        # The host's bpffs, shared into every node so BPF maps outlive agent restarts.
        args += ["--volume", "/sys/fs/bpf:/sys/fs/bpf:shared@all"]
        # Makes / rshared inside the node containers, so the cgroup v2 mount that the
        # chart's init container makes at /run/cilium/cgroupv2 propagates to the agent.
        # Ref: k3d-io/k3d#1268.
        args += ["--env", "K3D_FIX_MOUNTS=1@all"]
        return args
    # Flannel takes K3s's CIDRs; name them only where the stack differs from K3s's defaults, so
    # that the create command of an existing homelab (and with it the cluster, replaced on any
    # change of that command) stays the same.
    if cluster.pod_cidr != K3S_POD_CIDR:
        args += _on_servers(f"--cluster-cidr={cluster.pod_cidr}")
    if cluster.service_cidr != K3S_SERVICE_CIDR:
        args += _on_servers(f"--service-cidr={cluster.service_cidr}")
    return args


def delete_args(cluster: K3dCluster) -> list[str]:
    return ["k3d", "cluster", "delete", cluster.name]


def kubeconfig_args(cluster: K3dCluster) -> list[str]:
    return ["k3d", "kubeconfig", "get", cluster.name]


def command_line(args: list[str]) -> str:
    return shlex.join(args)
