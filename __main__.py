"""ADR-013 CNI strategy: the cluster, its CNI, and the platform's network policies.

Everything that decides what to deploy is in `cnistack` (pure, testable without an
engine); this file reads the stack config once, builds the components and exports.
"""

import os

import pulumi

from cnistack.cilium import hubble_ui_access
from cnistack.cilium_upgrade import OFF_MATRIX_ENV, STATE_OUTPUT, plan_upgrade
from cnistack.netpol.renderer import render_policies
from cnistack.targeting import check_secrets_passphrase, check_target
from components import Cluster, ClusterArgs, Cni, CniArgs, NetworkPolicySet, NetworkPolicySetArgs
from components.cluster_facts import read_cluster_facts
from components.stack_config import read_stack_config
from components.stack_state import previous_output

config = read_stack_config()
# Before any resource is registered: the right cluster, and not the lab's secrets passphrase.
check_secrets_passphrase(config)
check_target(config)
# Then what runs there now (the stack's state, the cluster's Helm release and /version): a
# skipped minor, a long downgrade or an untested Kubernetes stops the program here.
upgrade = (
    plan_upgrade(
        config,
        previous_output(STATE_OUTPUT),
        read_cluster_facts(config),
        allow_off_matrix=os.environ.get(OFF_MATRIX_ENV) == "1",
    )
    if config.cilium_settings is not None
    else None
)
for warning in upgrade.warnings if upgrade else ():
    pulumi.log.warn(warning)

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
cni = Cni(
    "cni",
    CniArgs(
        config=config,
        provider=cluster.provider,
        kubeconfig=cluster.kubeconfig,
        context=cluster.context,
        upgrade=upgrade,
    ),
    in_cluster,
)
network_policies = NetworkPolicySet(
    "platform",
    NetworkPolicySetArgs(
        rendered=render_policies(config.network_policy, cni.capabilities, config.flavour),
        provider=cluster.provider,
        depends_on=[cni.installed] if cni.installed else [],
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
# Read back by the next run (components/stack_state.py): what this run deployed.
pulumi.export(STATE_OUTPUT, upgrade.state_output() if upgrade else None)
