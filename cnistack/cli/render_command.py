"""`python -m cnistack render`: write everything a stack applies, for review and GitOps.

The same pure rendering the program applies, without an engine: one file per policy object under
`manifests/` (what `kubectl apply -f`, a GitOps tool or `connectivity --manifests` reads), the
Cilium Helm values (`cilium-values.yaml`, usable with `helm template/install -f`) on a Cilium
stack, and the k3d create command on a k3d stack. Never the kubeconfig: it is a secret of the
stack and stays in Pulumi's state.

The directory is written whole into a temporary sibling and swapped in, so a re-render leaves no
file of a removed flow behind (GitOps would re-apply it) and an interrupted render leaves the
previous one intact.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from cnistack import cilium, k3d, openshift
from cnistack.config import ConfigError, K3dCluster, StackConfig
from cnistack.netpol.renderer import RenderedPolicies, render_policies
from cnistack.stack_files import committed_stacks, load_stack

MARKER = ".cnistack-render"
MANIFESTS = "manifests"
CILIUM_VALUES = "cilium-values.yaml"
K3D_CREATE = "k3d-cluster-create.sh"


class RenderError(ValueError):
    """An output directory `render` refuses to replace."""


def render_stack(stack: str) -> RenderedPolicies:
    config = load_stack(stack)
    return render_policies(config.network_policy, config.capabilities, config.flavour)


def manifest_filename(manifest: dict[str, object]) -> str:
    metadata = manifest["metadata"]
    assert isinstance(metadata, dict)
    kind = str(manifest["kind"]).lower()
    if "namespace" in metadata:
        return f"{metadata['namespace']}--{kind}--{metadata['name']}.yaml"
    return f"{kind}--{metadata['name']}.yaml"


def _helm_command(config: StackConfig) -> str:
    settings = config.cilium_settings
    assert settings is not None
    ref = cilium.chart_ref(settings)
    repo = f" --repo {ref.repository}" if ref.repository else ""
    return (
        f"helm upgrade --install {cilium.RELEASE_NAME} {ref.chart}{repo} --version {ref.version} "
        f"--namespace {cilium.NAMESPACE} -f {CILIUM_VALUES}"
    )


def render_files(stack: str, config: StackConfig, rendered: RenderedPolicies) -> dict[str, str]:
    """File name -> content of everything stack ``stack`` applies."""
    files = {
        f"{MANIFESTS}/{manifest_filename(manifest)}": yaml.safe_dump(manifest, sort_keys=False)
        for manifest in rendered.manifests
    }
    # What the Cni component applies on OpenShift beside the policies: the SCC bindings, and
    # with installMethod olm the CiliumConfig the operator renders the chart from
    # (cnistack/openshift.py).
    cluster_objects = list(openshift.scc_manifests(config))
    settings = config.cilium_settings
    if settings is not None and settings.install_method == "olm":
        cluster_objects.append(openshift.cilium_config(config))
    for manifest in cluster_objects:
        name = f"{MANIFESTS}/{manifest_filename(manifest)}"
        files[name] = yaml.safe_dump(manifest, sort_keys=False)
    if settings is not None and settings.install_method == "helm":
        header = f"# Helm values of Cilium for stack {stack}, as the program installs them:\n"
        files[CILIUM_VALUES] = (
            header
            + f"#   {_helm_command(config)}\n"
            + yaml.safe_dump(cilium.helm_values(config), sort_keys=False)
        )
    if isinstance(config.cluster, K3dCluster):
        create = k3d.create_args(
            config.cluster, cni=config.cni, kube_proxy_replacement=config.replaces_kube_proxy
        )
        files[K3D_CREATE] = (
            "#!/bin/sh\n"
            f"# The k3d cluster of stack {stack}, as `pulumi up` creates it.\n"
            f"exec {k3d.command_line(create)}\n"
        )
    files[MARKER] = f"stack: {stack}\n"
    return files


def write_tree(files: dict[str, str], out: Path) -> None:
    """Replace ``out`` by exactly ``files``: written aside, then swapped in."""
    if out.exists() and not out.is_dir():
        raise RenderError(f"refusing to replace {out}: not a directory")
    if out.exists() and not (out / MARKER).is_file() and any(out.iterdir()):
        raise RenderError(
            f"refusing to replace {out}: not empty and not a previous render (no {MARKER}); "
            "give a new or empty directory"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    previous = staging.with_name(staging.name.replace(".new-", ".old-"))
    try:
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; the render is not
        (staging / MANIFESTS).mkdir()
        (staging / MANIFESTS).chmod(0o777 & ~umask)
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
        if K3D_CREATE in files:
            (staging / K3D_CREATE).chmod(0o777 & ~umask)
        if out.exists():
            os.rename(out, previous)
        os.rename(staging, out)
    except BaseException:
        if previous.exists() and not out.exists():
            os.rename(previous, out)  # the previous render stays in place
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnistack render", description=__doc__)
    parser.add_argument("--stack", required=True, help=f"one of: {', '.join(committed_stacks())}")
    parser.add_argument("--out", required=True, type=Path, help="directory to (re)write")
    args = parser.parse_args(argv)
    try:
        config = load_stack(args.stack)
        rendered = render_policies(config.network_policy, config.capabilities, config.flavour)
        files = render_files(args.stack, config, rendered)
        write_tree(files, args.out)
    except (ConfigError, FileNotFoundError, RenderError) as err:
        print(f"render: {err}", file=sys.stderr)
        return 2
    manifests = sum(name.startswith(f"{MANIFESTS}/") for name in files)
    extras = [name for name in (CILIUM_VALUES, K3D_CREATE) if name in files]
    also = f" (+ {', '.join(extras)})" if extras else ""
    print(f"{manifests} manifests for stack {args.stack} in {args.out / MANIFESTS}{also}")
    for gap in rendered.fidelity:
        print(f"warning: {gap.message}", file=sys.stderr)
    return 0
