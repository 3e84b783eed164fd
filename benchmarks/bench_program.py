"""How long the program takes to evaluate each committed stack under Pulumi mocks.

Target (issue: "The Pulumi program"): under 2 seconds per stack. Each repetition is a
fresh program (new mocks, config from the stack file), as in the tests.

Usage: .venv-dev/bin/python benchmarks/bench_program.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import USER_KUBECONFIG, run_program

# The production stack names a context whose server the program checks (cnistack/targeting.py):
# use the tests' kubeconfig, as the tests do, never the machine's own.
os.environ["KUBECONFIG"] = str(USER_KUBECONFIG)

TARGET_SECONDS = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("| stack | resources | median s | max s | target |")
    print("|---|---|---|---|---|")
    worst = 0.0
    for stack in ("homelab", "production"):
        timings = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            run = run_program(stack)
            timings.append(time.perf_counter() - start)
        worst = max(worst, *timings)
        print(f"| {stack} | {len(run.registrations)} | {statistics.median(timings):.2f} "
              f"| {max(timings):.2f} | < {TARGET_SECONDS:.0f} s |")  # fmt: skip
    return 0 if worst < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
