"""Fill in Cilium's verdicts in analyzer/tests/data/conformance/oracle-cases.yaml.

Each probe's allow/deny (4th item) is replaced by what tools/cilium-oracle (Cilium's own
pkg/policy code) answers, so the file's expectations come from Cilium, never from the analyzer.
An entry's `oracle` (a build of cilium_oracle.ORACLES) answers it, else the first build for its
`profile` (default cilium@1.15): 1.15.0 for cilium@1.15, 1.19.7 for cilium@1.19. An entry for
several profiles must get the same answers from each.
Run after adding a case (write "?" as the verdict) or after changing an oracle.

Usage: python scripts/derive_oracle_cases.py [CASES_YAML] [--oracle PATH]
(defaults: analyzer/tests/data/conformance/oracle-cases.yaml; the toolchain's bin/cilium-oracle*,
built by scripts/build_cilium_oracle.sh; --oracle or $CILIUM_ORACLE replaces the 1.15.0 one).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# The oracle harness lives with the analyzer's tests (analyzer/tests/cilium_oracle.py).
sys.path.insert(0, str(ROOT / "analyzer" / "tests"))

from cilium_oracle import (  # noqa: E402
    DERIVING_ORACLE,
    ORACLES,
    Oracle,
    case_profiles,
    oracle_binary,
    oracle_case,
    probe_of,
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "cases",
        nargs="?",
        type=Path,
        default=ROOT / "analyzer/tests/data/conformance/oracle-cases.yaml",
    )
    parser.add_argument("--oracle", type=Path, default=None)
    args = parser.parse_args(argv)
    oracles: dict[str, Oracle] = {}

    def oracle_for(build: str) -> Oracle | None:
        if build not in oracles:
            version = ORACLES[build][0]
            binary = (args.oracle if version is None else None) or oracle_binary(version)
            if binary is None or not binary.is_file():
                print(
                    f"no cilium-oracle binary for {build} (scripts/build_cilium_oracle.sh OUT_DIR"
                    f" {version or ''})",
                    file=sys.stderr,
                )
                return None
            oracles[build] = Oracle(binary)
        return oracles[build]

    text = args.cases.read_text(encoding="utf-8")
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    data = yaml.safe_load(text)
    fixture = list(
        yaml.safe_load_all((args.cases.parent / "fixture.yaml").read_text(encoding="utf-8"))
    )
    for entry in data["cases"]:
        answers = []
        for profile in case_profiles(entry):
            oracle = oracle_for(entry.get("oracle") or DERIVING_ORACLE[profile])
            if oracle is None:
                return 2
            res = oracle.ask(oracle_case(entry, fixture), [probe_of(p) for p in entry["probes"]])
            answers.append(
                ([r["allowed"] for r in res["results"]], [r["error"] for r in res["rejected"]])
            )
        verdicts, rejected = answers[0]
        if any(a[0] != verdicts or bool(a[1]) != bool(rejected) for a in answers[1:]):
            # One entry, several profiles: only for a case that each line answers alike.
            print(f"{entry['id']}: the profiles' Cilium answer differently", file=sys.stderr)
            return 2
        if rejected:
            entry["rejected_by_cilium"] = rejected
        for p, allowed in zip(entry["probes"], verdicts, strict=True):
            p[3] = "allow" if allowed else "deny"
    for oracle in oracles.values():
        oracle.close()
    body = yaml.safe_dump(data, sort_keys=False, width=100, default_flow_style=None)
    args.cases.write_text(header + body, encoding="utf-8")
    print(f"wrote {len(data['cases'])} cases to {args.cases}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
