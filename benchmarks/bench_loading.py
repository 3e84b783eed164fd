"""Where the analyzer's INPUT time goes: reading and parsing files, then building `Inputs`.

    .venv/bin/python benchmarks/bench_loading.py                     # 10000x10000
    .venv/bin/python benchmarks/bench_loading.py --sizes 150000x50000 --repeat 1

For every size PODSxPOLICIES the synthetic cluster of generate.py (fixed seed) is written twice:
as the YAML streams generate.py writes, and as what `kubectl get -o json` prints (one `kind: List`
per file). Each measurement runs in a fresh child process (os.wait4: its own peak RSS and CPU):
- `pyyaml`: PyYAML's `load_all` with the C loader (CSafeLoader), the loader used before;
- `yaml` / `json`: the analyzer's reader (reachability.reading.parse_documents: limits
  included), then load_documents (names/labels validated, pods and policies sorted into Inputs).
Wall times are medians of --repeat runs; on a shared machine compare the CPU seconds too.
Prints a markdown table and writes benchmarks/loading-results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import generate  # noqa: E402

WORK = HERE / ".work"
RESULTS = HERE / "loading-results.json"
STEMS = ("namespaces", "pods", "policies")

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
mode, folder = sys.argv[1], sys.argv[2]
from pathlib import Path
files = sorted(Path(folder).iterdir())
if mode == "pyyaml":
    import yaml
    t1 = time.perf_counter()
    docs = []
    for f in files:
        docs.extend(d for d in yaml.load_all(f.read_text(), Loader=yaml.CSafeLoader) if d)
    t2 = time.perf_counter()
    print(json.dumps({"import_s": t1 - t0, "parse_s": t2 - t1, "build_s": 0.0}))
else:
    from reachability import loader, reading
    t1 = time.perf_counter()
    with loader._no_gc():
        docs = []
        for f in files:
            data = reading.read_bytes(f)
            parsed = reading.parse_documents(data, str(f), as_json=f.suffix == ".json" or None)
            docs.extend((d, str(f)) for d in parsed if d)
        t2 = time.perf_counter()
        inputs = loader.load_documents(docs)
    t3 = time.perf_counter()
    print(json.dumps({"import_s": t1 - t0, "parse_s": t2 - t1, "build_s": t3 - t2,
                      "pods": len(inputs.pods), "policies": len(inputs.policies)}))
"""


def prepare(pods: int, policies: int, seed: int) -> tuple[Path, Path, int, int]:
    base = WORK / f"loading-{pods}x{policies}-s{seed}"
    yaml_dir, json_dir = base / "yaml", base / "json"
    if not (json_dir / "policies.json").exists():
        # In a child: Linux keeps a process's peak RSS across fork+exec, so a parent that held
        # the generated cluster would inflate every measured child's figure.
        cmd = [sys.executable, __file__, "--write", f"{pods}x{policies}", "--seed", str(seed)]
        subprocess.run(cmd, check=True)
    size = lambda d: sum(f.stat().st_size for f in d.iterdir())  # noqa: E731
    return yaml_dir, json_dir, size(yaml_dir), size(json_dir)


def write_inputs(pods: int, policies: int, seed: int) -> None:
    base = WORK / f"loading-{pods}x{policies}-s{seed}"
    yaml_dir, json_dir = base / "yaml", base / "json"
    docs = generate.generate(pods, policies, seed)
    generate.write(docs, yaml_dir)
    json_dir.mkdir(parents=True, exist_ok=True)
    for stem in STEMS:
        doc = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}}
        (json_dir / f"{stem}.json").write_text(json.dumps({**doc, "items": docs[stem]}, indent=4))


def measure(mode: str, folder: Path) -> dict[str, Any]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(folder)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{mode} {folder}: {err[-2000:]}")
    stages = json.loads(out)
    return {
        **{k: round(v, 3) if isinstance(v, float) else v for k, v in stages.items()},
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
    }


def median_run(mode: str, folder: Path, repeat: int) -> dict[str, Any]:
    runs = sorted((measure(mode, folder) for _ in range(max(1, repeat))), key=lambda r: r["wall_s"])
    best = runs[len(runs) // 2]
    return {**best, "runs_wall_s": [r["wall_s"] for r in runs]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000x10000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", default="pyyaml,yaml,json", help="subset of pyyaml,yaml,json")
    parser.add_argument("--write", metavar="SIZE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write:
        write_inputs(*(int(x) for x in args.write.split("x")), args.seed)
        return 0
    rows: list[dict[str, Any]] = []
    for size in args.sizes.split(","):
        pods, policies = (int(x) for x in size.split("x"))
        yaml_dir, json_dir, yaml_bytes, json_bytes = prepare(pods, policies, args.seed)
        for mode, folder, nbytes in (
            ("pyyaml", yaml_dir, yaml_bytes),
            ("yaml", yaml_dir, yaml_bytes),
            ("json", json_dir, json_bytes),
        ):
            if mode not in args.modes.split(","):
                continue
            result = median_run(mode, folder, args.repeat)
            rows.append({"size": size, "mode": mode, "input_mib": round(nbytes / 2**20, 1),
                         **result})  # fmt: skip
            print(f"{size} {mode}: {result}", file=sys.stderr)
    print(
        "| size | input | MiB | parse s | build Inputs s | process wall s | CPU s | peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['size']} | {r['mode']} | {r['input_mib']} | {r['parse_s']} | {r['build_s']} | "
            f"{r['wall_s']} | {r['cpu_s']} | {r['peak_rss_mib']} |"
        )
    machine = f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    RESULTS.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
