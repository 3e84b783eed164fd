"""Differential campaigns: seeded random clusters through a real enforcer and the analyzer.

The clusters come from the generator of the Cilium oracle campaign (analyzer/tests/cilium_oracle.py,
`random_case`): three namespaces, up to nine pods with random labels, service accounts and named
ports, one to four random policies. For kube-router only its NetworkPolicies are kept (K3s's
controller ignores Cilium's kinds). Each cluster is applied to one running lab (the previous
cluster's pods and policies removed first), the enforcer's convergence is awaited, every pod
pair and every outside class is probed with real packets, and each answer is compared with the
analyzer's (cnistack/datapath_check.py). A disagreement is shrunk (delta debugging over the
policy documents, each step a real run) and grouped by the shape of what is left.

Known divergences (an enforcer bug cited upstream, or a lab limit) are listed in
tests/data/datapath/known-divergences.yaml and reported apart; anything else fails the test.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cnistack import datapath_check
from tests.datapath import lab_module, load_oracle_helpers

# The generator of the Cilium oracle campaign lives with the analyzer's tests.
_oracle = load_oracle_helpers()
Case = dict[str, Any]
manifests = _oracle.manifests
random_case = _oracle.random_case

ENFORCEMENT_KINDS = {
    "kube-router": ("NetworkPolicy",),
    "cilium": ("NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"),
}


def campaign_case(seed: int, enforcement: str) -> Case:
    """The generator's cluster for `seed`, with the policy kinds `enforcement` applies; seeds
    whose cluster has no such policy draw again from a derived seed (deterministically)."""
    kinds = ENFORCEMENT_KINDS[enforcement]
    rng = random.Random(seed)
    while True:
        case = random_case(rng.randrange(1 << 30))
        policies = [p for p in case["policies"] if p["kind"] in kinds]
        if policies and case["pods"]:
            return {**case, "policies": policies}


def documents(case: Case, enforcement: str) -> list[dict[str, Any]]:
    """The case's objects. Under Cilium, L7 rules are removed on both sides (the lab's agent
    has no Envoy and checks them at L4; HTTP answers are the oracle's, docs/datapath-lab.md)."""
    docs = manifests(case)
    if enforcement == "cilium":
        docs = [lab_module.without_l7(d) if d["kind"].startswith("Cilium") else d for d in docs]
    return docs


@dataclass
class Disagreement:
    seed: int
    case: Case
    flow: datapath_check.Flow
    model: bool
    packets: bool

    def shape(self) -> str:
        """What kind of disagreement: the direction and the policy fields left after shrinking
        (names and values dropped), so repeats of one cause group together."""

        def skeleton(node: Any) -> Any:
            if isinstance(node, dict):
                return {
                    k: skeleton(v)
                    for k, v in sorted(node.items())
                    if k not in ("name", "namespace")
                }
            if isinstance(node, list):
                return [skeleton(v) for v in node]
            return None

        side = "model allows, packets dropped" if self.model else "model denies, packets pass"
        return (
            side
            + " "
            + json.dumps([skeleton(p["spec"]) for p in self.case["policies"]], sort_keys=True)
        )


@dataclass
class CampaignResult:
    clusters: int = 0
    refused: int = 0
    probes: int = 0
    converge_s: list[float] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)

    def classes(self) -> Counter[str]:
        return Counter(d.shape() for d in self.disagreements)


def run_case(
    lab: Any, case: Case, enforcement: str, pod_cidr: str, confirm: float
) -> datapath_check.Outcome:
    lab.reset()
    return datapath_check.differential(
        lab,
        documents(case, enforcement),
        enforcement,
        pod_cidr,
        confirm,  # type: ignore[arg-type]
    )


