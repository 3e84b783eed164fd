"""The enforcement profiles, the analyzer's public contract (reachability/profiles.py): their
facts, their names on the command line, and the analyzer standing alone (nothing from cnistack)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from factories import ANALYZER, CASES_DIR

from reachability import Analyzer, InputError, load_documents
from reachability.cli import main
from reachability.profiles import CILIUM_1_15, CILIUM_1_19, KUBE_ROUTER, PROFILE_NAMES, profile

L7 = str(CASES_DIR / "cilium-l7-http-get-path.yaml")


def test_the_profiles_and_their_facts() -> None:
    assert PROFILE_NAMES == ("kube-router", "cilium", "cilium@1.15", "cilium@1.19")
    # `cilium` is the production default's line (1.19.7 on 2026-12-07).
    assert profile("cilium") is profile("cilium@1.19") is CILIUM_1_19
    assert profile("cilium@1.15") is CILIUM_1_15
    assert profile("kube-router") is KUBE_ROUTER
    # Cilium 1.15 (the oracle's version): CNPs and L7 read, ipBlock outside the cluster only,
    # a port range enforced at its start port only (endPort arrived in Cilium 1.16).
    assert (CILIUM_1_15.enforcer, CILIUM_1_15.version) == ("cilium", "1.15")
    assert (CILIUM_1_15.cilium_policies, CILIUM_1_15.l7_policy) == (True, True)
    assert (CILIUM_1_15.ip_block_matches_pods, CILIUM_1_15.end_port) == (False, False)
    assert (KUBE_ROUTER.enforcer, KUBE_ROUTER.version) == ("kube-router", None)
    assert (KUBE_ROUTER.cilium_policies, KUBE_ROUTER.l7_policy) == (False, False)
    assert (KUBE_ROUTER.ip_block_matches_pods, KUBE_ROUTER.end_port) == (True, True)


def test_unknown_profile_is_named() -> None:
    with pytest.raises(InputError) as caught:
        Analyzer(load_documents([]), "calico")
    assert str(caught.value) == (
        "unknown enforcement profile 'calico' (expected kube-router, cilium, cilium@1.15, "
        "cilium@1.19)"
    )


def test_versioned_name_answers_as_its_alias(capsys: pytest.CaptureFixture[str]) -> None:
    flows = {}
    for name in ("cilium", "cilium@1.19"):
        code = main(["list", "--manifests", L7, "--enforcement", name, "--format", "json",
                     "--per-pod"])  # fmt: skip
        out = capsys.readouterr().out
        assert code == 0
        doc = json.loads(out)
        assert doc["enforcement"] == name
        flows[name] = doc["flows"]
    assert flows["cilium"] == flows["cilium@1.19"]
    assert {"from": "x/b", "to": "x/a", "protocol": "TCP", "ports": [[80, 80]],
            "http": [{"method": "GET", "path": "/public"}]} in flows["cilium"]  # fmt: skip


def test_diff_side_with_a_versioned_profile(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diff", f"manifests:{L7}@cilium", f"manifests:{L7}@cilium@1.15", "--format",
                 "json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (doc["a"], doc["b"]) == ("cilium", "cilium@1.15")
    assert (doc["added"], doc["removed"], doc["changed"]) == ([], [], [])


def test_stack_sources_need_the_iac_program(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["list", "--stack", "production"])
    assert code == 2
    assert capsys.readouterr().err == (
        "error: stack 'production': stack sources need the IaC program "
        "(python -m cnistack connectivity)\n"
    )


def test_the_analyzer_imports_nothing_from_the_iac_program() -> None:
    """Every module of the package imported in a fresh interpreter: no cnistack, components,
    policies or Pulumi module is loaded, and the Kubernetes client only by the live source."""
    probe = (
        "import importlib, pkgutil, sys, reachability\n"
        "names = [m.name for m in pkgutil.walk_packages(reachability.__path__, 'reachability.')]\n"
        "for n in names:\n"
        "    if n not in ('reachability.__main__', 'reachability.cluster_source'):\n"
        "        importlib.import_module(n)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "             ('cnistack', 'components', 'policies', 'pulumi', 'kubernetes'))\n"
        "print(len(names), bad)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=ANALYZER, capture_output=True, text=True, check=True
    )
    count, bad = proc.stdout.split(" ", 1)
    assert int(count) >= 20
    assert bad.strip() == "[]"
