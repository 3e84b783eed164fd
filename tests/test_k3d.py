"""k3d command lines: Flannel gets nothing CNI-related; Cilium gets what K3s needs."""

from __future__ import annotations

from cnistack.config import K3dCluster
from cnistack.k3d import command_line, create_args, delete_args, kubeconfig_args

HOMELAB = K3dCluster(kind="k3d")

COMMON = [
    "k3d", "cluster", "create", "aisp-homelab",
    "--servers", "1", "--agents", "2",
    "--image", "rancher/k3s:v1.35.8-k3s1",
    "--api-port", "127.0.0.1:6550",
    "--kubeconfig-update-default=false", "--kubeconfig-switch-context=false",
    "--wait",
]  # fmt: skip


def test_flannel_cluster_has_no_cni_arguments() -> None:
    assert create_args(HOMELAB, cni="flannel", kube_proxy_replacement=False) == COMMON


def test_cilium_cluster_disables_flannel_policy_and_kube_proxy_and_shares_mounts() -> None:
    assert create_args(HOMELAB, cni="cilium", kube_proxy_replacement=True) == [
        *COMMON,
        "--k3s-arg", "--flannel-backend=none@server:*",
        "--k3s-arg", "--disable-network-policy@server:*",
        "--k3s-arg", "--cluster-cidr=10.42.0.0/16@server:*",
        "--k3s-arg", "--service-cidr=10.43.0.0/16@server:*",
        "--k3s-arg", "--disable-kube-proxy@server:*",
        "--volume", "/sys/fs/bpf:/sys/fs/bpf:shared@all",
        "--env", "K3D_FIX_MOUNTS=1@all",
    ]  # fmt: skip


def test_cilium_without_kube_proxy_replacement_keeps_kube_proxy() -> None:
    args = create_args(HOMELAB, cni="cilium", kube_proxy_replacement=False)
    assert "--disable-kube-proxy@server:*" not in args
    assert "--flannel-backend=none@server:*" in args


def test_counts_and_delete_and_kubeconfig_commands() -> None:
    cluster = K3dCluster(kind="k3d", name="lab", servers=3, agents=0)
    assert command_line(
        create_args(cluster, cni="flannel", kube_proxy_replacement=False)
    ).startswith("k3d cluster create lab --servers 3 --agents 0 ")
    assert command_line(delete_args(cluster)) == "k3d cluster delete lab"
    assert command_line(kubeconfig_args(cluster)) == "k3d kubeconfig get lab"
