"""Drive the real `pulumi` CLI over a copy of the project (engine tests only).

Everything the engine runs is real and built by scripts/toolchain.sh: the CLI, the language
host (upstream's where the module proxy serves it, else cnistack's stand-in — see
docs/real-engine.md), the Kubernetes and Command provider plugins (found on PATH, as
ambient plugins) and the Helm library inside the Kubernetes plugin.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.local_cluster import LocalCluster

PROGRAM_FILES = ("Pulumi.yaml", "Pulumi.homelab.yaml", "Pulumi.production.yaml", "__main__.py")
PROGRAM_DIRS = ("cnistack", "components")
PASSPHRASE = "engine-test-only"


def toolchain(flag: str) -> str:
    return subprocess.run(
        ["bash", str(ROOT / "scripts/toolchain.sh"), flag],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)


class Engine:
    """A copy of the project, a file backend and a PULUMI_HOME of its own."""

    def __init__(self, workdir: Path, path_prefix: tuple[Path, ...] = ()) -> None:
        self.workdir = workdir
        self.project = workdir / "project"
        self.pack = workdir / "policies"
        self.env = dict(os.environ)
        for line in toolchain("--print-env").splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            self.env[key] = os.path.expandvars(value.strip('"')).replace(
                "$PATH", os.environ["PATH"]
            )
        (workdir / "state").mkdir(parents=True)
        (workdir / "tmp").mkdir()
        self.env.update(
            PATH=os.pathsep.join([*map(str, path_prefix), self.env["PATH"]]),
            PULUMI_HOME=str(workdir / "pulumi-home"),
            PULUMI_BACKEND_URL=f"file://{workdir / 'state'}",
            PULUMI_CONFIG_PASSPHRASE=PASSPHRASE,
            # Helm (inside the Kubernetes plugin) keeps its caches here, not in ~.
            HELM_CACHE_HOME=str(workdir / "helm/cache"),
            HELM_CONFIG_HOME=str(workdir / "helm/config"),
            HELM_DATA_HOME=str(workdir / "helm/data"),
            # The Kubernetes plugin writes the provider's kubeconfig to a new temporary file at
            # every Configure and never removes it (pulumi-kubernetes provider/pkg/provider:
            # writeKubeconfigToFile, called from Configure for Helm); a killed program leaves its
            # own. Here, not in /tmp: they go with the test's directory.
            TMPDIR=str(workdir / "tmp"),
        )
        self.env.pop("PULUMI_ACCESS_TOKEN", None)
        self.env.pop("KUBECONFIG", None)
        for name in ("pulumi", "pulumi-resource-kubernetes", "pulumi-resource-command"):
            if shutil.which(name, path=self.env["PATH"]) is None:
                pytest.fail(f"no {name} on PATH: run `make toolchain` (scripts/toolchain.sh) first")
        self._copy_project()

    def _copy_project(self) -> None:
        self.project.mkdir(parents=True)
        for name in PROGRAM_FILES:
            shutil.copy(ROOT / name, self.project / name)
        for name in PROGRAM_DIRS:
            shutil.copytree(ROOT / name, self.project / name,
                            ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        (self.project / ".venv").symlink_to(ROOT / ".venv")
        shutil.copytree(ROOT / "policies", self.pack,
                        ignore=shutil.ignore_patterns("venv", "__pycache__"))  # fmt: skip
        (self.pack / "venv").symlink_to(ROOT / "policies/venv")

    def pulumi(self, *args: str, check: bool = False, timeout: int = 900) -> Result:
        done = subprocess.run(
            ["pulumi", *args], cwd=self.project,
            env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        result = Result(done.returncode, done.stdout, done.stderr)
        if check and done.returncode != 0:
            pytest.fail(f"pulumi {' '.join(args)} failed:\n{result.output}")
        return result

    def new_stack(self, stack: str) -> None:
        self.pulumi("stack", "init", stack, check=True)

    def config(
        self, stack: str, key: str, value: str, *, path: bool = False, secret: bool = False
    ) -> None:
        flags = (["--path"] if path else []) + (["--secret"] if secret else [])
        self.pulumi(
            "config", "set", "-s", stack, *flags, f"aisp-cni:{key}", "--", value, check=True
        )

    def _pack_args(self, stack: str, pack_config: str | None = None) -> list[str]:
        return [
            "--policy-pack", str(self.pack),
            "--policy-pack-config", str(self.pack / "config" / f"{pack_config or stack}.json"),
        ]  # fmt: skip

    def preview(self, stack: str, *extra: str, pack_config: str | None = None) -> Result:
        return self.pulumi(
            "preview", "-s", stack, "--non-interactive", *self._pack_args(stack, pack_config),
            *extra,
        )  # fmt: skip

    def up(self, stack: str, *extra: str, pack_config: str | None = None) -> Result:
        return self.pulumi(
            "up", "-s", stack, "--yes", "--non-interactive", "--skip-preview",
            *self._pack_args(stack, pack_config), *extra,
        )  # fmt: skip


def steps_by_name(preview: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Preview steps by resource name (a replacement shows as several steps)."""
    steps: dict[str, list[dict[str, Any]]] = {}
    for step in preview["steps"]:
        steps.setdefault(step["urn"].rsplit("::", 1)[1], []).append(step)
    return steps


def contains(stored: Any, rendered: Any) -> bool:
    """True when every field of `rendered` is in `stored` with the same value.

    The API server adds defaults (protocol: TCP, policyTypes, ...) and would prune any field
    its schema does not know: a rendered field missing from the stored object fails.
    """
    if isinstance(rendered, dict):
        return isinstance(stored, dict) and all(
            k in stored and contains(stored[k], v) for k, v in rendered.items()
        )
    if isinstance(rendered, list):
        return (
            isinstance(stored, list)
            and len(stored) == len(rendered)
            and all(contains(s, r) for s, r in zip(stored, rendered, strict=True))
        )
    return bool(stored == rendered)


# The Cilium release's resource name in the engine's steps (components/cni.py names it).
RELEASE_URN_NAME = "cni-cilium"


def point_production_at(engine: Engine, cluster: LocalCluster, chart: str) -> None:
    host, port = cluster.server.removeprefix("https://").rsplit(":", 1)
    engine.new_stack("production")
    engine.config("production", "kubeconfig", cluster.kubeconfig.read_text(), secret=True)
    # Safe targeting (cnistack/targeting.py): the stack declares the server its context points at.
    engine.config("production", "cluster.context", "local", path=True)
    engine.config("production", "cluster.server", cluster.server, path=True)
    engine.config("production", "cilium.chart.source.path", chart, path=True)
    engine.config("production", "cilium.k8sServiceHost", host, path=True)
    engine.config("production", "cilium.k8sServicePort", port, path=True)
