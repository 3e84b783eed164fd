"""`cluster.podCidr`/`serviceCidr` are honoured on Flannel (k3d's K3s args) and by the analyzer."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from cnistack.config import K3dCluster
from cnistack.k3d import create_args
from cnistack.stack_documents import load_stack_inputs
from reachability.errors import InputError
from tests.conftest import run_program
from tests.factories import HOMELAB_CREATE


def test_flannel_cluster_gets_the_stack_cidrs_as_k3s_args() -> None:
    cluster = K3dCluster(kind="k3d", pod_cidr="10.50.0.0/16", service_cidr="10.60.0.0/16")
    args = create_args(cluster, cni="flannel", kube_proxy_replacement=False)
    assert args[-4:] == [
        "--k3s-arg", "--cluster-cidr=10.50.0.0/16@server:*",
        "--k3s-arg", "--service-cidr=10.60.0.0/16@server:*",
    ]  # fmt: skip


def test_flannel_cluster_with_k3s_default_cidrs_keeps_its_create_command() -> None:
    # Any change of the command replaces the cluster: the defaults must not add arguments.
    assert run_program("homelab").named("cluster-k3d").inputs["create"] == HOMELAB_CREATE


def test_the_program_creates_the_homelab_with_its_pod_cidr() -> None:
    cluster = {"kind": "k3d", "name": "aisp-homelab", "podCidr": "10.50.0.0/16"}
    create = run_program("homelab", {"cluster": cluster}).named("cluster-k3d").inputs["create"]
    assert create == HOMELAB_CREATE + " --k3s-arg '--cluster-cidr=10.50.0.0/16@server:*'"


def _stack(tmp_path: Path, pod_cidr: str) -> Path:
    config = {"aisp-cni:cni": "flannel", "aisp-cni:cluster": {"kind": "k3d", "podCidr": pod_cidr}}
    (tmp_path / "Pulumi.lab.yaml").write_text(yaml.safe_dump({"config": config}))
    return tmp_path


def test_the_analyzer_places_pods_in_the_stack_pod_cidr(tmp_path: Path) -> None:
    inputs, enforcement = load_stack_inputs("lab", _stack(tmp_path, "10.50.0.0/16"))
    ips = {(pod.namespace, pod.name): pod.ip for pod in inputs.pods}
    assert enforcement == "kube-router"
    assert ips[("kube-system", "coredns")] == "10.50.0.10"
    assert ips[("ai-apps", "api-server")] == "10.50.1.10"
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.50.0.0/16")
               for ip in ips.values() if ip)  # fmt: skip


def test_a_pod_cidr_too_small_for_the_model_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_stack_inputs("lab", _stack(tmp_path, "10.50.0.0/24"))
    assert str(caught.value) == (
        "stack 'lab': too many namespaces or workloads for synthetic pod addresses in 10.50.0.0/24"
    )
