"""ADR-013 CNI strategy: the cluster, its CNI, and the platform's network policies.

Everything that decides what to deploy is in `cnistack` (pure, testable without an
engine); this file reads the stack config once, builds the components and exports.
"""

import pulumi
from pulumi.runtime import get_config_secret_keys_env, is_config_secret
from pulumi.runtime.config import CONFIG, get_config_env

from cnistack.cilium import hubble_ui_access
from cnistack.config import parse_stack_config, project_config, project_keys
from cnistack.netpol.renderer import render_policies
from components import Cluster, ClusterArgs, Cni, CniArgs, NetworkPolicySet, NetworkPolicySetArgs

engine_config = {**get_config_env(), **CONFIG.get()}
secret_keys = {*get_config_secret_keys_env(), *filter(is_config_secret, engine_config)}
config = parse_stack_config(project_config(engine_config), project_keys(secret_keys))

cluster = Cluster(
    "cluster",
    ClusterArgs(
        cluster=config.cluster,
        cni=config.cni,
        kube_proxy_replacement=config.replaces_kube_proxy,
        kubeconfig=config.kubeconfig,
    ),
)
# Objects inside a cluster that the program creates go with it: deleting (or replacing) the
# k3d cluster deletes them, so the engine must not call the API of a cluster being deleted
# (docs/real-engine.md, "The homelab CNI switch"). Children inherit deleted_with.
in_cluster = pulumi.ResourceOptions(deleted_with=cluster.created)
cni = Cni("cni", CniArgs(config=config, provider=cluster.provider), in_cluster)
network_policies = NetworkPolicySet(
    "platform",
    NetworkPolicySetArgs(
        rendered=render_policies(config.network_policy, cni.capabilities),
        provider=cluster.provider,
        depends_on=[cni.release] if cni.release else [],
        protect=config.protect_cluster_network,
    ),
    in_cluster,
)

pulumi.export("clusterName", cluster.name)
pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("cni", config.cni)
pulumi.export("capabilities", cni.capabilities.as_output())
pulumi.export("hubbleUi", hubble_ui_access(config))
pulumi.export("fidelity", network_policies.fidelity)
