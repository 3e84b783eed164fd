"""The analyzer's Cilium profiles against Cilium's own policy code (tools/cilium-oracle):
`cilium@1.15` against 1.15.0 (ADR-013's pin) and 1.15.19, `cilium@1.19` against 1.19.7
(cilium_oracle.ORACLES).

Seeded and bounded, per oracle: CILIUM_ORACLE_CASES random clusters (default 300) from
CILIUM_ORACLE_SEED (default 20261201), each probed on every pod pair, six L4 ports and, where
L7 rules exist, HTTP requests. A disagreement fails with its minimal (shrunk) case. The oracle
binaries are built by scripts/build_cilium_oracle.sh (from scripts/toolchain.sh); missing, the
test FAILS.
Longer campaigns: scripts/cilium_oracle_campaign.py. See docs/cilium-oracle.md.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest
import yaml
from cilium_oracle import (
    CAMPAIGN,
    ORACLES,
    Oracle,
    case_profiles,
    minimal_disagreement,
    oracle_binary,
    oracle_case,
    ours,
    probe_of,
    probes,
    random_case,
)
from factories import ORACLE_CASES

pytestmark = [pytest.mark.engine, pytest.mark.oracle]

CASES = int(os.environ.get("CILIUM_ORACLE_CASES", "300"))
SEED = int(os.environ.get("CILIUM_ORACLE_SEED", "20261201"))


class ProfileOracle:
    """One oracle process and the analyzer profile that must agree with it."""

    def __init__(self, build: str, proc: Oracle, profile: str) -> None:
        self.build, self.proc, self.profile = build, proc, profile


# Cilium's own code at ADR-013's 1.15.0, at the 1.15 line's last patch (the path's first step)
# and at the 1.19 line's newest served patch (the production default's line;
# tools/cilium-oracle/versions/). `cilium@1.15` must agree with the first two, `cilium@1.19`
# with the third.
@pytest.fixture(scope="module", params=list(ORACLES))
def oracle(request: pytest.FixtureRequest) -> Iterator[ProfileOracle]:
    version, profile = ORACLES[request.param]
    binary = oracle_binary(version)
    if binary is None or not binary.is_file():
        pytest.fail(
            f"no cilium-oracle binary for {request.param}: run scripts/toolchain.sh "
            "(pieces oracle, oracle_path) or set CILIUM_ORACLE"
        )
    proc = Oracle(binary)
    yield ProfileOracle(request.param, proc, profile)
    proc.close()


def test_oracle_answers_a_known_case(oracle: ProfileOracle) -> None:
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
    res = oracle.proc.ask(case, probe_list)
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


def test_oracle_found_cases_still_hold_in_cilium(oracle: ProfileOracle) -> None:
    """Each committed oracle-found case of this oracle's profile: Cilium's code of that line
    still answers what the file says (the analyzer side of the same file is checked without the
    binary in test_conformance.py)."""
    fixture = list(yaml.safe_load_all((ORACLE_CASES.parent / "fixture.yaml").read_text()))
    # The profile's cases; one that names its `oracle` holds for that build only.
    entries = [
        e
        for e in _oracle_cases()
        if oracle.profile in case_profiles(e) and e.get("oracle", oracle.build) == oracle.build
    ]
    assert entries, f"no oracle-cases.yaml case for {oracle.profile}"
    wrong = []
    for entry in entries:
        case = oracle_case(entry, fixture)
        probe_list = [probe_of(p) for p in entry["probes"]]
        res = oracle.proc.ask(case, probe_list)
        got = ["allow" if r["allowed"] else "deny" for r in res["results"]]
        want = [p[3] for p in entry["probes"]]
        if got != want:
            wrong.append(f"{entry['id']}: Cilium {oracle.build} answers {got}, the file {want}")
        # Same number of refused policies (the message's order of field names is Go map order).
        refused = len(entry.get("rejected_by_cilium", []))
        if len(res["rejected"]) != refused:
            wrong.append(f"{entry['id']}: {len(res['rejected'])} policies refused, not {refused}")
    assert not wrong, "\n".join(wrong)


def test_random_policy_sets_agree_with_cilium(oracle: ProfileOracle) -> None:
    failures: list[str] = []
    probed = refused = 0
    for i in range(CASES):
        seed = SEED + i
        case = random_case(seed, **CAMPAIGN[oracle.profile])
        probe_list = probes(case)
        probed += len(probe_list)
        refused += isinstance(ours(case, probe_list[:1], oracle.profile), str)
        found = minimal_disagreement(oracle.proc, case, oracle.profile)
        if found is not None:
            minimal, probe = found
            failures.append(
                f"{oracle.profile} vs Cilium {oracle.build}, seed {seed}: "
                f"probe {json.dumps(probe)}\nminimal case:\n"
                + yaml.safe_dump(minimal, sort_keys=False)
            )
            if len(failures) >= 3:
                break
    assert not failures, "\n\n".join(failures)
    assert probed > CASES * 100  # the cases really probe pod pairs
    # and most of them are valid policy sets, analysed by both (Cilium 1.17+ refuses a CNP
    # without rules, about a fifth of the cases; 1.15 about a tenth)
    assert refused < CASES * 0.25


def test_1_19_lookup_agrees_with_upstreams_userspace_lookup() -> None:
    """The 1.19.7 oracle mirrors bpf/lib/policy.h's LPM lookup itself; with CILIUM_ORACLE_DEBUG it
    also asks EndpointPolicy.Lookup (upstream's userspace copy of that lookup) and prints each
    probe where the two differ. On 50 campaign cases, none may."""
    binary = oracle_binary("1.19.7")
    assert binary is not None and binary.is_file(), "no cilium-oracle-1.19.7: scripts/toolchain.sh"
    lines = []
    for i in range(50):
        case = random_case(SEED + i, **CAMPAIGN["cilium@1.19"])
        lines.append(json.dumps({**case, "probes": probes(case)}))
    proc = subprocess.run(
        [str(binary)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        env={**os.environ, "CILIUM_ORACLE_DEBUG": "1"},
        timeout=120,
        check=True,
    )
    answered = proc.stdout.splitlines()
    assert len(answered) == 50
    # The debug output is there (each endpoint's map), and no lookup differs.
    assert " -> " in proc.stderr
    assert [line for line in proc.stderr.splitlines() if "lookup differs" in line] == []
