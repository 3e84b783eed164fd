"""Set-up a newcomer runs: runtime vs test dependencies, `make homelab`'s prerequisite check,
the derive scripts' arguments, and the files Pulumi.yaml names."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "scripts" / "check_homelab_prerequisites.sh"
TEST_ONLY = ("pytest", "kubernetes-validate", "hypothesis", "ruff", "mypy")


def _requirements(path: Path) -> set[str]:
    names = set()
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-r"):
            names.add(re.split(r"[=<>~!\[ ]", line, maxsplit=1)[0].lower())
    return names


def test_runtime_requirements_hold_no_test_package() -> None:
    runtime = _requirements(ROOT / "requirements.txt")
    assert {"pulumi", "pulumi-kubernetes", "pulumi-command", "pydantic", "pyyaml"} <= runtime
    assert runtime.isdisjoint(TEST_ONLY)
    assert {"pytest", "kubernetes-validate"} <= _requirements(ROOT / "requirements-dev.txt")


def test_the_program_runtime_venv_has_no_pytest() -> None:
    # The venv Pulumi runs the program in (Pulumi.yaml), as `make install` builds it.
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    venv = ROOT / project["runtime"]["options"]["virtualenv"]
    python = venv / "bin" / "python"
    assert python.is_file(), f"{venv} missing: run `make install`"
    assert Path(sys.prefix).resolve() != venv.resolve(), "tests must not run in the runtime venv"
    # The analyzer's core is there (cnistack imports reachability.k8s_names), its `live` extra
    # (the Kubernetes client) is not: only the live-cluster source needs it.
    modules = "'pytest', 'kubernetes_validate', 'kubernetes', 'pulumi', 'pulumi_kubernetes', " \
        "'reachability'"  # fmt: skip
    probe = f"import importlib.util as u; print([m for m in ({modules}) if u.find_spec(m)])"
    found = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "['pulumi', 'pulumi_kubernetes', 'reachability']"
    # So a live cluster read from there says what to install, not a traceback.
    live = subprocess.run(
        [python, "-m", "cnistack", "connectivity", "list", "--cluster", "--enforcement", "cilium"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (live.returncode, live.stdout, live.stderr) == (
        2,
        "",
        "error: reading a live cluster needs the Kubernetes client: "
        "pip install -e './analyzer[live]' (make install puts it in .venv-dev)\n",
    )


def _bin_with(tmp_path: Path, tools: dict[str, str]) -> Path:
    """A PATH holding bash plus the given test doubles (Docker and k3d cannot run here)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    bash = shutil.which("bash")
    assert bash is not None
    (bindir / "bash").symlink_to(bash)
    for name, body in tools.items():
        tool = bindir / name
        tool.write_text(f"#!{bash}\n{body}\n")
        tool.chmod(0o755)
    return bindir


def _check(bindir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bindir / "bash"), str(CHECK)], env={"PATH": str(bindir)},
                          capture_output=True, text=True, check=False)  # fmt: skip


DOCKER_UP = "exit 0"
DOCKER_DOWN = 'echo "Cannot connect to the Docker daemon" >&2; exit 1'


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        (
            {},
            "homelab: docker not found: install Docker Engine "
            "(https://docs.docker.com/engine/install/); `make preview` works without it",
        ),
        (
            {"docker": DOCKER_DOWN, "k3d": "exit 0"},
            "homelab: docker is installed but its daemon is not running (or not yours): start "
            "it, e.g. `sudo systemctl start docker`; `make preview` works without it",
        ),
        (
            {"docker": DOCKER_UP},
            "homelab: k3d not found: install it (https://k3d.io, e.g. `curl -s "
            "https://raw.githubusercontent.com/k3d-io/k3d/main/install.sh | bash`); "
            "`make preview` works without it",
        ),
    ],
    ids=["no-docker", "docker-not-running", "no-k3d"],
)
def test_homelab_prerequisite_check_says_in_one_line_what_is_missing(
    tmp_path: Path, tools: dict[str, str], message: str
) -> None:
    done = _check(_bin_with(tmp_path, tools))
    assert done.returncode == 1
    assert done.stderr == message + "\n"


