"""cilium-node-encryption: WireGuard covers node traffic too, not only pod-to-pod.

Cilium's WireGuard encrypts traffic between Cilium-managed pods; node-to-pod, pod-to-node and
node-to-node traffic stays clear unless `encryption.nodeEncryption` is true
(Documentation/security/network/encryption-wireguard.rst, "Node-to-Node Encryption (beta)").
OpenShift's router runs in the host network and carries C4-C5 requests to pods on other nodes
(docs/openshift.md), so production turns it on. Upstream leaves control-plane nodes out
(`node-encryption-opt-out-labels`), whose API traffic Kubernetes protects with mTLS. Checked only
where WireGuard is on (cilium-wireguard-encryption asks for it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationPolicy

from .manifests import dig, release_values, shown, validate_cilium_release

NAME = "cilium-node-encryption"


def violations(props: Mapping[str, Any]) -> Iterator[str]:
    values = release_values(props)
    if dig(values, "encryption", "enabled") is not True:
        return
    if dig(values, "encryption", "type") != "wireguard":
        return
    node = dig(values, "encryption", "nodeEncryption")
    if node is not True:
        yield (
            "Set the cilium value `encryption.nodeEncryption` to true: host-network traffic "
            f"(OpenShift's router) to pods on other nodes is otherwise clear (found {shown(node)})."
        )


POLICY = ResourceValidationPolicy(
    name=NAME,
    description=(
        "WireGuard also encrypts node-to-pod and node-to-node traffic (encryption.nodeEncryption)."
    ),
    validate=validate_cilium_release(violations),
)
