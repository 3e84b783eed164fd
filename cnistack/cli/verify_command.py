"""`python -m cnistack verify --stack S`: the stack's policies through its real datapath.

ADR-013's verification step ("cilium status" / "cilium connectivity test" on a cluster), done
before merge on this machine: render the stack, start the datapath lab with the stack's enforcer
(scripts/datapath_lab.py: K3s's Flannel + kube-router for the homelab), create a pod for every
workload of the model (CoreDNS included), apply what the program applies, probe every pair with
real TCP and UDP packets on every port the model uses plus one it does not, and compare each
answer with the connectivity analyzer's. Prints a table (model, packets, time to converge) and
exits 1 on any difference, 2 when it cannot run (one line says what is missing).

Needs Linux and root (network namespaces, iptables; CAP_BPF for Cilium) and the toolchain
(scripts/toolchain.sh). See docs/datapath-lab.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from cnistack import datapath_check
from cnistack.stack_documents import stack_documents
from cnistack.stack_files import PROJECT_DIR, committed_stacks, load_stack


def load_lab() -> ModuleType:
    """scripts/datapath_lab.py (a script, like scripts/local_cluster.py, not a package)."""
    name = "datapath_lab"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, PROJECT_DIR / "scripts/datapath_lab.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_verify(stack_name: str, workdir: Path, nodes: int = 2) -> tuple[int, list[str]]:
    """(exit status, output lines). The lab is stopped whatever happens."""
    lab_module = load_lab()
    stack = load_stack(stack_name)
    enforcer = stack.capabilities.policy_enforcer
    documents = stack_documents(stack)
    pod_cidr = stack.pod_cidr or lab_module.CLUSTER_CIDR
    lines: list[str] = []
    started = time.monotonic()
    lab = lab_module.Lab.start(workdir, enforcer, nodes)
    try:
        lab_s = time.monotonic() - started
        outcome = datapath_check.differential(
            lab, documents, enforcer, pod_cidr, lab_module.CONFIRM_TIMEOUT_S
        )
        diffs = outcome.disagreements
        pods = sum(1 for d in documents if d.get("kind") == "Pod")
        lines.append(
            f"# verify {stack_name}: {enforcer} on {nodes} nodes, {pods} pods, "
            f"{len(outcome.probes)} probes (TCP, UDP; SCTP: not in this kernel)"
        )
        lines.append(
            f"# lab started in {lab_s:.1f} s; enforcer converged in {outcome.converge_s:.2f} s; "
            f"probes took {outcome.probe_s:.1f} s; {len(diffs)} difference(s)"
        )
        lines.extend(datapath_check.table(outcome))
        for flow, model, packet in diffs:
            why = ", ".join(datapath_check.deciders(outcome.analyzer, flow)) or "no policy"
            lines.append(
                f"DIFF {flow.src} -> {flow.dst} {flow.protocol}/{flow.port}: model "
                f"{'allowed' if model else 'denied'}, packets {'allowed' if packet else 'denied'}"
                f" (model's deciding policies: {why})"
            )
        return (1 if diffs else 0), lines
    finally:
        lab_module.stop(workdir)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnistack verify", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--stack", required=True, choices=committed_stacks())
    parser.add_argument("--dir", type=Path, help="the lab's directory (default: a temporary one)")
    parser.add_argument("--nodes", type=int, default=2)
    args = parser.parse_args(argv)
    lab_module = load_lab()
    missing = lab_module.missing_prerequisites()
    if missing:
        print(f"verify: cannot run here: needs {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        if args.dir is not None:
            args.dir.mkdir(parents=True, exist_ok=True)
            status, lines = run_verify(args.stack, args.dir, args.nodes)
        else:
            with tempfile.TemporaryDirectory(prefix="cnistack-verify-") as tmp:
                status, lines = run_verify(args.stack, Path(tmp), args.nodes)
    except lab_module.LabError as error:
        print(f"verify: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return status