def test_homelab_prerequisite_check_passes_with_docker_running_and_k3d(tmp_path: Path) -> None:
    done = _check(_bin_with(tmp_path, {"docker": DOCKER_UP, "k3d": "exit 0"}))
    assert (done.returncode, done.stderr) == (0, "")


def test_make_homelab_checks_prerequisites_before_building_anything(tmp_path: Path) -> None:
    make = shutil.which("make")
    assert make is not None
    bindir = _bin_with(tmp_path, {})  # no docker, no k3d, no python, no pulumi
    done = subprocess.run(
        [make, "-C", str(ROOT), "homelab", "VENV=" + str(tmp_path / "venv")],
        env={"PATH": str(bindir), "HOME": str(tmp_path)}, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "homelab: docker not found" in done.stderr
    assert "venv" not in done.stdout
    assert not (tmp_path / "venv").exists()


@pytest.mark.parametrize("preview_exit", [0, 1])
def test_make_preview_runs_pulumi_in_a_private_tmpdir_it_removes(
    tmp_path: Path, preview_exit: int
) -> None:
    """The Kubernetes plugin leaves the kubeconfig in a new $TMPDIR file at every run
    (tests/test_engine.py shows it on the real plugin). `make preview` runs a TEST DOUBLE
    `pulumi` here (the real preview needs a cluster) that does the same; the file must go with
    the run's TMPDIR, whether the preview passes or fails."""
    make = shutil.which("make")
    assert make is not None
    seen = tmp_path / "tmpdirs-seen"
    pulumi = (
        f'echo "$TMPDIR" >> {seen}\n'
        'echo "token: secret" > "$TMPDIR/kubeconfig$$"\n'
        f'[ "$1" = preview ] && exit {preview_exit}\nexit 0'
    )
    bindir = _bin_with(tmp_path, {"pulumi": pulumi})
    for venv in ("venv", "policy-venv"):
        (tmp_path / venv).mkdir()
        (tmp_path / venv / ".installed").touch()  # newer than requirements*.txt: not rebuilt
    outer = tmp_path / "tmp"
    outer.mkdir()
    done = subprocess.run(
        [make, "-C", str(ROOT), "preview",
         f"VENV={tmp_path / 'venv'}", f"POLICY_VENV={tmp_path / 'policy-venv'}"],
        env={"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(outer),
             "PULUMI_CONFIG_PASSPHRASE": "not-the-lab-one"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == (0 if preview_exit == 0 else 2), done.stderr
    used = set(seen.read_text().split())
    assert len(used) == 1
    (private,) = used
    assert Path(private).parent == outer
    assert list(outer.iterdir()) == []


@pytest.mark.parametrize(
    "script", ["derive_chart_keys.py", "derive_cnp_schema.py", "derive_conformance.py"]
)
def test_derive_scripts_need_their_input_path(script: str) -> None:
    path = ROOT / "scripts" / script
    assert "/work/" not in path.read_text()
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          cwd=ROOT, check=False)  # fmt: skip
    assert done.returncode == 2
    assert "usage:" in done.stderr


def test_files_named_in_pulumi_yaml_exist() -> None:
    text = (ROOT / "Pulumi.yaml").read_text()
    named = re.findall(r"cnistack/[\w/.-]+\.(?:py|yaml)", text)
    assert "cnistack/netpol/ai-platform.yaml" in named
    assert [n for n in named if not (ROOT / n).is_file()] == []


def test_readme_links_stay_inside_the_repository_and_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)\)", readme)
    local = [t for t in targets if not t.startswith("https://")]
    assert {"docs/connectivity.md", "docs/benchmarks-scale.md", "docs/real-engine.md"} <= set(local)
    assert [t for t in local if t.startswith("..") or not (ROOT / t).exists()] == []
    assert [t for t in targets if t.startswith("https://")] == ["https://k3d.io"]
