"""The thin Pulumi shell: each component wires a pure result of `cnistack` into resources."""

from components.cluster import Cluster, ClusterArgs
from components.cni import Cni, CniArgs
from components.network_policy_set import NetworkPolicySet, NetworkPolicySetArgs

__all__ = [
    "Cluster",
    "ClusterArgs",
    "Cni",
    "CniArgs",
    "NetworkPolicySet",
    "NetworkPolicySetArgs",
]
