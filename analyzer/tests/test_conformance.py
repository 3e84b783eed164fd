"""The shared conformance suite (copied by scripts/derive_conformance.py), case by case and
profile by profile, plus a check that `list` (class pairs) agrees with `query` on each case."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from cilium_oracle import case_profiles, manifests
from factories import ORACLE_CASES as ORACLE_CASES_FILE
from factories import conformance_cases, conformance_fixture

from reachability.engine import Analyzer, Request
from reachability.loader import load_documents

FIXTURE = conformance_fixture()
CASES = conformance_cases()


def analyzer_for(case: dict[str, Any], enforcement: str) -> Analyzer:
    docs = [(d, "fixture.yaml") for d in FIXTURE] + [
        (p, f"case {case['id']}") for p in case["policies"]
    ]
    return Analyzer(load_documents(docs), enforcement)  # type: ignore[arg-type]


def request_of(probe: list[str]) -> Request:
    proto, port = probe[2].split("/")
    method = probe[4] if len(probe) > 4 else None
    path = probe[5] if len(probe) > 5 else None
    return Request(proto, int(port), method, path)


# Cases found by the Cilium oracle (docs/cilium-oracle.md); verdicts are Cilium 1.15.0's own.
ORACLE_CASES: list[dict[str, Any]] = yaml.safe_load(ORACLE_CASES_FILE.read_text(encoding="utf-8"))[
    "cases"
]
# A shared case whose `cilium` expectation Cilium 1.15 does not meet is replaced by its oracle case.
SUPERSEDED = {case["supersedes"] for case in ORACLE_CASES if "supersedes" in case}

PARAMS = [
    pytest.param(case, enforcement, id=f"{case['id']}[{enforcement}]")
    for case in CASES
    for enforcement in case["enforcement"]
    if not (enforcement == "cilium" and case["id"] in SUPERSEDED)
]


def test_suite_is_present() -> None:
    assert len(CASES) >= 24
    assert all(case["enforcement"] for case in CASES)


@pytest.mark.parametrize(("case", "enforcement"), PARAMS)
def test_case(case: dict[str, Any], enforcement: str) -> None:
    analyzer = analyzer_for(case, enforcement)
    wrong = []
    for probe in case["probes"]:
        verdict = analyzer.query(probe[0], probe[1], request_of(probe))
        expected = probe[3] == "allow"
        if verdict.allowed != expected:
            wrong.append(f"{probe}: got {'allow' if verdict.allowed else 'deny'}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("case", "enforcement"), PARAMS)
def test_list_agrees_with_query(case: dict[str, Any], enforcement: str) -> None:
    analyzer = analyzer_for(case, enforcement)
    listed = {(s, d): ports for s, d, ports in analyzer.flows()}
    pods = sorted(analyzer.class_of_pod)
    for src in pods:
        for dst in pods:
            if src == dst:
                continue
            for proto in ("TCP", "UDP", "SCTP"):
                for port in (53, 80, 81, 443):
                    verdict = analyzer.query(src, dst, Request(proto, port))
                    ports = listed.get((src, dst))
                    in_list = ports is not None and ports.allows(proto, port, None, None)
                    assert verdict.allowed == in_list, (src, dst, proto, port)


def oracle_case_documents(entry: dict[str, Any]) -> list[dict[str, Any]]:
    case = entry["case"]
    if case.get("fixture"):
        return FIXTURE + list(case["policies"])
    return manifests(case)


def test_oracle_cases_are_present() -> None:
    assert len(ORACLE_CASES) >= 8
    assert {case["id"] for case in CASES} >= SUPERSEDED


@pytest.mark.parametrize(
    ("entry", "profile"),
    [(e, p) for e in ORACLE_CASES for p in case_profiles(e)],
    ids=lambda v: str(v["id"]) if isinstance(v, dict) else str(v),
)
def test_oracle_found_case(entry: dict[str, Any], profile: str) -> None:
    # Each profile whose Cilium line answered the case (cilium_oracle.ORACLES).
    docs = [(d, f"oracle case {entry['id']}") for d in oracle_case_documents(entry)]
    analyzer = Analyzer(load_documents(docs), profile)
    # The agent refuses these policies and enforces the others: the analyzer leaves the same
    # ones out (the probes below are Cilium's answers without them).
    assert len(analyzer.rejected) == len(entry.get("rejected_by_cilium", []))
    wrong = []
    for probe in entry["probes"]:
        verdict = analyzer.query(probe[0], probe[1], request_of(probe))
        if verdict.allowed != (probe[3] == "allow"):
            wrong.append(f"{probe}: got {'allow' if verdict.allowed else 'deny'}")
    if entry.get("known_divergence"):
        # Recorded, not yet modelled: the analyzer must still differ (else drop the mark).
        assert wrong, f"{entry['id']} now agrees with Cilium: remove known_divergence"
        pytest.xfail(f"{entry['known_divergence']}: {wrong}")
    assert not wrong, "\n".join(wrong)
