"""Shared pieces of the datapath tests: the lab module (scripts/datapath_lab.py), a skip-free
prerequisite check, and the root network namespace's state that a stopped lab must leave as
it found it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cnistack.cli.verify_command import load_lab

lab_module = load_lab()


ENFORCER_BINARIES = {
    "kube-router": ("bin/flanneld", "bin/kube-router", "cni-bin/flannel", "cni-bin/bridge"),
    "cilium": ("bin/cilium-agent", "cni-bin/cilium-cni", "cilium-lib/bpf"),
}


def load_oracle_helpers() -> ModuleType:
    """analyzer/tests/cilium_oracle.py (the random cluster generator), by path: the analyzer's
    tests are their own project, not a package of this one."""
    name = "cilium_oracle"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parent.parent / "analyzer/tests/cilium_oracle.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def require_lab(enforcer: str = "kube-router") -> None:
    """Fail (not skip: `make test` runs these) with what is missing to run the lab here."""
    missing = lab_module.missing_prerequisites(enforcer)
    if missing:
        pytest.fail(f"the datapath lab needs {', '.join(missing)}")
    needed = ("bin/etcd", "bin/kube-apiserver", "bin/kube-controller-manager", "cni-bin/loopback")
    for name in (*needed, *ENFORCER_BINARIES[enforcer]):
        if not (lab_module.toolchain_dir() / name).exists():
            pytest.fail(f"no {name} in the toolchain: run `make toolchain`")


def host_state() -> dict[str, Any]:
    """What the lab must not change in the namespace it runs from: links, addresses, routes,
    iptables rules, ipsets, network namespaces, BPF pins."""

    def out(*argv: str) -> str:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return done.stdout

    def strip_counters(text: str) -> list[str]:
        return [
            line
            for line in text.splitlines()
            if line and not line.startswith("#") and not line.startswith(":")
        ]

    bpf = Path("/sys/fs/bpf")
    # BPF programs are the kernel's, not a namespace's: Cilium's must all go (stop() waits for
    # the kernel to free them).
    cilium_progs = sorted(lab_module.cilium_bpf_programs().values())
    return {
        "links": sorted(
            line.split(":")[1].strip() for line in out("ip", "-o", "link").splitlines()
        ),
        "addresses": out("ip", "-o", "addr"),
        "routes": out("ip", "route", "show", "table", "all"),
        "iptables": strip_counters(out("iptables-save")),
        "ipsets": out("ipset", "list", "-n"),
        # Only the labs' namespaces: other engineers' tests may make their own meanwhile.
        "netns": sorted(n for n in lab_module.netns_names() if n.startswith("dpl")),
        "bpf_pins": sorted(str(p) for p in bpf.rglob("*")) if bpf.is_dir() else [],
        "cilium_bpf_programs": cilium_progs,
        # Machine-wide sysctls cilium-agent would set (scripts/datapath_lab.py GLOBAL_SYSCTLS).
        "global_sysctls": {f: Path(f).read_text() for f in lab_module.GLOBAL_SYSCTLS},
    }