def shrink_case(case: Case, still_fails: Callable[[Case], bool], budget: int) -> Case:
    """Drop whole policies, then whole rules, then peers and ports, keeping each removal that
    still disagrees (each check is a real lab run, hence the small budget)."""
    current = copy.deepcopy(case)
    spent = 0

    def candidates(c: Case) -> list[Case]:
        out = []
        for i in range(len(c["policies"])):
            out.append({**c, "policies": c["policies"][:i] + c["policies"][i + 1 :]})
        for i, policy in enumerate(c["policies"]):
            spec = policy["spec"]
            for key in ("ingress", "egress"):
                for j in range(len(spec.get(key) or [])):
                    changed = copy.deepcopy(c)
                    del changed["policies"][i]["spec"][key][j]
                    out.append(changed)
                    for sub in ("from", "to", "ports"):
                        for k in range(len((spec[key][j] or {}).get(sub) or [])):
                            deeper = copy.deepcopy(c)
                            del deeper["policies"][i]["spec"][key][j][sub][k]
                            out.append(deeper)
        return out

    progress = True
    while progress and spent < budget:
        progress = False
        for candidate in candidates(current):
            if not candidate["policies"] or spent >= budget:
                continue
            spent += 1
            if still_fails(candidate):
                current = candidate
                progress = True
                break
    return current


# --- known divergences: an enforcer's documented behaviour, recognised by structure -----------


def _matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels + matchExpressions) against a pod's labels."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if (
            (op == "In" and not (present and labels[key] in values))
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def _port_covers(port_rules: list[dict[str, Any]] | None, flow: datapath_check.Flow) -> bool:
    if not port_rules:
        return True
    for rule in port_rules:
        if (rule.get("protocol") or "TCP") != flow.protocol:
            continue
        port = rule.get("port")
        if port is None or isinstance(port, str):  # every port / a named port (resolved per pod)
            return True
        if port <= flow.port <= (rule.get("endPort") or port):
            return True
    return False


def _peer_matches(
    peer: dict[str, Any], pod: dict[str, Any], policy_ns: str, namespaces: dict[str, dict[str, str]]
) -> bool:
    """NetworkPolicyPeer semantics for a pod. An ipBlock is compared with the lab's pod CIDR (all
    lab pods are in it; the generator's only CIDR, 10.0.0.0/8, holds it whole)."""
    if "ipBlock" in peer:
        return ipaddress.ip_network(peer["ipBlock"]["cidr"]).overlaps(
            ipaddress.ip_network(lab_module.CLUSTER_CIDR)
        )
    if "namespaceSelector" in peer:
        if not _matches(peer["namespaceSelector"], namespaces.get(pod["namespace"], {})):
            return False
    elif pod["namespace"] != policy_ns:
        return False
    return "podSelector" not in peer or _matches(peer["podSelector"], pod["labels"])


def known_divergence(
    enforcer: str, case: Case, flow: datapath_check.Flow, model: bool
) -> str | None:
    """The id of the known divergence (tests/data/datapath/known-divergences.yaml) that
    explains this disagreement, or None."""
    if enforcer != "kube-router" or model:
        return None
    pods = {f"{p['namespace']}/{p['name']}": p for p in case["pods"]}
    namespaces = {n["name"]: n["labels"] for n in case["namespaces"]}
    src, dst = pods.get(flow.src), pods.get(flow.dst)
    if src is None or dst is None:
        return None
    for policy in case["policies"]:
        ns, spec = policy["metadata"].get("namespace", "default"), policy["spec"]
        if not all(
            p["namespace"] == ns and _matches(spec.get("podSelector"), p["labels"])
            for p in (src, dst)
        ):
            continue
        # kube-router v2.1.0 runs every policy chain selecting a pod for traffic to AND from it
        # (pod.go syncPodFirewallChains: one KUBE-POD-FW chain per pod), and an egress rule is
        # `src in <policy's pods> [and dst in <peers>]`, an ingress rule `dst in <policy's pods>
        # [and src in <peers>]` (policy.go processEgressRules / processIngressRules). When the
        # policy selects both ends, a rule of either direction that admits src -> dst accepts
        # the packet at both ends.
        for rule in spec.get("egress") or []:
            peers = rule.get("to") or []
            if (not peers or any(_peer_matches(p, dst, ns, namespaces) for p in peers)) and (
                _port_covers(rule.get("ports"), flow)
            ):
                return "kube-router-policy-rules-both-directions"
        for rule in spec.get("ingress") or []:
            peers = rule.get("from") or []
            if (not peers or any(_peer_matches(p, src, ns, namespaces) for p in peers)) and (
                _port_covers(rule.get("ports"), flow)
            ):
                return "kube-router-policy-rules-both-directions"
    return None
