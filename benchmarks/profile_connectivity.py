"""Where the time goes: `connectivity list` phase by phase, in one process, at several sizes.

    .venv/bin/python benchmarks/profile_connectivity.py --sizes 10000x10000,50000x20000
    .venv/bin/python benchmarks/profile_connectivity.py --sizes 1000x2000 --cprofile 25

For each size the generated cluster (benchmarks/generate.py, same seed as bench_connectivity.py)
is written once as YAML and as JSON, then timed with time.perf_counter per phase: reading and
parsing the files (YAML with the C loader, JSON with the json module), sorting the objects into
`Inputs` (loader.load_documents), compiling the policies, building the endpoint classes, the label
indexes, attaching policies to classes, evaluating every class pair (`class_flows`), grouping, and
writing the grouped and (optionally) the per-pod JSON listing to /dev/null. Times are CPU
seconds of this process (time.process_time: single-threaded, so wall time on an idle machine,
and not inflated when other jobs share the cores). Peak RSS is the process's. `--cprofile N`
also prints the N most expensive functions (cumulative) of the analysis.
The phases are stored under "phases" in benchmarks/results.json (other keys and the rows of
other sizes are kept).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import resource
import sys
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import generate  # noqa: E402

from reachability.classes import gc_paused, ip_line  # noqa: E402
from reachability.compiler import compile_policies  # noqa: E402
from reachability.engine import Analyzer  # noqa: E402
from reachability.grouped import build_grouping, write_grouped  # noqa: E402
from reachability.loader import load_documents  # noqa: E402
from reachability.output import write_list  # noqa: E402
from reachability.profiles import profile  # noqa: E402

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(case: Path) -> list[tuple[Any, str]]:
    docs = []
    for path in sorted(case.glob("*.yaml")):
        docs.extend((d, str(path)) for d in yaml.load_all(path.read_text("utf-8"), Loader=_LOADER))
    return docs


def _parse_json(case: Path) -> list[tuple[Any, str]]:
    return [(json.loads(p.read_text("utf-8")), str(p)) for p in sorted(case.glob("*.json"))]


def analyse(inputs: Any, laps: dict[str, float], per_pod: bool) -> Analyzer:
    """The Analyzer's constructor, phase by phase (same calls, in the same order)."""

    def lap(name: str, start: float) -> float:
        now = time.process_time()
        laps[name] = round(now - start, 3)
        return now

    t = time.process_time()
    a = Analyzer.__new__(Analyzer)
    a.enforcement = "kube-router"
    a.inputs = inputs
    a.notes = list(inputs.notes)
    a.profile = profile("kube-router")
    a.rejected = []
    a.policies = compile_policies(inputs.policies, a.profile, a.notes, rejected=a.rejected)
    t = lap("compile policies", t)
    a.pods_by_key = {pod.key: pod for pod in inputs.pods}
    a.pods_by_ip = {}
    for pod in inputs.pods:
        if pod.ip is not None:
            a.pods_by_ip[ip_line(pod.ip)] = pod
    a.build_classes()
    t = lap("endpoint classes", t)
    a.build_indexes()
    t = lap("label indexes", t)
    a.attach_policies()
    t = lap("attach policies", t)
    compact = a.class_flows_compact()
    t = lap("class pairs (class_flows_compact)", t)
    a.class_flows_compact = lambda: compact  # type: ignore[method-assign]
    flows = compact[0]
    grouping = build_grouping(a)
    t = lap("grouping", t)
    with open(os.devnull, "w", encoding="utf-8") as out:
        write_grouped(grouping, "json", out)
    t = lap("write grouped JSON", t)
    if per_pod:
        with open(os.devnull, "w", encoding="utf-8") as out:
            write_list(a.flows(), "kube-router", "json", out)
        lap("expand and write per-pod JSON", t)
    laps["classes"] = len(a.classes)
    laps["class pairs listed (compact)"] = sum(len(row) for row in flows.values())
    laps["classes open to/from all outside"] = len(compact[1]) + len(compact[2])
    laps["groups"] = len(grouping.groups)
    laps["group flows"] = len(grouping.flows)
    return a


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000x2000,10000x10000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pods-per-ns", type=int, default=50)
    parser.add_argument("--workdir", type=Path, default=HERE / ".work")
    parser.add_argument("--results", type=Path, default=HERE / "results.json")
    parser.add_argument("--per-pod", action="store_true", help="also time the per-pod listing")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N")
    args = parser.parse_args(argv)
    rows = []
    for item in args.sizes.split(","):
        pods, _, policies = item.strip().partition("x")
        docs = generate.generate(int(pods), int(policies), args.seed, args.pods_per_ns)
        case = args.workdir / f"profile-{pods}x{policies}"
        generate.write(docs, case / "yaml", "yaml")
        generate.write(docs, case / "json", "json")
        del docs
        gc.collect()
        laps: dict[str, float] = {}
        t = time.process_time()
        parsed_yaml = _parse_yaml(case / "yaml")
        laps["parse YAML (C loader)"] = round(time.process_time() - t, 3)
        del parsed_yaml
        gc.collect()
        t = time.process_time()
        parsed = _parse_json(case / "json")
        laps["parse JSON (json module)"] = round(time.process_time() - t, 3)
        t = time.process_time()
        inputs = load_documents(parsed)
        laps["sort objects into Inputs"] = round(time.process_time() - t, 3)
        del parsed
        profiler = cProfile.Profile() if args.cprofile else None
        start = time.process_time()
        if profiler:
            profiler.enable()
        with gc_paused():  # as Analyzer() and build_grouping() do
            analyse(inputs, laps, args.per_pod)
        if profiler:
            profiler.disable()
        laps["analysis total"] = round(time.process_time() - start, 3)
        laps["peak RSS (MiB)"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        rows.append({"pods": int(pods), "policies": int(policies), "phases_s": laps})
        print(json.dumps(rows[-1]), flush=True)
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.cprofile)
        del inputs
        gc.collect()
    command = "python benchmarks/profile_connectivity.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    store(args.results, rows, command)
    return 0


def store(path: Path, rows: list[dict[str, Any]], command: str) -> None:
    """Under "phases" in results.json; rows of other sizes (earlier invocations) are kept."""
    results = json.loads(path.read_text("utf-8")) if path.exists() else {}
    measured = {(r["pods"], r["policies"]) for r in rows}
    kept = [
        row
        for row in results.get("phases", {}).get("rows", [])
        if (row["pods"], row["policies"]) not in measured
    ]
    for row in rows:
        row["command"] = command
    results["phases"] = {
        "times": "CPU seconds (time.process_time) of one process",
        "rows": sorted(kept + rows, key=lambda r: (r["pods"], r["policies"])),
    }
    path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
