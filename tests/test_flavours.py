"""The cluster-flavour profile: OpenShift's facts, literally, and the pack config that mirrors it.

The expectations below are written out from upstream sources, not read from cnistack, so a wrong
profile fails here even when renderer, analyzer and pack all agree with it:
- openshift/cluster-dns-operator pkg/operator/controller/names.go: DefaultOperandNamespace
  "openshift-dns", controllerDaemonSetLabel "dns.operator.openshift.io/daemonset-dns" (value: the
  DNS resource's name, "default"); pkg/manifests/assets/dns/daemonset.yaml: containerPort 5353
  UDP (dns) and TCP (dns-tcp); service.yaml: port 53 -> targetPort dns / dns-tcp.
- OpenShift 4.6/4.7 release notes: `policy-group.network.openshift.io/ingress: ""` selects traffic
  from host-network Ingress Controllers.
- OpenShift install-config default clusterNetwork 10.128.0.0/14, hostPrefix 23.
"""

from __future__ import annotations

import ast
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cnistack.flavours import FLAVOURS, K3S, KUBERNETES, OPENSHIFT, ClusterFlavour, ClusterNetwork
from cnistack.netpol.pods import representative_pods
from cnistack.netpol.renderer import render_policies
from cnistack.stack_files import load_stack

CONFIG_DIR = Path(__file__).resolve().parent.parent / "policies" / "config"

OPENSHIFT_DNS = {
    "namespace": "openshift-dns",
    "podLabels": {"dns.operator.openshift.io/daemonset-dns": "default"},
    "ports": [{"port": 5353, "protocol": "UDP"}, {"port": 5353, "protocol": "TCP"}],
}
KUBE_DNS = {
    "namespace": "kube-system",
    "podLabels": {"k8s-app": "kube-dns"},
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
}


def test_openshift_profile_carries_the_upstream_values() -> None:
    assert OPENSHIFT.dns.namespace == "openshift-dns"
    assert dict(OPENSHIFT.dns.pod_labels) == {"dns.operator.openshift.io/daemonset-dns": "default"}
    assert [(p.port, p.protocol) for p in OPENSHIFT.dns.ports] == [(5353, "UDP"), (5353, "TCP")]
    assert OPENSHIFT.host_network_ingress_label == ("policy-group.network.openshift.io/ingress", "")
    assert OPENSHIFT.cluster_network == ClusterNetwork(cidr="10.128.0.0/14", host_prefix=23)
    assert (OPENSHIFT.cni_bin_path, OPENSHIFT.cni_conf_path) == (
        "/var/lib/cni/bin",
        "/var/run/multus/cni/net.d",
    )
    assert OPENSHIFT.cni_chained_behind_multus is True


@pytest.mark.parametrize("flavour", [K3S, KUBERNETES], ids=["k3s", "kubernetes"])
def test_k3s_and_kubernetes_resolve_through_kube_dns_on_53(flavour: ClusterFlavour) -> None:
    assert FLAVOURS[flavour.name] is flavour
    assert flavour.dns.as_pack_config() == KUBE_DNS
    assert flavour.host_network_ingress_label is None


def test_committed_stacks_have_the_expected_flavours() -> None:
    assert load_stack("production").flavour is OPENSHIFT
    assert load_stack("homelab").flavour is K3S


@pytest.mark.parametrize(("stack", "dns"), [("production", OPENSHIFT_DNS), ("homelab", KUBE_DNS)])
def test_pack_config_names_the_stacks_dns_literally(stack: str, dns: dict[str, object]) -> None:
    config = json.loads((CONFIG_DIR / f"{stack}.json").read_text())
    assert config["namespace-default-deny"]["dns"] == dns


@pytest.mark.parametrize("stack", ["production", "homelab"])
def test_pack_config_agrees_with_the_stacks_flavour_profile(stack: str) -> None:
    # The pack cannot import cnistack; this is where the two are kept in step.
    config = json.loads((CONFIG_DIR / f"{stack}.json").read_text())
    assert config["namespace-default-deny"]["dns"] == load_stack(stack).flavour.dns.as_pack_config()


def test_cluster_network_refuses_a_host_prefix_wider_than_the_network() -> None:
    with pytest.raises(ValueError, match=r"hostPrefix /13 must be between the network's /14"):
        ClusterNetwork(cidr="10.128.0.0/14", host_prefix=13)


@pytest.mark.parametrize("renderer", [render_policies, representative_pods])
def test_renderers_take_the_flavour_explicitly(renderer: Callable[..., Any]) -> None:
    # A default flavour would render a stack for a cluster it is not.
    parameter = inspect.signature(renderer).parameters["flavour"]
    assert parameter.default is inspect.Parameter.empty


def test_the_openshift_flag_is_read_in_one_place() -> None:
    """`cluster.openshift` is turned into a flavour once (ExistingCluster.flavour); every other
    flavour question asks `config.flavour`."""
    repo = Path(__file__).resolve().parent.parent
    readers = set()
    for path in sorted([*repo.glob("cnistack/**/*.py"), *repo.glob("components/*.py")]):
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Attribute) and node.attr == "openshift":
                    readers.add((str(path.relative_to(repo)), function.name))
    assert readers == {("cnistack/config.py", "flavour")}
