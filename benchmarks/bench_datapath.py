"""Benchmark the datapath lab (scripts/datapath_lab.py): lab start to first probe, probes per
second, and a whole `verify` of each committed stack whose enforcer the lab runs.

    .venv-dev/bin/python benchmarks/bench_datapath.py [--enforcer E ...] [--stacks S ...]

Default: both enforcers (kube-router, cilium) and every committed stack.

Needs Linux, root and the toolchain (docs/datapath-lab.md). Goal (issue: "Speed"): a whole
`verify` under 60 s warm on 2 cores. Prints a markdown table and writes
benchmarks/datapath-results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from cnistack.cli.verify_command import load_lab, run_verify  # noqa: E402
from cnistack.stack_files import committed_stacks  # noqa: E402

POD_PAIRS_PORTS = (80, 81, 8080, 9)


def _pods(count: int) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"namespace": "bench", "name": f"p{i}", "labels": {"app": f"a{i % 2}"}},
            "spec": {"containers": [{"name": "main"}]},
        }
        for i in range(count)
    ]


def bench_lab(enforcer: str, pods: int) -> dict[str, float]:
    lab_module = load_lab()
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"namespace": "bench", "name": "a0-from-a1"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "a0"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "a1"}}}],
                         "ports": [{"port": 8080}]}],
        },
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="cnistack-bench-") as tmp:
        started = time.monotonic()
        try:
            lab = lab_module.Lab.start(Path(tmp), enforcer, 2)
            lab_s = time.monotonic() - started
            lab.apply([*_pods(pods), policy], {"TCP": list(POD_PAIRS_PORTS), "UDP": [80]}, ())
            converge_s = lab.wait_converged()
            lab.probe([("bench/p1", "bench/p0", "TCP", 8080)])
            first_probe_s = time.monotonic() - started
            keys = sorted(lab.state.pods)
            flows = [
                (a, b, proto, port)
                for a in keys
                for b in keys
                if a != b
                for proto, port in [*(("TCP", p) for p in POD_PAIRS_PORTS), ("UDP", 80)]
            ]
            probe_start = time.monotonic()
            results = lab.probe(flows)
            probe_s = time.monotonic() - probe_start
        finally:
            lab_module.stop(Path(tmp))
    return {
        "lab_start_s": round(lab_s, 2),
        "start_to_first_probe_s": round(first_probe_s, 2),
        "converge_s": round(converge_s, 3),
        "probes": len(flows),
        "allowed": sum(results),
        "probes_per_s": round(len(flows) / probe_s, 1),
    }


def bench_verify(stack: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cnistack-bench-verify-") as tmp:
        started = time.monotonic()
        status, lines = run_verify(stack, Path(tmp))
        return {"verify_s": round(time.monotonic() - started, 1), "status": status,
                "summary": lines[:2]}  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--enforcer", action="append", choices=("kube-router", "cilium"))
    parser.add_argument("--stacks", nargs="*", default=committed_stacks())
    parser.add_argument("--pods", type=int, default=10)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
        },
        "lab": {},
        "verify": {},
    }
    for enforcer in args.enforcer or ["kube-router", "cilium"]:
        results["lab"][enforcer] = bench_lab(enforcer, args.pods)
    for stack in args.stacks:
        results["verify"][stack] = bench_verify(stack)
    print("| enforcer | lab start | start to first probe | converge | probes/s |")
    print("|---|---|---|---|---|")
    for enforcer, r in results["lab"].items():
        print(f"| {enforcer} | {r['lab_start_s']} s | {r['start_to_first_probe_s']} s | "
              f"{r['converge_s']} s | {r['probes_per_s']} ({r['probes']} probes) |")  # fmt: skip
    for stack, r in results["verify"].items():
        print(f"verify --stack {stack}: {r['verify_s']} s (exit {r['status']})")
    (HERE / "datapath-results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
