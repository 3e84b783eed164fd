"""`cilium-values.yaml` from `render`, given to the real Helm and the real Cilium 1.15.0 chart.

Needs `helm` on PATH and the chart of the Go module github.com/cilium/cilium@v1.15.0
(`CNISTACK_CILIUM_DIR`, or the module in `go env GOMODCACHE`); skipped, with the reason, where
either is missing. The expectations are the chart's own names for the ADR's flags.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cnistack.cli import main
from cnistack.cli.render_command import render_files
from cnistack.config import parse_stack_config
from cnistack.netpol.renderer import render_policies

pytestmark = pytest.mark.slow


def _cilium_chart() -> Path | None:
    module = os.environ.get("CNISTACK_CILIUM_DIR")
    if module is None and shutil.which("go"):
        cache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True,
                               check=False).stdout.strip()  # fmt: skip
        module = f"{cache}/github.com/cilium/cilium@v1.15.0"
    chart = Path(module or "/nonexistent") / "install" / "kubernetes" / "cilium"
    return chart if (chart / "Chart.yaml").is_file() else None


def _helm_template(tmp_path: Path, values: Path) -> list[dict[str, Any]]:
    helm, chart = shutil.which("helm"), _cilium_chart()
    if helm is None or chart is None:
        pytest.skip("needs helm on PATH and the cilium@v1.15.0 module (CNISTACK_CILIUM_DIR)")
    done = subprocess.run(
        [helm, "template", "cilium", str(chart), "--namespace", "kube-system", "-f", str(values)],
        capture_output=True, text=True, check=False, env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def test_production_values_render_the_adr_flags_with_the_real_chart(tmp_path: Path) -> None:
    out = tmp_path / "render"
    assert main(["render", "--stack", "production", "--out", str(out)]) == 0
    docs = _helm_template(tmp_path, out / "cilium-values.yaml")
    config = _one(docs, "ConfigMap", "cilium-config")["data"]
    assert config["kube-proxy-replacement"] == "true"
    assert config["enable-wireguard"] == "true"
    assert config["enable-hubble"] == "true"
    assert config["enable-l7-proxy"] == "true"
    _one(docs, "Deployment", "hubble-relay")
    _one(docs, "Deployment", "hubble-ui")
    # cronJob, not helm: certificates come from a CronJob, not from every render.
    _one(docs, "CronJob", "hubble-generate-certs")
    assert [
        d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "hubble-server-certs"
    ] == []
    agent = _one(docs, "DaemonSet", "cilium")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for c in agent["containers"] for e in c.get("env", [])}
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == (
        "api.gtt-prod.internal",
        "6443",
    )
    paths = {v["hostPath"]["path"] for v in agent["volumes"] if "hostPath" in v}
    assert {"/var/lib/cni/bin", "/var/run/multus/cni/net.d"} <= paths


def test_homelab_on_cilium_values_give_k3s_pod_cidr_and_the_k3d_api_server(tmp_path: Path) -> None:
    config = parse_stack_config({"cni": "cilium", "cluster": {"kind": "k3d"}})
    files = render_files(
        "homelab", config, render_policies(config.network_policy, config.capabilities)
    )
    values = tmp_path / "cilium-values.yaml"
    values.write_text(files["cilium-values.yaml"])
    docs = _helm_template(tmp_path, values)
    assert (
        _one(docs, "ConfigMap", "cilium-config")["data"]["cluster-pool-ipv4-cidr"] == "10.42.0.0/16"
    )
    agent = _one(docs, "DaemonSet", "cilium")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for c in agent["containers"] for e in c.get("env", [])}
    assert env["KUBERNETES_SERVICE_HOST"] == "k3d-aisp-homelab-server-0"
