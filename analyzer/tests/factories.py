"""What the analyzer's tests share: where their data lives, the synthetic-cluster generator and
the conformance suite (fixture and cases). Test modules import from here, never from each other."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

TESTS = Path(__file__).resolve().parent
ANALYZER = TESTS.parent
DATA = TESTS / "data"
CONFORMANCE = DATA / "conformance"
CASES_DIR = CONFORMANCE / "cases"
AUDIT = DATA / "audit"
ORACLE_CASES = CONFORMANCE / "oracle-cases.yaml"
# The repository's synthetic-cluster generator (also the benchmarks' input): the analyzer's
# tests read large clusters from it, they do not import it as a package.
GENERATOR = ANALYZER.parent / "benchmarks" / "generate.py"


def generator() -> ModuleType:
    """benchmarks/generate.py, loaded once (its `generate` and `write`)."""
    name = "reachability_tests_generate"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, GENERATOR)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def conformance_fixture() -> list[dict[str, Any]]:
    """The conformance suite's shared namespaces and pods (fixture.yaml)."""
    return list(yaml.safe_load_all((CONFORMANCE / "fixture.yaml").read_text(encoding="utf-8")))


def conformance_cases() -> list[dict[str, Any]]:
    """The conformance suite's cases (cases.yaml): policies, probes and expected verdicts."""
    cases: list[dict[str, Any]] = yaml.safe_load(
        (CONFORMANCE / "cases.yaml").read_text(encoding="utf-8")
    )["cases"]
    return cases
