"""Benchmark `connectivity list` end to end, side by side with network-config-analyzer (nca).

    .venv-dev/bin/python benchmarks/bench_connectivity.py            # full run
    .venv-dev/bin/python benchmarks/bench_connectivity.py --sizes 250x500 --peer-sizes 250x500

For every size PODSxPOLICIES: generate a synthetic cluster (benchmarks/generate.py, fixed seed),
written as `kubectl get -o json` Lists (`--input-format json`, default) or multi-document YAML,
run `python -m cnistack connectivity list --manifests DIR --enforcement kube-router --format json
-o FILE` (the grouped listing, the default) in a subprocess and record wall time and peak RSS
(os.wait4 rusage of that child). At the per-pod sizes also time `list --per-pod`. At the peer
sizes also run `nca --connectivity policies.yaml -p pods.yaml -n namespaces.yaml --output_format
txt_no_fw_rules` (installed on demand into benchmarks/.venv-nca from benchmarks/requirements.txt:
it pins PyYAML 6.0.2, the project uses 6.0.3) on the YAML form of the same objects and compare
answers with our per-pod listing: both outputs become, for every ordered pair of distinct pods,
the allowed ports per protocol (TCP/UDP/SCTP, port intervals), and for every pod and external
address range, the same per direction; every pair and every port is compared, not a sample.
Prints a markdown table and writes benchmarks/results.json.
"""

from __future__ import annotations

import argparse
import ipaddress
import itertools
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import generate  # noqa: E402

PEER_VENV = HERE / ".venv-nca"
PEER_BIN = PEER_VENV / "bin" / "nca"
DEFAULT_SIZES = (
    "250x500,500x1000,1000x2000,2500x5000,5000x5000,10000x10000,50000x20000,150000x50000"
)
DEFAULT_PEER_SIZES = "250x500,1000x2000"
DEFAULT_PER_POD_SIZES = "10000x10000"
PROTOS = ("SCTP", "TCP", "UDP")
FULL = ((1, 65535),)

Ports = dict[str, tuple[tuple[int, int], ...]]


# --- running and measuring -------------------------------------------------------------------


def measure(cmd: list[str], log: Path, cwd: Path = ROOT) -> dict[str, Any]:
    """Run `cmd`; wall seconds and peak RSS (MiB) of that child alone (os.wait4)."""
    with log.open("w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=err, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}")
    return {
        "wall_s": round(wall, 3),
        "user_s": round(usage.ru_utime, 3),
        "sys_s": round(usage.ru_stime, 3),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
    }


