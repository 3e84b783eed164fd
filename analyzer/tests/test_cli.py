"""`python -m reachability` end to end: formats, exit codes, probes, diff, bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from factories import CASES_DIR

from reachability.cli import main

CASES = CASES_DIR
L7 = str(CASES / "cilium-l7-http-get-path.yaml")
IPBLOCK = str(CASES / "ip-block-with-except.yaml")

LIST_SCHEMA = {
    "type": "object",
    "required": ["enforcement", "rejected", "flows"],
    "additionalProperties": False,
    "properties": {
        "enforcement": {"enum": ["kube-router", "cilium"]},
        "rejected": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["policy", "source", "reason"],
                "properties": {k: {"type": "string"} for k in ("policy", "source", "reason")},
            },
        },
        "flows": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["from", "to", "protocol", "ports", "http"],
                "properties": {
                    "from": {"type": "string", "pattern": r"^(cidr:.+|[^/]+/[^/]+)$"},
                    "to": {"type": "string", "pattern": r"^(cidr:.+|[^/]+/[^/]+)$"},
                    "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
                    "ports": {
                        "type": "array",
                        "items": {
                            "type": "array",
                            "items": {"type": "integer"},
                            "minItems": 2,
                            "maxItems": 2,
                        },
                    },
                    "http": {"type": ["array", "null"]},
                },
            },
        },
    },
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_json_schema_and_l7(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "list", "--manifests", L7, "--enforcement", "cilium", "--format", "json",
        "--per-pod",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    jsonschema.validate(doc, LIST_SCHEMA)
    into_xa = [f for f in doc["flows"] if f["to"] == "x/a"]
    assert into_xa == [
        {"from": "x/b", "to": "x/a", "protocol": "TCP", "ports": [[80, 80]],
         "http": [{"method": "GET", "path": "/public"}]},
    ]  # fmt: skip
    keys = [(f["from"], f["to"], f["protocol"]) for f in doc["flows"]]
    assert keys == sorted(keys)


def test_list_json_external_cidrs(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(
        capsys, "list", "--manifests", IPBLOCK, "--enforcement", "kube-router", "--format", "json",
        "--per-pod",
    )  # fmt: skip
    sources = {f["from"] for f in json.loads(out)["flows"] if f["to"] == "x/a"}
    assert "cidr:192.0.2.16/28" in sources and "cidr:192.0.2.0/28" not in sources
    assert not any(s.startswith("cidr:0.0.0.0") for s in sources)


@pytest.mark.parametrize("fmt", ["txt", "md", "csv", "dot"])
def test_list_formats(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    code, out, _ = run(
        capsys, "list", "--manifests", L7, "--enforcement", "cilium", "--format", fmt
    )
    assert code == 0 and "x/b" in out and "/public" in out


def test_dot_renders_with_graphviz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Graphviz is a prerequisite (README); .ci/run installs it.
    assert shutil.which("dot"), "graphviz `dot` is not on PATH: apt-get install graphviz"
    dot_file = tmp_path / "diff.dot"
    code, _, _ = run(capsys, "diff", f"manifests:{L7}@kube-router", f"manifests:{L7}@cilium",
                     "--format", "dot", "-o", str(dot_file))  # fmt: skip
    assert code == 0
    svg = subprocess.run(
        ["dot", "-Tsvg", str(dot_file)], check=True, capture_output=True, text=True
    )
    assert "<svg" in svg.stdout


def test_query_exit_codes_and_deciders(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["query", "--manifests", L7, "--enforcement", "cilium", "--from", "x/b", "--to", "x/a"]
    code, out, _ = run(capsys, *base, "--port", "80", "--method", "GET", "--path", "/public")
    assert code == 0 and out.startswith("allow") and "CiliumNetworkPolicy x/public-get" in out
    code, out, _ = run(capsys, *base, "--port", "80", "--method", "POST", "--path", "/public")
    assert code == 1 and out.startswith("deny")
    code, out, _ = run(capsys, *base, "--port", "80")
    assert code == 0 and "L4 probe" in out
    code, _, err = run(capsys, *base[:-4], "--from", "x/nope", "--to", "x/a", "--port", "80")
    assert code == 2 and err == "error: query: unknown pod 'x/nope'; nearest: x/a, x/b, x/c\n"


def test_probes_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    probes = tmp_path / "probes.yaml"
    probes.write_text(
        "- {from: x/b, to: x/a, protocol: TCP, port: 80, method: GET, path: /public}\n"
        "- {from: x/c, to: x/a, protocol: TCP, port: 80}\n"
        "- {from: 192.0.2.10, to: y/a, port: 81}\n"
    )
    code, out, _ = run(
        capsys, "query", "--manifests", L7, "--enforcement", "cilium", "--probes", str(probes)
    )
    assert code == 0
    assert [(p["allowed"], p["policies"]) for p in json.loads(out)] == [
        (True, ["x/public-get"]),
        (False, ["x/public-get"]),
        (True, []),
    ]


def test_diff_json_notes_l7(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "diff", f"manifests:{L7}@kube-router", f"manifests:{L7}@cilium",
                       "--format", "json")  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert doc["a"] == "kube-router" and doc["b"] == "cilium" and not doc["added"]
    (changed,) = doc["changed"]
    assert changed["from"] == "x/b" and changed["change"] == "narrowed"
    assert "L7-restricted in cilium, whole-port in kube-router" in changed["note"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("kind: [unclosed", "invalid YAML"),
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            "metadata: {name: p, namespace: x}\n"
            "spec: {podSelector: {}, ingress: [{ports: [{port: 80, protocol: ICMP}]}]}\n",
            "NetworkPolicy x/p: spec.ingress[0].ports[0]: "
            "invalid protocol 'ICMP' (expected TCP, UDP or SCTP)",
        ),
    ],
)
def test_bad_input_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    code, _, err = run(capsys, "list", "--manifests", str(bad), "--enforcement", "kube-router")
    assert code == 2
    assert err.startswith(f"error: {bad}: ") and message in err


def test_unknown_kind_is_noted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "svc.yaml"
    f.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: x}\n")
    code, _, err = run(capsys, "list", "--manifests", str(f), "--enforcement", "kube-router")
    assert code == 0 and f"note: {f}: ignoring Service x/s (kind not analysed)" in err


def test_manifests_need_enforcement(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "list", "--manifests", L7)
    assert code == 2 and "--enforcement" in err


def test_module_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "reachability", "query", "--manifests", L7, "--enforcement",
         "kube-router", "--from", "x/c", "--to", "x/a", "--port", "80"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_http_regex_with_python_future_syntax_leaks_no_warning(tmp_path: Path) -> None:
    # `[[a]` is a valid RE2 character class (Cilium/Envoy) on which Python's `re` raises a
    # FutureWarning ("Possible nested set"): the CLI must print its answer and nothing else.
    manifests = tmp_path / "nested-set.yaml"
    manifests.write_text(Path(L7).read_text().replace("path: /public", "path: /[[a]"))
    proc = subprocess.run(
        [sys.executable, "-m", "reachability", "list", "--manifests", str(manifests),
         "--enforcement", "cilium", "--format", "json"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONWARNINGS": "default"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    http = [flow["http"] for flow in json.loads(proc.stdout)["flows"] if flow["http"]]
    assert http == [[{"method": "GET", "path": "/[[a]"}]]
