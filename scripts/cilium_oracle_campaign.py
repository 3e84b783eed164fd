"""A longer differential campaign of an analyzer Cilium profile against tools/cilium-oracle.

Runs N random cases from a seed, shrinks every disagreement to a minimal case, groups the minimal
cases by a signature (the policy kinds and fields left after shrinking) and prints one example
per group as YAML, so distinct disagreements stand out from repeats. Exit status 1 when any
disagreement was found.

Usage: python scripts/cilium_oracle_campaign.py [--cases N] [--seed S] [--against BUILD]
[--oracle PATH]
(--against: an oracle build of cilium_oracle.ORACLES, default 1.15.0, which also names the
analyzer profile checked: cilium@1.15 for 1.15.*, cilium@1.19 for 1.19.7; the binary defaults to
the toolchain's bin/cilium-oracle[-VERSION], or $CILIUM_ORACLE for 1.15.0; build it with
scripts/build_cilium_oracle.sh OUT_DIR [VERSION]). See docs/cilium-oracle.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

# The oracle harness lives with the analyzer's tests (analyzer/tests/cilium_oracle.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "analyzer" / "tests"))

from cilium_oracle import (
    CAMPAIGN,
    ORACLES,
    Oracle,
    minimal_disagreement,
    oracle_binary,
    probes,
    random_case,
)


def _shape(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _shape(v) for k, v in sorted(node.items()) if k not in ("name", "namespace")}
    if isinstance(node, list):
        return [_shape(v) for v in node]
    return None


def signature(case: dict[str, Any]) -> str:
    return json.dumps([_shape(p) for p in case["policies"]], sort_keys=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--against", choices=list(ORACLES), default="1.15.0")
    parser.add_argument("--oracle", type=Path, default=None)
    parser.add_argument(
        "--no-l7-port-overlap",
        action="store_true",
        help="HTTP rules on port 81 only, as cilium@1.15's CI test (skips 1.15's Envoy quirk)",
    )
    args = parser.parse_args(argv)
    version, profile = ORACLES[args.against]
    binary = args.oracle or oracle_binary(version)
    if binary is None or not binary.is_file():
        print("no cilium-oracle binary (scripts/build_cilium_oracle.sh OUT_DIR)", file=sys.stderr)
        return 2
    oracle = Oracle(binary)
    groups: dict[str, tuple[int, dict[str, Any], dict[str, Any], int]] = {}
    probed = 0
    start = time.monotonic()
    for i in range(args.cases):
        seed = args.seed + i
        # The profile's pod labels (cilium_oracle.CAMPAIGN), the generator's L7 ports as asked.
        labels = CAMPAIGN[profile]["versioned_labels"]
        case = random_case(seed, not args.no_l7_port_overlap, labels)
        probed += len(probes(case))
        found = minimal_disagreement(oracle, case, profile)
        if found is None:
            continue
        minimal, probe = found
        sig = signature(minimal)
        if sig in groups:
            s, m, p, n = groups[sig]
            groups[sig] = (s, m, p, n + 1)
        else:
            groups[sig] = (seed, minimal, probe, 1)
            print(f"seed {seed}: new disagreement group #{len(groups)}", file=sys.stderr)
    oracle.close()
    elapsed = time.monotonic() - start
    print(
        f"# {profile} vs Cilium {args.against}: {args.cases} cases, {probed} probes, "
        f"{len(groups)} disagreement groups, {elapsed:.1f} s"
    )
    for sig, (seed, minimal, probe, count) in groups.items():
        print(f"---\n# seed {seed}, {count} case(s) with this shape; probe {json.dumps(probe)}")
        print(
            yaml.safe_dump(
                {"policies": minimal["policies"], "pods": minimal["pods"]}, sort_keys=False
            )
        )
        del sig
    return 1 if groups else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
