"""The platform's network policies, applied as rendered for what the CNI can enforce.

Named NetworkPolicySet so that it is not confused with the CrossGuard pack in policies/.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from cnistack.netpol.renderer import DEFAULT_DENY_NAME, SENSITIVE_LABEL, RenderedPolicies


@dataclass(frozen=True)
class NetworkPolicySetArgs:
    rendered: RenderedPolicies
    provider: k8s.Provider
    # Cilium's CRDs exist only once its operator runs: CiliumNetworkPolicies wait for these.
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    protect: bool = False


class NetworkPolicySet(pulumi.ComponentResource):
    """Exposes ``fidelity``: the L7 rules this stack can only enforce on the whole port."""

    fidelity: list[dict[str, object]]

    def __init__(
        self, name: str, args: NetworkPolicySetArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aisp-cni:index:NetworkPolicySet", name, None, opts)
        namespaces: dict[str, pulumi.Resource] = {}
        for manifest in args.rendered.manifests:
            metadata = manifest["metadata"]
            if manifest["kind"] == "Namespace":
                # With server-side apply (pulumi-kubernetes v4 default) an existing
                # namespace is adopted rather than failing the create.
                namespaces[metadata["name"]] = k8s.core.v1.Namespace(
                    f"{name}-ns-{metadata['name']}",
                    metadata=metadata,
                    opts=pulumi.ResourceOptions(
                        parent=self,
                        provider=args.provider,
                        protect=args.protect,
                        # Deleting a namespace deletes its PersistentVolumeClaims: a namespace
                        # holding C4-C5 data (ADR-013 "Context") outlives the stack.
                        retain_on_delete=_holds_data(metadata),
                    ),
                )
        # A namespace's default-deny goes in only after every allow of that namespace (DNS and
        # flows, either kind): an update cut off in between (killed `up`, lost API server) must
        # never leave a namespace isolated without its DNS and its flows. Deletes run in the
        # reverse order, so the deny also goes first. (tests/test_policy_order.py)
        allows: dict[str, list[pulumi.Resource]] = {}
        denies: list[dict[str, Any]] = []
        for manifest in args.rendered.manifests:
            metadata = manifest["metadata"]
            if manifest["kind"] == "Namespace":
                continue
            if manifest["kind"] == "NetworkPolicy" and metadata["name"] == DEFAULT_DENY_NAME:
                denies.append(manifest)
                continue
            allows.setdefault(metadata["namespace"], []).append(
                self._policy(name, manifest, args, namespaces)
            )
        for manifest in denies:
            self._policy(
                name,
                manifest,
                args,
                namespaces,
                after=allows.get(manifest["metadata"]["namespace"], []),
            )
        for gap in args.rendered.fidelity:
            pulumi.log.warn(gap.message, resource=self)
        self.fidelity = [gap.as_output() for gap in args.rendered.fidelity]
        self.register_outputs({"fidelity": self.fidelity})

    def _policy(
        self,
        name: str,
        manifest: dict[str, Any],
        args: NetworkPolicySetArgs,
        namespaces: dict[str, pulumi.Resource],
        after: Sequence[pulumi.Resource] = (),
    ) -> pulumi.Resource:
        metadata = manifest["metadata"]
        own_namespace = (
            [namespaces[metadata["namespace"]]] if metadata["namespace"] in namespaces else []
        )
        opts = pulumi.ResourceOptions(
            parent=self,
            provider=args.provider,
            protect=args.protect,
            depends_on=[*own_namespace, *after],
        )
        if manifest["kind"] == "NetworkPolicy":
            return k8s.networking.v1.NetworkPolicy(
                _child_name(name, manifest), metadata=metadata, spec=manifest["spec"], opts=opts
            )
        return k8s.apiextensions.CustomResource(
            _child_name(name, manifest),
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata=metadata,
            spec=manifest["spec"],
            opts=opts.merge(pulumi.ResourceOptions(depends_on=list(args.depends_on))),
        )


def _child_name(name: str, manifest: dict[str, Any]) -> str:
    kind = "cnp" if manifest["kind"] == "CiliumNetworkPolicy" else "np"
    metadata = manifest["metadata"]
    return f"{name}-{kind}-{metadata['namespace']}-{metadata['name']}"


def _holds_data(metadata: dict[str, Any]) -> bool:
    return bool(metadata.get("labels", {}).get(SENSITIVE_LABEL) == "true")
