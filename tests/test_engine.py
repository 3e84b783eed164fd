"""Real `pulumi preview`/`up` runs of both stacks, with the CrossGuard pack.

The engine is the `pulumi` CLI built from its Go modules by scripts/toolchain.sh. The
Kubernetes and Command provider plugins cannot be built here (their modules are not
served by the Go module proxy this machine reaches), so these tests install the
toolchain's provider *test doubles* (tools/pulumi-standins) into a throwaway
PULUMI_HOME under the real names and pinned versions. The doubles echo inputs and never
run a command or reach a cluster: what is tested is the engine, the language host, our
program, its config as the engine passes it, and the policy pack as the engine runs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.engine

PROGRAM_FILES = ("Pulumi.yaml", "Pulumi.homelab.yaml", "Pulumi.production.yaml", "__main__.py")
PROGRAM_DIRS = ("cnistack", "components")
LOOPBACK_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: test, user: {token: engine-test}}]
contexts: [{name: test, context: {cluster: test, user: test}}]
current-context: test
"""


def _toolchain(flag: str) -> str:
    return subprocess.run(
        ["bash", str(ROOT / "scripts/toolchain.sh"), flag],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip


def _pin(name: str) -> str:
    match = re.search(rf"^{name}==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert match, f"no {name} pin in requirements.txt"
    return match[1]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)


class Engine:
    """A copy of the project, a file backend and a PULUMI_HOME of its own."""

    def __init__(self, workdir: Path) -> None:
        self.project = workdir / "project"
        self.pack = workdir / "policies"
        self.env = dict(os.environ)
        for line in _toolchain("--print-env").splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            self.env[key] = os.path.expandvars(value.strip('"')).replace(
                "$PATH", os.environ["PATH"]
            )
        (workdir / "state").mkdir()
        self.env.update(
            PULUMI_HOME=str(workdir / "pulumi-home"),
            PULUMI_BACKEND_URL=f"file://{workdir / 'state'}",
            PULUMI_CONFIG_PASSPHRASE="engine-test-only",
            PULUMI_SKIP_UPDATE_CHECK="true",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        )
        self.env.pop("PULUMI_ACCESS_TOKEN", None)
        if shutil.which("pulumi", path=self.env["PATH"]) is None:
            pytest.fail("no pulumi CLI: run `make toolchain` (scripts/toolchain.sh) first")
        self._copy_project()
        doubles = Path(_toolchain("--print-test-doubles").strip())
        for name, pin in (
            ("kubernetes", _pin("pulumi-kubernetes")),
            ("command", _pin("pulumi-command")),
        ):
            binary = doubles / f"pulumi-resource-{name}"
            assert binary.is_file(), f"no provider test double {binary}: run `make toolchain`"
            self.pulumi("plugin", "install", "resource", name, pin, "--file", str(binary),
                        "--non-interactive", check=True)  # fmt: skip

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

    def pulumi(self, *args: str, check: bool = False) -> Result:
        done = subprocess.run(
            ["pulumi", *args], cwd=self.project,
            env=self.env, capture_output=True, text=True, timeout=600, check=False,
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

    def preview(self, stack: str, *extra: str) -> Result:
        return self.pulumi(
            "preview", "-s", stack, "--non-interactive",
            "--policy-pack", str(self.pack),
            "--policy-pack-config", str(self.pack / "config" / f"{stack}.json"),
            *extra,
        )  # fmt: skip


def steps_by_name(preview: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["urn"].rsplit("::", 1)[1]: step for step in preview["steps"]}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield Engine(tmp_path)


@pytest.fixture
def production(engine: Engine, tmp_path: Path) -> Engine:
    """The committed production stack, pointed at a local test chart and a loopback cluster."""
    # A chart of our own standing in for Cilium's (helm.cilium.io is unreachable here). The
    # directory is called cilium because a local chart is named by its path.
    chart = tmp_path / "engine-test-chart-not-cilium" / "cilium"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: cnistack-engine-test-chart\nversion: 1.15.0\n"
        "description: TEST CHART for cnistack's engine tests. It is not Cilium.\n"
    )
    engine.new_stack("production")
    engine.config("production", "kubeconfig", LOOPBACK_KUBECONFIG, secret=True)
    # Safe targeting (cnistack/targeting.py): the stack must declare this kubeconfig's server.
    engine.config("production", "cluster.context", "test", path=True)
    engine.config("production", "cluster.server", "https://127.0.0.1:1", path=True)
    engine.config("production", "cilium.chart.source.path", str(chart), path=True)
    return engine


def test_production_preview_plans_cilium_and_the_l7_policies_with_no_violation(
    production: Engine,
) -> None:
    result = production.preview("production", "--json")
    assert result.returncode == 0, result.output
    steps = steps_by_name(result.json())
    release = steps["cni-cilium"]
    assert release["op"] == "create"
    inputs = release["newState"]["inputs"]
    assert inputs["version"] == "1.15.0"
    assert inputs["chart"].endswith("engine-test-chart-not-cilium/cilium")
    assert inputs["values"]["encryption"] == {"enabled": True, "type": "wireguard"}
    assert inputs["values"]["hubble"]["tls"]["auto"]["method"] == "cronJob"
    cnps = sorted(name for name, step in steps.items() if "CiliumNetworkPolicy" in step["urn"])
    assert cnps == [
        "platform-cnp-ai-apps-frontend-reads-api-ingress",
        # The host-network router (fromEntities host/remote-node), docs/openshift.md.
        "platform-cnp-ai-apps-router-to-frontend-ingress",
        "platform-cnp-ai-inference-router-to-open-webui-ingress",
        "platform-cnp-ai-inference-webui-generates-ingress",
    ]
    assert "mandatory" not in result.output


def test_weakened_production_fails_the_preview_on_the_named_rule(production: Engine) -> None:
    production.config("production", "cilium.encryption", "disabled", path=True)
    result = production.preview("production")
    assert result.returncode != 0
    assert "cilium-wireguard-encryption" in result.output
    assert "mandatory" in result.output


def test_bad_config_fails_the_preview_with_the_key_named(production: Engine) -> None:
    production.config("production", "cni", "calico")
    result = production.preview("production")
    assert result.returncode != 0
    assert "aisp-cni:cni: Input should be 'flannel' or 'cilium' (got 'calico')" in result.output


def test_homelab_preview_plans_the_k3d_commands_without_running_k3d(engine: Engine) -> None:
    engine.new_stack("homelab")
    result = engine.preview("homelab", "--json")
    assert result.returncode == 0, result.output
    steps = steps_by_name(result.json())
    k3d = steps["cluster-k3d"]
    assert k3d["op"] == "create"
    assert k3d["newState"]["inputs"]["create"].startswith(
        "k3d cluster create aisp-homelab --servers 1 --agents 2 "
    )
    assert steps["cluster-kubeconfig"]["op"] == "create"
    assert not any("CiliumNetworkPolicy" in urn for urn in (s["urn"] for s in steps.values()))


def test_switching_the_homelab_cni_replaces_the_cluster(engine: Engine) -> None:
    engine.new_stack("homelab")
    up = engine.pulumi("up", "-s", "homelab", "--yes", "--non-interactive")
    assert up.returncode == 0, up.output
    engine.config("homelab", "cni", "cilium")
    result = engine.preview("homelab", "--json")
    assert result.returncode == 0, result.output
    ops = {step["op"] for step in result.json()["steps"] if step["urn"].endswith("::cluster-k3d")}
    assert "replace" in ops or {"create-replacement", "delete-replaced"} <= ops


def test_a_kubeconfig_set_without_secret_fails_the_preview(production: Engine) -> None:
    production.config("production", "kubeconfig", LOOPBACK_KUBECONFIG)
    result = production.preview("production")
    assert result.returncode != 0
    assert "aisp-cni:kubeconfig: stored in plain text" in result.output
