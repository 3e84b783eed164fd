"""JSON input (`kubectl get -o json`, .json files, standard input) gives the YAML answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from factories import ANALYZER, generator

ROOT = ANALYZER.parent


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same synthetic cluster as YAML streams and as `kind: List` JSON documents."""
    gen = generator()
    docs = gen.generate(150, 300, seed=3, pods_per_ns=30)
    yaml_dir = tmp_path_factory.mktemp("yaml")
    json_dir = tmp_path_factory.mktemp("json")
    gen.write(docs, yaml_dir)
    for stem, items in docs.items():
        # What `kubectl get pods -A -o json` prints: a List whose items carry kind/apiVersion.
        doc = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}}
        (json_dir / f"{stem}.json").write_text(json.dumps({**doc, "items": items}, indent=4))
    return yaml_dir, json_dir


def run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reachability", *argv],
        cwd=ROOT, capture_output=True, text=True, input=stdin, check=False, timeout=120,
    )  # fmt: skip


def flows(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout)["flows"])


@pytest.mark.parametrize("enforcement", ["kube-router", "cilium"])
def test_kubectl_json_lists_equal_yaml(cluster: tuple[Path, Path], enforcement: str) -> None:
    yaml_dir, json_dir = cluster
    common = ("--enforcement", enforcement, "--format", "json")
    from_yaml = flows(run("list", "--manifests", str(yaml_dir), *common))
    from_json = flows(run("list", "--manifests", str(json_dir), *common))
    assert from_json == from_yaml
    assert len(from_yaml) > 100  # a real answer, not two empty lists


def test_json_on_standard_input(cluster: tuple[Path, Path]) -> None:
    yaml_dir, json_dir = cluster
    items: list[Any] = []
    for stem in ("namespaces", "pods", "policies"):
        items.extend(json.loads((json_dir / f"{stem}.json").read_text())["items"])
    stdin = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    common = ("--enforcement", "kube-router", "--format", "json")
    from_stdin = flows(run("list", "--manifests", "-", *common, stdin=stdin))
    assert from_stdin == flows(run("list", "--manifests", str(yaml_dir), *common))


def test_json_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "pods.json"
    path.write_text('{"kind": "List",\n "items": [{"kind": "Pod"} {"kind": "Pod"}]}')
    proc = run("list", "--manifests", str(path), "--enforcement", "cilium")
    assert (proc.returncode, proc.stderr) == (
        2,
        f"error: {path}: invalid JSON: Expecting ',' delimiter (line 2, column 28)\n",
    )


def test_yaml_flow_mapping_is_not_taken_for_json(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text("{apiVersion: v1, kind: Pod, metadata: {name: a, namespace: x}}\n")
    proc = run("query", "--manifests", str(path), "--enforcement", "cilium",
               "--from", "x/a", "--to", "x/a", "--port", "80")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
