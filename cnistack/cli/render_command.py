"""`python -m cnistack render`: write the manifests a stack would apply, one file per object.

For review and GitOps: the same pure rendering the program applies, without an engine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from cnistack.config import ConfigError
from cnistack.netpol.renderer import RenderedPolicies, render_policies
from cnistack.stack_files import committed_stacks, load_stack


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


def write_manifests(rendered: RenderedPolicies, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for manifest in rendered.manifests:
        path = out / manifest_filename(manifest)
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnistack render", description=__doc__)
    parser.add_argument("--stack", required=True, help=f"one of: {', '.join(committed_stacks())}")
    parser.add_argument("--out", required=True, type=Path, help="directory to (re)write")
    args = parser.parse_args(argv)
    try:
        rendered = render_stack(args.stack)
    except (ConfigError, FileNotFoundError) as err:
        print(f"render: {err}", file=sys.stderr)
        return 2
    written = write_manifests(rendered, args.out)
    print(f"{len(written)} manifests for stack {args.stack} in {args.out}")
    for gap in rendered.fidelity:
        print(f"warning: {gap.message}", file=sys.stderr)
    return 0
