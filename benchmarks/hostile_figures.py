"""Figures for docs/hostile-input.md: each hostile input, its exit status, time and peak memory.

    .venv/bin/python benchmarks/hostile_figures.py

Writes every case into a temporary directory and runs `connectivity list --manifests FILE` in a
child limited to 768 MiB of address space (RLIMIT_AS) and 30 s of CPU (RLIMIT_CPU), as
analyzer/tests/test_hostile.py does; prints a markdown table (exit, wall, CPU, peak RSS, the
error's first 90 characters). The tests assert the exact messages; this only measures.
"""

from __future__ import annotations

import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEMORY_CAP = 768 * 1024 * 1024
CPU_CAP_S = 30
POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: default\n"


def _bomb(levels: int) -> str:
    names = "abcdefghijklmnopqrstuvwxyz"
    lines = [f"a: &a [{', '.join(['x'] * 10)}]"]
    for prev, cur in itertools.pairwise(names[:levels]):
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def _sparse(size: int) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with path.open("wb") as handle:
            handle.truncate(size)

    return write


CASES: list[tuple[str, str, Callable[[Path], None]]] = [
    ("flow nesting 200,000 deep", "deep.yaml",
     lambda p: p.write_text("a: " + "[" * 200_000 + "]" * 200_000 + "\n")),
    ("block nesting 2,000 deep", "deep-block.yaml",
     lambda p: p.write_text("".join(" " * i + "-\n" for i in range(2_000)))),
    ("JSON nesting 200,000 deep", "deep.json",
     lambda p: p.write_text("[" * 200_000 + "]" * 200_000)),
    ("billion laughs (10^9 nodes)", "bomb.yaml", lambda p: p.write_text(_bomb(9))),
    ("alias bomb 10^25 nodes", "bomb25.yaml", lambda p: p.write_text(_bomb(26))),
    ("1 GiB file (sparse)", "huge.yaml", _sparse(1024**3)),
    ("binary junk (ELF header)", "junk.yaml",
     lambda p: p.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 64)),
    ("Latin-1 text", "latin1.yaml",
     lambda p: p.write_bytes((POD + "  labels: {owner: Ren\xe9}\n").encode("latin-1"))),
    ("UTF-16 text", "utf16.yaml", lambda p: p.write_bytes(POD.encode("utf-16"))),
    ("!!python/object tag", "tag.yaml",
     lambda p: p.write_text(POD + "spec: !!python/object/apply:os.system [id]\n")),
    ("label value of 1,000,000 characters", "label.yaml",
     lambda p: p.write_text(POD + "  labels:\n    app: " + "a" * 1_000_000 + "\n")),
    ("label value of 64 MiB", "label64.yaml",
     lambda p: p.write_text(POD + "  labels:\n    app: " + "a" * (64 * 2**20) + "\n")),
]  # fmt: skip


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_CAP_S, CPU_CAP_S))


def main() -> int:
    print(f"memory cap {MEMORY_CAP // 2**20} MiB (RLIMIT_AS), CPU cap {CPU_CAP_S} s\n")
    print("| input | exit | wall s | CPU s | peak RSS MiB | message |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for title, name, write in CASES:
            path = Path(tmp) / name
            write(path)
            cmd = [sys.executable, "-m", "cnistack", "connectivity", "list", "--manifests",
                   str(path), "--enforcement", "kube-router"]  # fmt: skip
            start = time.perf_counter()
            proc = subprocess.Popen(
                cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                preexec_fn=_limits,  # noqa: PLW1509 (this script runs no threads)
            )  # fmt: skip
            err = proc.stderr.read().decode() if proc.stderr else ""
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            message = err.strip().split("\n")[0].replace(str(path) + ": ", "")[:90]
            print(
                f"| {title} | {os.waitstatus_to_exitcode(status)} | {wall:.2f} | "
                f"{usage.ru_utime + usage.ru_stime:.2f} | {usage.ru_maxrss / 1024:.0f} | "
                f"`{message}` |"
            )
            path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
