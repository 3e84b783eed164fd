"""Hostile input (docs/hostile-input.md): each case is ONE clear error, exit 2, under a memory cap.

Every case runs the real CLI in a subprocess limited to `MEMORY_CAP` of address space
(RLIMIT_AS) and `CPU_CAP_S` seconds of CPU (RLIMIT_CPU): a process that crashed (SIGSEGV, the
C YAML composer before), ran out of memory or spun would not exit 2 with the expected message.
The expected messages are written out from the limits' definitions (512 levels, the go-yaml v2
alias ratio, 256 MiB, the apimachinery label rules), not read back from the code.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest
from factories import ANALYZER

ROOT = ANALYZER.parent
MEMORY_CAP = 768 * 1024 * 1024
CPU_CAP_S = 30


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_CAP_S, CPU_CAP_S))


def run_capped(*paths: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "reachability", "list", "--manifests"]
    cmd += [str(p) for p in paths]
    cmd += ["--enforcement", "kube-router"]
    return subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, preexec_fn=_limits, check=False
    )


def assert_refused(path: Path, message: str) -> None:
    proc = run_capped(path)
    assert (proc.returncode, proc.stderr, proc.stdout) == (2, f"error: {path}: {message}\n", "")


POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: default\n"


def billion_laughs() -> str:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def test_deep_flow_nesting_200000(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 200_000 + "]" * 200_000 + "\n")
    # The root mapping is level 1; the 512th `[` (column 3 + 512) opens level 513.
    assert_refused(path, "invalid YAML: nested deeper than 512 levels (line 1, column 515)")


def test_deep_block_nesting(tmp_path: Path) -> None:
    path = tmp_path / "deep-block.yaml"
    path.write_text("".join(" " * i + "-\n" for i in range(2_000)))
    # Line n opens level n; line 513 opens level 513.
    assert_refused(path, "invalid YAML: nested deeper than 512 levels (line 513, column 513)")


def test_deep_json_nesting(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    assert_refused(path, "invalid JSON: nested deeper than 512 levels")


def test_billion_laughs(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs())
    # Counted as expanded: `b` reaches 1237 nodes (1220 aliased); the first *c adds 1111 nodes
    # (d's key and sequence 2 more): 2331 of 2350 = 99.2% > the 99% go-yaml allows below 400,000.
    assert_refused(
        path,
        "invalid YAML: excessive aliasing (2331 of 2350 nodes come from aliases) "
        "(line 4, column 8)",
    )


def test_billion_laughs_in_a_skipped_kind_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "cm.yaml"
    body = "\n".join("  " + line for line in billion_laughs().splitlines())
    path.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata:\n{body}\n")
    # 11 nodes precede `a:` here, so the first *c leaves 2331 of 2360 (98.8%) and the second
    # (column 14 of `  d: &d [*c, *c`) reaches 3442 of 3471 (99.2%).
    assert_refused(
        path,
        "invalid YAML: excessive aliasing (3442 of 3471 nodes come from aliases) "
        "(line 8, column 14)",
    )


def test_one_gigabyte_file_is_refused_from_its_size(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:  # sparse: no gigabyte written to disk
        handle.truncate(1024**3)
    assert_refused(path, "file is 1.0 GiB, over the 256.0 MiB input limit")


def test_binary_junk(tmp_path: Path) -> None:
    path = tmp_path / "junk.yaml"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 64)
    assert_refused(path, "binary data (NUL byte at offset 7), expected YAML or JSON text")


def test_latin1_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes((POD + "  labels: {owner: Ren\xe9}\n").encode("latin-1"))
    offset = len(POD) + len("  labels: {owner: Ren")
    assert_refused(path, f"not UTF-8 text (byte 0xe9 at offset {offset})")


def test_utf16_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "utf16.yaml"
    path.write_bytes(POD.encode("utf-16"))
    assert_refused(path, "not UTF-8 text (UTF-16 byte order mark); convert it to UTF-8")


def test_python_tag_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tag.yaml"
    path.write_text(POD + "spec: !!python/object/apply:os.system [id]\n")
    assert_refused(
        path,
        "invalid YAML: unsupported tag 'tag:yaml.org,2002:python/object/apply:os.system' "
        "(line 6, column 7)",
    )


def test_megabyte_label_value(tmp_path: Path) -> None:
    path = tmp_path / "label.yaml"
    path.write_text(POD + "  labels:\n    app: " + "a" * 1_000_000 + "\n")
    assert_refused(
        path,
        "Pod default/p: metadata.labels.app: value 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'..."
        " (1000000 characters): must be no more than 63 characters",
    )


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            POD + "  labels: {app: yes}\n",
            "Pod default/p: metadata.labels.app: value must be a string, got boolean True "
            "(quote it)",
        ),
        (
            POD + "  labels: {version: 2}\n",
            "Pod default/p: metadata.labels.version: value must be a string, got integer 2 "
            "(quote it)",
        ),
        (
            POD + "  labels: {-app: x}\n",
            "Pod default/p: metadata.labels: key '-app': name part must consist of alphanumeric "
            "characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        ),
        (
            POD + "  labels: {Example.COM/app: x}\n",
            "Pod default/p: metadata.labels: key 'Example.COM/app': prefix part must be a "
            "lowercase RFC 1123 subdomain (lowercase letters, digits, '-' and '.', starting and "
            "ending with a letter or digit)",
        ),
        (
            POD + "  labels: {a/b/c: x}\n",
            "Pod default/p: metadata.labels: key 'a/b/c': a qualified name has at most one '/'",
        ),
        (
            POD + "  labels: {app: 'with space'}\n",
            "Pod default/p: metadata.labels.app: value 'with space': must be empty or consist "
            "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: Web_1}\n",
            "Pod default/Web_1: metadata.name 'Web_1': must be a lowercase RFC 1123 subdomain "
            "(lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)",
        ),
        (
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: team.a}\n",
            "Namespace team.a: metadata.name 'team.a': must be a lowercase RFC 1123 label "
            "(lowercase letters, digits and '-', starting and ending with a letter or digit)",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            f"metadata: {{name: np, namespace: {'n' * 64}}}\nspec: {{}}\n",
            f"NetworkPolicy {'n' * 64}/np: metadata.namespace '{'n' * 64}': must be no more than "
            "63 characters",
        ),
        (
            POD + "spec:\n  serviceAccountName: Admin\n  containers: []\n",
            "Pod default/p: serviceAccountName 'Admin': must be a lowercase RFC 1123 subdomain "
            "(lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np}\n"
            "spec: {podSelector: {matchLabels: {app: true}}}\n",
            "NetworkPolicy default/np: spec.podSelector.matchLabels.app: value must be a string, "
            "got boolean True (quote it)",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np}\n"
            "spec:\n  podSelector: {}\n  ingress:\n  - from:\n    - podSelector:\n"
            f"        matchExpressions: [{{key: app, operator: In, values: [{'v' * 64}]}}]\n",
            "NetworkPolicy default/np: spec.ingress[0].from[0].podSelector.matchExpressions[0]"
            f".values[0] '{'v' * 64}': must be no more than 63 characters",
        ),
        (
            POD + "spec:\n  containers:\n  - name: c\n"
            "    ports: [{name: HTTP-Port, containerPort: 80}]\n",
            "Pod default/p: container 'c': port name 'HTTP-Port': must be lowercase letters, "
            "digits and '-' (not at either end, not doubled), with at least one letter",
        ),
        (
            "apiVersion: v1\nkind: [Pod]\nmetadata: {name: p}\n",
            "kind must be a string, got <list>",
        ),
    ],
    ids=[
        "bool-value",
        "int-value",
        "key-start",
        "key-prefix-case",
        "key-two-slashes",
        "value-space",
        "pod-name",
        "namespace-name",
        "namespace-too-long",
        "service-account",
        "selector-bool-value",
        "selector-long-value",
        "port-name",
        "kind-not-a-string",
    ],
)
def test_names_and_labels_as_the_api_server(tmp_path: Path, doc: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(doc)
    assert_refused(path, message)


def test_a_pipe_is_read_at_most_one_byte_past_the_limit() -> None:
    import io

    from reachability.errors import InputError
    from reachability.reading import read_stream

    stream = io.BytesIO(b"x" * 5000)
    with pytest.raises(InputError) as info:
        read_stream(stream, "<stdin>", limit=2048)
    assert str(info.value) == "<stdin>: input is over the 2.0 KiB input limit"
    assert stream.tell() == 2049
    assert read_stream(io.BytesIO(b"kind: Pod\n"), "<stdin>", limit=10) == b"kind: Pod\n"


def test_utf8_bom_is_dropped_for_yaml_and_json() -> None:
    from reachability.reading import parse_documents

    assert parse_documents(b"\xef\xbb\xbfkind: Pod\n", "f.yaml") == [{"kind": "Pod"}]
    assert parse_documents(b'\xef\xbb\xbf{"kind": "Pod"}', "f.json", as_json=True) == [
        {"kind": "Pod"}
    ]
