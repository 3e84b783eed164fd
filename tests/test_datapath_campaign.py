"""The kube-router differential campaign in CI: seeded random clusters (the Cilium oracle's
generator, NetworkPolicies only) through K3s's real datapath and through the analyzer.

DATAPATH_CLUSTERS (default 30) clusters from DATAPATH_SEED (default 1). Every disagreement is
shrunk with real runs and printed; one that is not a known divergence
(tests/data/datapath/known-divergences.yaml) fails the test. See docs/datapath-lab.md for the
counts of the last long campaign.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reachability import InputError
from tests.datapath import lab_module, require_lab
from tests.datapath_campaign import (
    CampaignResult,
    Disagreement,
    campaign_case,
    known_divergence,
    run_case,
    shrink_case,
)

pytestmark = [pytest.mark.engine, pytest.mark.datapath]

CLUSTERS = int(os.environ.get("DATAPATH_CLUSTERS", "30"))
SEED = int(os.environ.get("DATAPATH_SEED", "1"))
KNOWN = Path(__file__).parent / "data/datapath/known-divergences.yaml"
SHRINK_BUDGET = 25


def known_ids(enforcer: str) -> dict[str, str]:
    entries = yaml.safe_load(KNOWN.read_text()) or []
    return {e["id"]: " ".join(e["why"].split()) for e in entries if e["enforcer"] == enforcer}


def _lab(enforcer: str) -> Iterator[Any]:
    require_lab(enforcer)
    with tempfile.TemporaryDirectory(prefix="cnistack-campaign-") as tmp:
        try:
            yield lab_module.Lab.start(Path(tmp), enforcer, 2)
        finally:
            lab_module.stop(Path(tmp))


def campaign(lab: Any, enforcer: str) -> list[str]:
    """Run the campaign; return its report (first line: the counts) and the unexplained
    disagreement shapes."""
    result = CampaignResult()
    explained: dict[str, int] = {}
    explained_clusters: dict[str, set[int]] = {}
    for seed in range(SEED, SEED + CLUSTERS):
        case = campaign_case(seed, enforcer)
        try:
            outcome = run_case(
                lab, case, enforcer, lab_module.CLUSTER_CIDR, lab_module.CONFIRM_TIMEOUT_S
            )
        except InputError:
            result.refused += 1  # the analyzer refuses what Cilium refuses (docs/cilium-oracle.md)
            continue
        except lab_module.LabError as error:
            if "the API server refused it" not in str(error):
                raise
            result.refused += 1  # the CRD's schema refuses it: no enforcer ever sees it
            continue
        result.clusters += 1
        result.probes += len(outcome.probes)
        result.converge_s.append(outcome.converge_s)
        # Each disagreeing probe is classed: a known divergence (by structure), else shrunk.
        unexplained_here = []
        for flow, model, packets in outcome.disagreements:
            why = known_divergence(enforcer, case, flow, model)
            if why is None:
                unexplained_here.append((flow, model, packets))
            else:
                explained[why] = explained.get(why, 0) + 1
                explained_clusters.setdefault(why, set()).add(seed)
        if not unexplained_here:
            continue
        flow, model, packets = unexplained_here[0]

        def still_fails(candidate: Any, flow: Any = flow, model: bool = model) -> bool:
            try:
                again = run_case(
                    lab, candidate, enforcer, lab_module.CLUSTER_CIDR, lab_module.CONFIRM_TIMEOUT_S
                )
            except (InputError, lab_module.LabError):
                return False
            return any(f == flow and m == model for f, m, _ in again.disagreements)

        minimal = shrink_case(case, still_fails, SHRINK_BUDGET)
        result.disagreements.append(Disagreement(seed, minimal, flow, model, packets))
    lab.reset()
    known = known_ids(enforcer)
    assert set(explained) <= set(known), (
        f"classes missing from {KNOWN}: {set(explained) - set(known)}"
    )
    unexplained = result.disagreements
    report = [
        f"{enforcer}: {result.clusters} clusters ({result.refused} refused before any packet), "
        f"{result.probes} probes; disagreeing probes: "
        f"{sum(explained.values())} known in {sum(len(v) for v in explained_clusters.values())} "
        f"cluster(s), unexplained in {len(unexplained)} cluster(s); "
        f"convergence max {max(result.converge_s, default=0):.2f} s"
    ]
    report += [
        f"{n} probes in {len(explained_clusters[why])} cluster(s): known {why}"
        for why, n in sorted(explained.items())
    ]
    for d in unexplained:
        report.append(
            f"UNEXPLAINED: seed {d.seed}, {d.flow} model {'allows' if d.model else 'denies'}, "
            f"shrunk to:\n{yaml.safe_dump(d.case['policies'], sort_keys=False)}"
        )
    print("\n".join(report))
    assert result.clusters >= CLUSTERS // 2, "\n".join(report)
    assert unexplained == [], "\n".join(report)
    return report


def test_kube_router_campaign() -> None:
    for lab in _lab("kube-router"):
        campaign(lab, "kube-router")


def test_cilium_campaign() -> None:
    for lab in _lab("cilium"):
        campaign(lab, "cilium")