def measure_repeated(cmd: list[str], log: Path, repeat: int) -> dict[str, Any]:
    """Median wall time of `repeat` runs (all runs listed), largest peak RSS."""
    runs = [measure(cmd, log) for _ in range(max(1, repeat))]
    walls = sorted(r["wall_s"] for r in runs)
    best = min(runs, key=lambda r: abs(r["wall_s"] - walls[len(walls) // 2]))
    return {**best, "peak_rss_mib": max(r["peak_rss_mib"] for r in runs), "runs_wall_s": walls}


def ensure_peer() -> None:
    if PEER_BIN.exists():
        return
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    pip = [str(PEER_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "-r", str(HERE / "requirements.txt")], check=True)


def peer_version() -> str:
    out = subprocess.run([str(PEER_BIN), "--version"], capture_output=True, text=True, check=False)
    return (
        (out.stdout or out.stderr).strip().splitlines()[-1] if (out.stdout or out.stderr) else "?"
    )


def ours_cmd(case: Path, out: Path, per_pod: bool = False) -> list[str]:
    return [
        sys.executable, "-m", "cnistack", "connectivity", "list",
        "--manifests", str(case), "--enforcement", "kube-router",
        "--format", "json", "-o", str(out), *(["--per-pod"] if per_pod else []),
    ]  # fmt: skip


def peer_cmd(case: Path, out: Path) -> list[str]:
    return [
        str(PEER_BIN), "--connectivity", str(case / "policies.yaml"),
        "-p", str(case / "pods.yaml"), "-n", str(case / "namespaces.yaml"),
        "--output_format", "txt_no_fw_rules", "-f", str(out),
    ]  # fmt: skip


def _cpu(measured: dict[str, Any]) -> float:
    return float(measured["user_s"] + measured["sys_s"])


def _times(measured: dict[str, Any]) -> str:
    return f"{_cpu(measured):.2f} / {measured['wall_s']:.2f}"


def grouped_pod_pairs(path: Path) -> int:
    """Allowed ordered pairs of distinct pods in a grouped listing (group sizes multiplied)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    size = {g["name"]: len(g["pods"]) for g in doc["groups"] if "pods" in g}
    pairs = {(f["from"], f["to"]) for f in doc["flows"] if f["from"] in size and f["to"] in size}
    return sum(size[a] * (size[b] - 1 if a == b else size[b]) for a, b in pairs)


# --- normalising both outputs ----------------------------------------------------------------
# Interval helpers of its own, not cnistack's: the checker must not share code with what it checks.


def merge(intervals: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def subtract(
    a: tuple[tuple[int, int], ...], b: tuple[tuple[int, int], ...]
) -> tuple[tuple[int, int], ...]:
    out = []
    for lo, hi in a:
        cur = lo
        for blo, bhi in b:
            if bhi < cur or blo > hi:
                continue
            if blo > cur:
                out.append((cur, blo - 1))
            cur = max(cur, bhi + 1)
        if cur <= hi:
            out.append((cur, hi))
    return tuple(out)


def freeze(ports: dict[str, list[tuple[int, int]]]) -> Ports:
    return {p: merge(iv) for p, iv in sorted(ports.items()) if iv}


def text_ports(ports: Ports) -> str:
    parts = []
    for proto, ivs in sorted(ports.items()):
        rng = ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ivs)
        parts.append(f"{proto}/{'all' if ivs == FULL else rng}")
    return "; ".join(parts) or "(nothing)"


def ip_ranges(text: str) -> list[tuple[int, int]]:
    """`cidr:A.B.C.D/N` (ours) or `A.B.C.D-E.F.G.H[, ...]` / CIDR lists (nca) as int ranges."""
    text = text.removeprefix("cidr:")
    out = []
    for part in re.split(r",\s*", text):
        if "-" in part:
            lo, hi = part.split("-")
            out.append((int(ipaddress.ip_address(lo)), int(ipaddress.ip_address(hi))))
        else:
            net = ipaddress.ip_network(part, strict=False)
            out.append((int(net.network_address), int(net.broadcast_address)))
    return out


class Facts:
    """Pod-to-pod allowed ports, and pod<->external allowed ports per address range."""

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, str], dict[str, list[tuple[int, int]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        # (pod, "egress"|"ingress") -> list of (lo, hi, ports)
        self.external: dict[tuple[str, str], list[tuple[int, int, Ports]]] = defaultdict(list)
        self.unparsed: list[str] = []

    def add(self, src: str, dst: str, ports: dict[str, list[tuple[int, int]]]) -> None:
        src_ip, dst_ip = _is_ip(src), _is_ip(dst)
        if src_ip and dst_ip:
            return
        if not src_ip and not dst_ip:
            if src != dst:
                for proto, ivs in ports.items():
                    self.pairs[(src, dst)][proto].extend(ivs)
            return
        pod, addr, direction = (dst, src, "ingress") if src_ip else (src, dst, "egress")
        frozen = freeze(ports)
        for lo, hi in ip_ranges(addr):
            if hi <= 0xFFFFFFFF:  # IPv4 only (neither tool lists IPv6 here)
                self.external[(pod, direction)].append((lo, hi, frozen))

    def frozen_pairs(self) -> dict[tuple[str, str], Ports]:
        out = {}
        for key, ports in self.pairs.items():
            frozen = freeze(ports)
            if frozen:
                out[key] = frozen
        return out


def _is_ip(name: str) -> bool:
    return name.startswith("cidr:") or bool(re.match(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+", name))


def load_ours(path: Path) -> Facts:
    facts = Facts()
    with path.open(encoding="utf-8") as fh:
        for raw in fh:
            line = raw.strip().rstrip(",")
            if not line.startswith('{"from"'):
                continue
            flow = json.loads(line)
            if flow.get("http") is not None:
                facts.unparsed.append(line)
            facts.add(
                flow["from"], flow["to"], {flow["protocol"]: [tuple(p) for p in flow["ports"]]}
            )
    return facts


_CUBE_KEY = re.compile(
    r"(?:^|,)(protocols|dst_ports|src_ports|methods|paths|hosts|icmp_type|icmp_code):"
)


def parse_nca_conns(text: str) -> dict[str, list[tuple[int, int]]] | None:
    text = text.strip()
    if text == "All connections":
        return {p: list(FULL) for p in PROTOS}
    if text == "No connections":
        return {}
    if text.startswith("All but "):
        minus = parse_nca_conns(text[len("All but ") :])
        if minus is None:
            return None
        return {p: list(subtract(FULL, merge(minus.get(p, [])))) for p in PROTOS}
    out: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for cube in re.findall(r"\{([^{}]*)\}", text):
        fields = _CUBE_KEY.split(cube)
        values = dict(zip(fields[1::2], fields[2::2], strict=True))
        if set(values) - {"protocols", "dst_ports"}:
            return None
        protos = values.get("protocols", "*").strip()
        if protos == "*":
            chosen = list(PROTOS)
        elif protos.startswith("all but "):
            excluded = {p.strip() for p in protos[len("all but ") :].split(",")}
            chosen = [p for p in PROTOS if p not in excluded]
        else:
            chosen = [p.strip() for p in protos.split(",") if p.strip() in PROTOS]
        ports = values.get("dst_ports")
        ivs = list(FULL)
        if ports is not None:
            ivs = []
            for part in ports.split(","):
                lo, _, hi = part.strip().partition("-")
                ivs.append((int(lo), int(hi or lo)))
        for proto in chosen:
            out[proto].extend(ivs)
    return out


def load_peer(path: Path) -> Facts:
    facts = Facts()
    for line in path.read_text(encoding="utf-8").splitlines():
        if " => " not in line:
            continue
        left, _, conns = line.partition(" : ")
        src, _, dst = left.partition(" => ")
        ports = parse_nca_conns(conns)
        if ports is None:
            facts.unparsed.append(line)
            continue
        facts.add(_peer_name(src), _peer_name(dst), ports)
    return facts


def _peer_name(name: str) -> str:
    return re.sub(r"\[[A-Za-z]+\]$", "", name.strip())


def ports_at(entries: list[tuple[int, int, Ports]], lo: int, hi: int) -> Ports:
    acc: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for elo, ehi, ports in entries:
        if elo <= lo and hi <= ehi:
            for proto, ivs in ports.items():
                acc[proto].extend(ivs)
    return freeze(acc)


def compare(ours: Facts, peer: Facts, pods: list[str]) -> dict[str, Any]:
    a, b = ours.frozen_pairs(), peer.frozen_pairs()
    pod_set = set(pods)
    pairs_total = len(pods) * (len(pods) - 1)
    diffs = []
    allowed_facts = 0
    for key in sorted(set(a) | set(b)):
        pa, pb = a.get(key, {}), b.get(key, {})
        if pa != pb:
            diffs.append(
                {"from": key[0], "to": key[1], "ours": text_ports(pa), "peer": text_ports(pb)}
            )
        else:
            allowed_facts += sum(len(ivs) for ivs in pa.values())
    unknown = sorted({n for k in set(a) | set(b) for n in k if n not in pod_set})
    # External: cut each (pod, direction) at every boundary either tool uses, compare each atom.
    ext_atoms = 0
    ext_diffs = []
    for key in sorted(set(ours.external) | set(peer.external)):
        ea, eb = ours.external.get(key, []), peer.external.get(key, [])
        cuts = {0, 1 << 32}
        for lo, hi, _ in ea + eb:
            cuts.update((lo, hi + 1))
        points = sorted(cuts)
        for lo, nxt in itertools.pairwise(points):
            ext_atoms += 1
            pa, pb = ports_at(ea, lo, nxt - 1), ports_at(eb, lo, nxt - 1)
            if pa != pb:
                ext_diffs.append(
                    {
                        "pod": key[0],
                        "direction": key[1],
                        "range": f"{ipaddress.IPv4Address(lo)}-{ipaddress.IPv4Address(nxt - 1)}",
                        "ours": text_ports(pa),
                        "peer": text_ports(pb),
                    }
                )
    return {
        "pod_pairs_compared": pairs_total,
        "pod_pairs_allowed_ours": len(a),
        "pod_pairs_allowed_peer": len(b),
        "pod_pairs_agree": pairs_total - len(diffs),
        "pod_pair_disagreements": len(diffs),
        "allowed_port_intervals_agreeing": allowed_facts,
        "external_atoms_compared": ext_atoms,
        "external_disagreements": len(ext_diffs),
        "unknown_endpoints": unknown[:20],
        "unparsed_ours": ours.unparsed[:5],
        "unparsed_peer": peer.unparsed[:5],
        "examples": diffs[:20],
        "external_examples": ext_diffs[:20],
    }


# --- main ------------------------------------------------------------------------------------


def parse_sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        if item.strip():
            pods, _, policies = item.strip().lower().partition("x")
            out.append((int(pods), int(policies)))
    return out


def slope(xs: list[float], ys: list[float]) -> float:
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    den = sum((x - mx) ** 2 for x in lx)
    return (
        sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True)) / den if den else float("nan")
    )


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default=DEFAULT_SIZES, help="PODSxPOLICIES,... (default: %(default)s)"
    )
    parser.add_argument(
        "--peer-sizes", default=DEFAULT_PEER_SIZES, help="sizes also run with nca ('' = none)"
    )
    parser.add_argument(
        "--per-pod-sizes",
        default=DEFAULT_PER_POD_SIZES,
        help="sizes also timed with --per-pod (peer sizes always are; default: %(default)s)",
    )
    parser.add_argument("--input-format", choices=("json", "yaml"), default="json")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pods-per-ns", type=int, default=50)
    parser.add_argument("--workdir", type=Path, default=HERE / ".work")
    parser.add_argument("--results", type=Path, default=HERE / "results.json")
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours per size (median)")
    parser.add_argument(
        "--once-from",
        type=int,
        default=50_000,
        metavar="PODS",
        help="sizes with at least this many pods run once (CPU is shared; default: %(default)s)",
    )
    parser.add_argument("--keep-output", action="store_true", help="keep the (large) listings")
    parser.add_argument(
        "--reuse-peer",
        action="store_true",
        help="reuse nca output and timing saved in the workdir by an earlier run of the same size",
    )
    args = parser.parse_args(argv)

    sizes = parse_sizes(args.sizes)
    peer_sizes = set(parse_sizes(args.peer_sizes))
    per_pod_sizes = set(parse_sizes(args.per_pod_sizes)) | peer_sizes
    for size in sorted(peer_sizes - set(sizes)):
        sizes.append(size)
    sizes.sort(key=lambda s: s[0] * s[1])
    if peer_sizes:
        ensure_peer()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for pods, policies in sizes:
        case = args.workdir / f"c{pods}x{policies}"
        docs = generate.generate(pods, policies, args.seed, args.pods_per_ns)
        pod_names = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in docs["pods"]]
        peer = (pods, policies) in peer_sizes
        if args.input_format == "yaml" or peer:
            generate.write(docs, case / "yaml", "yaml")  # nca reads YAML
        if args.input_format == "json":
            generate.write(docs, case / "json", "json")
        ours_in = case / args.input_format
        row: dict[str, Any] = {
            "pods": len(docs["pods"]),
            "policies": len(docs["policies"]),
            "namespaces": len(docs["namespaces"]),
            "input": args.input_format,
            "input_mib": round(sum(f.stat().st_size for f in ours_in.iterdir()) / 2**20, 1),
        }
        del docs
        out = args.workdir / f"ours-{pods}x{policies}.json"
        log = args.workdir / f"ours-{pods}x{policies}.log"
        print(f"== {pods} pods x {policies} policies: ours ...", file=sys.stderr, flush=True)
        repeat = 1 if pods >= args.once_from else args.repeat
        row["ours"] = measure_repeated(ours_cmd(ours_in, out), log, repeat)
        row["ours"]["output_mib"] = round(out.stat().st_size / 2**20, 1)
        row["pod_pairs_allowed"] = grouped_pod_pairs(out)
        n = row["pods"]
        row["pod_pairs_allowed_pct"] = round(100 * row["pod_pairs_allowed"] / (n * (n - 1)), 2)
        print(f"   ours (grouped): {row['ours']}", file=sys.stderr, flush=True)
        if not args.keep_output:
            out.unlink()
        ours_facts = None
        if (pods, policies) in per_pod_sizes:
            out = args.workdir / f"ours-per-pod-{pods}x{policies}.json"
            row["ours_per_pod"] = measure(ours_cmd(ours_in, out, per_pod=True), log)
            row["ours_per_pod"]["output_mib"] = round(out.stat().st_size / 2**20, 1)
            print(f"   ours (per pod): {row['ours_per_pod']}", file=sys.stderr, flush=True)
            if peer:
                ours_facts = load_ours(out)
                # The grouped listing says the same as the per-pod one: same allowed pod pairs.
                row["per_pod_pairs_match_grouped"] = (
                    len(ours_facts.frozen_pairs()) == row["pod_pairs_allowed"]
                )
            if not args.keep_output:
                out.unlink()
        if peer:
            peer_out = args.workdir / f"peer-{pods}x{policies}.txt"
            print("   peer (nca) ...", file=sys.stderr, flush=True)
            saved = args.workdir / f"peer-{pods}x{policies}.measure.json"
            if args.reuse_peer and saved.exists() and peer_out.exists():
                # nca is slow: reuse an earlier measurement of the same input (same seed and size).
                row["peer"] = json.loads(saved.read_text(encoding="utf-8"))
                row["peer"]["reused"] = True
            else:
                row["peer"] = measure(
                    peer_cmd(case / "yaml", peer_out), args.workdir / f"peer-{pods}x{policies}.log"
                )
                saved.write_text(json.dumps(row["peer"]) + "\n", encoding="utf-8")
            row["ratio"] = round(row["peer"]["wall_s"] / row["ours_per_pod"]["wall_s"], 1)
            row["ratio_grouped"] = round(row["peer"]["wall_s"] / row["ours"]["wall_s"], 1)
            # CPU seconds (user + sys): a fair ratio when other jobs share the cores.
            row["ratio_cpu"] = round(_cpu(row["peer"]) / _cpu(row["ours_per_pod"]), 1)
            assert ours_facts is not None
            row["agreement"] = compare(ours_facts, load_peer(peer_out), pod_names)
            print(f"   peer: {row['peer']} ratio {row['ratio']}", file=sys.stderr, flush=True)
            agree = {k: v for k, v in row["agreement"].items() if not k.endswith("examples")}
            print(f"   agreement: {agree}", file=sys.stderr, flush=True)
        rows.append(row)

    xs = [r["pods"] * r["policies"] for r in rows]
    ys = [r["ours"]["wall_s"] for r in rows]
    big = [(x, y) for x, y in zip(xs, ys, strict=True) if x >= 1_000_000]
    scaling = {
        "slope_time_vs_pods_x_policies": round(slope(xs, ys), 2) if len(rows) > 1 else None,
        "slope_time_vs_pods_x_policies_from_1M": round(slope(*map(list, zip(*big, strict=True))), 2)
        if len(big) > 1
        else None,
        "slope_time_vs_pod_pairs_x_policies": round(
            slope([r["pods"] ** 2 * r["policies"] for r in rows], ys), 2
        )
        if len(rows) > 1
        else None,
    }
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        },
        "peer": {"package": "network-config-analyzer", "version": peer_version()}
        if peer_sizes
        else None,
        "seed": args.seed,
        "command": "python benchmarks/bench_connectivity.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "rows": rows,
        "scaling": scaling,
    }
    if args.results.exists():
        # profile_connectivity.py's phases live in the same file.
        previous = json.loads(args.results.read_text(encoding="utf-8"))
        if "phases" in previous:
            results["phases"] = previous["phases"]
    args.results.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(markdown(results))
    return 0


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| pods | policies | ns | input (MiB) | ours, grouped: CPU / wall (s) | peak RSS (MiB) "
        "| output (MiB) | ours, per pod: CPU / wall (s) | output (MiB) | allowed pod pairs "
        "| nca: CPU / wall (s) | nca peak RSS (MiB) | nca / ours per pod | answers |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results["rows"]:
        peer = r.get("peer")
        agr = r.get("agreement")
        per_pod = r.get("ours_per_pod")
        answers = ""
        if agr:
            answers = (
                f"{agr['pod_pairs_agree']:,}/{agr['pod_pairs_compared']:,} pod pairs identical"
                f", {agr['external_atoms_compared'] - agr['external_disagreements']:,}/"
                f"{agr['external_atoms_compared']:,} pod-external ranges identical"
            )
        cells = [
            f"{r['pods']:,}", f"{r['policies']:,}", str(r["namespaces"]),
            f"{r['input_mib']:,.1f} {r['input']}", _times(r["ours"]),
            f"{r['ours']['peak_rss_mib']:,.0f}", f"{r['ours']['output_mib']:,.1f}",
            _times(per_pod) if per_pod else "", f"{per_pod['output_mib']:,.1f}"
            if per_pod else "",
            f"{r['pod_pairs_allowed']:,} ({r['pod_pairs_allowed_pct']}%)",
            _times(peer) if peer else "", f"{peer['peak_rss_mib']:,.0f}" if peer else "",
            f"{r['ratio']}x (CPU {r.get('ratio_cpu', '?')}x)" if peer else "", answers,
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    s = results["scaling"]
    lines.append("")
    lines.append(
        f"Log-log slope of our time vs pods x policies: {s['slope_time_vs_pods_x_policies']} "
        f"(from 1M up: {s['slope_time_vs_pods_x_policies_from_1M']}); "
        f"vs pod pairs x policies: {s['slope_time_vs_pod_pairs_x_policies']}."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
