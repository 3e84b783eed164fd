"""cilium-kube-proxy-replacement: Cilium replaces kube-proxy, and knows how to reach the API server.

ADR-013 sets `kubeProxyReplacement=true`. The 1.15 chart compares `toString .Values.
kubeProxyReplacement` with "true"/"false", so the boolean true and the string "true" render the
same agent flag and both pass; the deprecated "strict"/"partial"/"disabled" select other modes and
fail. Without kube-proxy the agents cannot use the `kubernetes` Service ClusterIP to find the API
server, so `k8sServiceHost` and `k8sServicePort` are required alongside.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationPolicy

from .manifests import port_number, release_values, shown, validate_cilium_release

NAME = "cilium-kube-proxy-replacement"


def violations(props: Mapping[str, Any]) -> Iterator[str]:
    values = release_values(props)
    mode = values.get("kubeProxyReplacement")
    # `is True`, not `==`: 1 and 1.0 equal True in Python but the chart renders them as "1".
    if not (mode is True or mode == "true"):
        yield (
            "Set the cilium value `kubeProxyReplacement` to true "
            f"(found {shown(mode)}; the deprecated strict/partial/disabled are other modes)."
        )
        return
    host = values.get("k8sServiceHost")
    if not (isinstance(host, str) and host.strip()):
        yield (
            "Set the cilium value `k8sServiceHost` to the API server address: with "
            "kubeProxyReplacement the agents cannot reach it through the kubernetes Service."
        )
    if port_number(values.get("k8sServicePort")) is None:
        yield (
            "Set the cilium value `k8sServicePort` to the API server port such as 6443 "
            f"(found {shown(values.get('k8sServicePort'))})."
        )


POLICY = ResourceValidationPolicy(
    name=NAME,
    description=(
        "Cilium runs with kubeProxyReplacement=true and the API server address it then needs "
        "(ADR-013, Production: kube-proxy replaced by eBPF)."
    ),
    validate=validate_cilium_release(violations),
)
