"""How Cilium gets onto OpenShift: the OLM operator's CiliumConfig and the SCC bindings.

Helm onto a running OpenShift cluster that already runs OVN-Kubernetes is not a supported path;
Cilium goes on at install time (`networkType: Cilium`) through Isovalent's certified OLM
operator, configured by a `CiliumConfig` whose spec carries the Helm values
(isovalent/olm-for-cilium Documentation/k8s-install-openshift-okd.rst). With
`cilium.installMethod: olm` the program manages that CiliumConfig; with `helm` it installs the
release (Kubernetes, or OpenShift installed without a CNI). Either way the values are
`cnistack.cilium.helm_values`, OpenShift settings included.

Schema: olm-for-cilium manifests/cilium.v1.15.1/cluster-network-03-cilium-ciliumconfigs-crd.yaml
(CRD ciliumconfigs.cilium.io, group cilium.io, version v1alpha1, kind CiliumConfig, Namespaced,
`spec` an object with x-kubernetes-preserve-unknown-fields) and cluster-network-07-cilium-
ciliumconfig.yaml (the object `cilium` in namespace `cilium`).
"""

from __future__ import annotations

from typing import Any

from cnistack.cilium import cilium_namespace, helm_values
from cnistack.config import StackConfig
from cnistack.flavours import OPENSHIFT

CILIUM_CONFIG_API_VERSION = "cilium.io/v1alpha1"
CILIUM_CONFIG_KIND = "CiliumConfig"
CILIUM_CONFIG_NAME = "cilium"
# The chart's service accounts (values.yaml serviceAccounts.cilium.name / .operator.name).
AGENT_SERVICE_ACCOUNT = "cilium"
OPERATOR_SERVICE_ACCOUNT = "cilium-operator"
# The preflight check's DaemonSet before a minor step (values.yaml serviceAccounts.preflight.name):
# host-network with hostPath mounts (templates/cilium-preflight/daemonset.yaml), which the
# restricted SCC refuses.
PREFLIGHT_SERVICE_ACCOUNT = "cilium-pre-flight"
# OpenShift's built-in SCC admitting privileged, host-network, hostPath pods: the agent is all
# three, the operator runs hostNetwork with hostPath volumes (chart templates/cilium-operator/
# deployment.yaml). Binding `use` on an SCC through RBAC is what `oc adm policy add-scc-to-user
# privileged -z SA` does; olm-for-cilium grants its own operator the same way (ClusterRole
# cilium-cilium-olm: security.openshift.io securitycontextconstraints `hostnetwork`, verb use).
SCC = "privileged"
SCC_ROLE = "cilium-scc-privileged"


def cilium_config(config: StackConfig) -> dict[str, Any]:
    """The CiliumConfig the OLM operator renders its chart from: the same Helm values."""
    return {
        "apiVersion": CILIUM_CONFIG_API_VERSION,
        "kind": CILIUM_CONFIG_KIND,
        "metadata": {"name": CILIUM_CONFIG_NAME, "namespace": cilium_namespace(config)},
        "spec": helm_values(config),
    }


def scc_manifests(config: StackConfig) -> list[dict[str, Any]]:
    """ClusterRole allowing `use` of the privileged SCC, bound to the agent's and operator's SAs."""
    if config.flavour is not OPENSHIFT or config.cilium_settings is None:
        return []
    namespace = cilium_namespace(config)
    labels = {"app.kubernetes.io/managed-by": "cnistack"}
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": SCC_ROLE, "labels": labels},
            "rules": [
                {
                    "apiGroups": ["security.openshift.io"],
                    "resources": ["securitycontextconstraints"],
                    "resourceNames": [SCC],
                    "verbs": ["use"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": SCC_ROLE, "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": SCC_ROLE,
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": account, "namespace": namespace}
                for account in (
                    AGENT_SERVICE_ACCOUNT,
                    OPERATOR_SERVICE_ACCOUNT,
                    PREFLIGHT_SERVICE_ACCOUNT,
                )
            ],
        },
    ]


def preview_warnings(config: StackConfig) -> list[str]:
    """What the program cannot check from its config and says at every preview."""
    settings = config.cilium_settings
    if config.flavour is not OPENSHIFT or settings is None:
        return []
    warnings = []
    if settings.kube_proxy_replacement:
        warnings.append(
            "kube-proxy replacement: make sure the cluster network operator runs without "
            "kube-proxy (oc get networks.operator.openshift.io cluster -o "
            "jsonpath='{.spec.deployKubeProxy}' prints false); the stack declares "
            "cluster.deployKubeProxy: false"
        )
    if settings.install_method == "olm":
        warnings.append(
            "installMethod olm: the CiliumConfig configures the operator installed with the "
            "cluster (networkType: Cilium); its chart version is the operator's, not "
            "cilium.chart.version"
        )
    return warnings
