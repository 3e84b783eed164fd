"""The `local_cluster` fixture: a real control plane on loopback with kwok-simulated nodes.

scripts/local_cluster.py runs etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (built by scripts/toolchain.sh). No Cilium operator runs here, so
the fixture does the operator's part: it applies Cilium's own CRDs from the Go module
github.com/cilium/cilium@CILIUM_V (`scripts/toolchain.sh --print-cilium-dir`), so that
CiliumNetworkPolicies are validated against the real schema.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NODES = 6  # as in the ADR's production diagram (ADR-013 §"Architecture")
CRD_DIRS = ("pkg/k8s/apis/cilium.io/client/crds/v2", "pkg/k8s/apis/cilium.io/client/crds/v2alpha1")


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "local_cluster", ROOT / "scripts/local_cluster.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("local_cluster", module)
    spec.loader.exec_module(module)
    return module


script = _load_script()


@dataclass(frozen=True)
class LocalCluster:
    kubeconfig: Path
    server: str
    node_names: tuple[str, ...]
    workdir: Path

    def api(self) -> Any:
        """A minimal client (scripts/local_cluster.py Api) with the admin token."""
        return script.Api(self.workdir)


def cilium_dir() -> Path:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts/toolchain.sh"), "--print-cilium-dir"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        pytest.fail(f"no Cilium module: {out.stderr.strip()} (run `make toolchain`)")
    return Path(out.stdout.strip())


def apply_cilium_crds(cluster: LocalCluster) -> list[str]:
    """Server-side apply of every Cilium CRD, then wait until each is Established."""
    api = cluster.api()
    names: list[str] = []
    module = cilium_dir()
    for crd_dir in CRD_DIRS:
        for path in sorted((module / crd_dir).glob("*.yaml")):
            crd = yaml.safe_load(path.read_text())
            name = crd["metadata"]["name"]
            api.request(
                "PATCH",
                f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
                "?fieldManager=cnistack-local-cluster&force=true",
                crd, content_type="application/apply-patch+yaml",
            )  # fmt: skip
            names.append(name)

    def established() -> bool:
        for name in names:
            crd = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conditions = crd.get("status", {}).get("conditions", [])
            if not any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                return False
        return True

    script._wait("Cilium CRDs Established", established, 60.0, cluster.workdir, ("kube-apiserver",))
    return names


def start_cluster(workdir: Path, nodes: int, node_prefix: str = "kwok-node-") -> LocalCluster:
    kubeconfig = script.start(workdir, nodes, node_prefix)
    state = yaml.safe_load(kubeconfig.read_text())
    return LocalCluster(
        kubeconfig=kubeconfig,
        server=state["clusters"][0]["cluster"]["server"],
        node_names=tuple(f"{node_prefix}{i}" for i in range(nodes)),
        workdir=workdir.resolve(),
    )


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    with tempfile.TemporaryDirectory(prefix="cnistack-cluster-") as tmp:
        workdir = Path(tmp)
        try:
            cluster = start_cluster(workdir, NODES)
            apply_cilium_crds(cluster)
            yield cluster
        finally:
            script.stop(workdir)
