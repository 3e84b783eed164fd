"""The analyzer's `cilium` profile against Cilium 1.15.0's own policy code (tools/cilium-oracle).

Seeded and bounded: CILIUM_ORACLE_CASES random clusters (default 300) from CILIUM_ORACLE_SEED
(default 20261201), each probed on every pod pair, six L4 ports and, where L7 rules exist, HTTP
requests. A disagreement fails with its minimal (shrunk) case. The oracle binary is built by
scripts/build_cilium_oracle.sh (from scripts/toolchain.sh); missing, the test FAILS.
Longer campaigns: scripts/cilium_oracle_campaign.py. See docs/cilium-oracle.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import yaml
from cilium_oracle import (
    Oracle,
    minimal_disagreement,
    oracle_binary,
    oracle_case,
    ours,
    probe_of,
    probes,
    random_case,
)
from factories import ORACLE_CASES

pytestmark = pytest.mark.engine

CASES = int(os.environ.get("CILIUM_ORACLE_CASES", "300"))
SEED = int(os.environ.get("CILIUM_ORACLE_SEED", "20261201"))


# Cilium's own code at ADR-013's 1.15.0 and at the 1.15 line's last patch (the path's first
# step; tools/cilium-oracle/versions/). The `cilium@1.15` profile must agree with both.
@pytest.fixture(scope="module", params=[None, "1.15.19"], ids=["1.15.0", "1.15.19"])
def oracle(request: pytest.FixtureRequest) -> Iterator[Oracle]:
    binary = oracle_binary(request.param)
    if binary is None or not binary.is_file():
        pytest.fail(
            f"no cilium-oracle binary for {request.param or '1.15.0'}: run scripts/toolchain.sh "
            "(pieces oracle, oracle_path) or set CILIUM_ORACLE"
        )
    proc = Oracle(binary)
    yield proc
    proc.close()


def test_oracle_answers_a_known_case(oracle: Oracle) -> None:
    """The oracle itself: Cilium's identity labels and one allow, one deny, one L7 redirect."""
    case = {
        "namespaces": [{"name": "x", "labels": {"kubernetes.io/metadata.name": "x", "t": "1"}}],
        "pods": [
            {
                "namespace": "x",
                "name": "a",
                "labels": {"pod": "a", "pod-template-hash": "h"},
                "serviceAccount": "sa1",
                "ports": [],
            },
            {
                "namespace": "x",
                "name": "b",
                "labels": {"pod": "b"},
                "serviceAccount": "default",
                "ports": [],
            },
        ],
        "policies": [
            {
                "apiVersion": "cilium.io/v2",
                "kind": "CiliumNetworkPolicy",
                "metadata": {"name": "p", "namespace": "x"},
                "spec": {
                    "endpointSelector": {"matchLabels": {"pod": "b"}},
                    "ingress": [
                        {
                            "fromEndpoints": [{"matchLabels": {"pod": "a"}}],
                            "toPorts": [
                                {
                                    "ports": [{"port": "80", "protocol": "TCP"}],
                                    "rules": {"http": [{"method": "GET"}]},
                                }
                            ],
                        }
                    ],
                },
            }
        ],
    }
    probe_list = [
        {"src": "x/a", "dst": "x/b", "protocol": "TCP", "port": 80},
        {"src": "x/a", "dst": "x/b", "protocol": "TCP", "port": 81},
        {"src": "x/a", "dst": "x/b", "protocol": "TCP", "port": 80, "method": "POST", "path": "/"},
        {"src": "x/b", "dst": "x/a", "protocol": "UDP", "port": 53},
    ]
    res = oracle.ask(case, probe_list)
    assert res["identities"]["x/a"] == [
        "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=x",
        "k8s:io.cilium.k8s.namespace.labels.t=1",
        "k8s:io.cilium.k8s.policy.cluster=default",
        "k8s:io.cilium.k8s.policy.serviceaccount=sa1",
        "k8s:io.kubernetes.pod.namespace=x",
        "k8s:pod=a",
    ]
    got = [(r["allowed"], r["l7Restricted"], r["ingress"]["entry"]) for r in res["results"]]
    assert got == [
        (True, True, "redirect"),
        (False, False, "none"),
        (False, True, "redirect"),
        (True, False, "allow"),
    ]


def _oracle_cases() -> list[dict[str, object]]:
    return yaml.safe_load(ORACLE_CASES.read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("entry", _oracle_cases(), ids=lambda e: str(e["id"]))
def test_oracle_found_case_still_holds_in_cilium(oracle: Oracle, entry: dict[str, object]) -> None:
    """Each committed oracle-found case: Cilium's code still answers what the file says (the
    analyzer side of the same file is checked without the binary in
    test_connectivity_conformance.py)."""
    fixture = list(yaml.safe_load_all((ORACLE_CASES.parent / "fixture.yaml").read_text()))
    case = oracle_case(entry, fixture)
    probe_list = [probe_of(p) for p in entry["probes"]]  # type: ignore[union-attr]
    res = oracle.ask(case, probe_list)
    got = ["allow" if r["allowed"] else "deny" for r in res["results"]]
    assert got == [p[3] for p in entry["probes"]]  # type: ignore[union-attr]
    # Same number of refused policies (the message's order of field names is Go map order).
    assert len(res["rejected"]) == len(entry.get("rejected_by_cilium", []))  # type: ignore[arg-type]


def test_random_policy_sets_agree_with_cilium(oracle: Oracle) -> None:
    failures: list[str] = []
    probed = refused = 0
    for i in range(CASES):
        seed = SEED + i
        case = random_case(seed, l7_port_overlap=False)
        probe_list = probes(case)
        probed += len(probe_list)
        refused += isinstance(ours(case, probe_list[:1]), str)
        found = minimal_disagreement(oracle, case)
        if found is not None:
            minimal, probe = found
            failures.append(
                f"seed {seed}: probe {json.dumps(probe)}\nminimal case:\n"
                + yaml.safe_dump(minimal, sort_keys=False)
            )
            if len(failures) >= 3:
                break
    assert not failures, "\n\n".join(failures)
    assert probed > CASES * 100  # the cases really probe pod pairs
    assert refused < CASES * 0.15  # and most of them are valid policy sets, analysed by both
