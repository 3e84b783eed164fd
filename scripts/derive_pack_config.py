"""Write the policy pack's config (policies/config/<stack>.json) from the program's own facts.

The pack is an independent guard and never imports cnistack (docs/policy-pack.md), so what it
must know about a stack's cluster reaches it through its config. Every entry here comes from the
committed stack file and its cluster-flavour profile (cnistack/flavours.py), never typed twice:
- `all.enforcementLevel`: mandatory in production, advisory in the homelab (ADR-013: the lab is
  where one tries things; a violation there warns instead of blocking);
- `production-runs-cilium.environment`: the ADR-013 environment the stack is (the committed
  stacks are named after them);
- `namespace-default-deny.dns`: the flavour's DNS pods (namespace, labels, pod ports);
- `cilium-openshift-settings.openshift.clusterNetwork`: on OpenShift only, the stack's
  clusterNetwork (its own or the flavour's default 10.128.0.0/14, hostPrefix 23).

Usage: python scripts/derive_pack_config.py [--check]
With --check nothing is written; the exit status says whether a committed file has drifted.
tests/test_pack_config.py runs the same derivation and fails on any drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from cnistack.stack_files import committed_stacks, load_stack  # noqa: E402

CONFIG_DIR = REPO / "policies" / "config"
ENFORCEMENT = {"production": "mandatory", "homelab": "advisory"}


def pack_config(stack: str, project_dir: Path = REPO) -> dict[str, Any]:
    """The pack config of committed stack ``stack``."""
    if stack not in ENFORCEMENT:
        raise ValueError(
            f"stack {stack!r} is not an ADR-013 environment ({', '.join(ENFORCEMENT)}): "
            "the pack's production-runs-cilium needs one"
        )
    config = load_stack(stack, project_dir)
    document: dict[str, Any] = {
        "all": {"enforcementLevel": ENFORCEMENT[stack]},
        "production-runs-cilium": {"environment": stack},
        "namespace-default-deny": {"dns": config.flavour.dns.as_pack_config()},
    }
    network = config.cluster_network
    if network is not None:
        document["cilium-openshift-settings"] = {
            "openshift": {
                "clusterNetwork": {"cidr": network.cidr, "hostPrefix": network.host_prefix}
            }
        }
    return document


def pack_config_text(stack: str, project_dir: Path = REPO) -> str:
    return json.dumps(pack_config(stack, project_dir), indent=2) + "\n"


def main(argv: list[str], config_dir: Path = CONFIG_DIR) -> int:
    check = argv == ["--check"]
    if argv and not check:
        print(__doc__, file=sys.stderr)
        return 2
    drifted = []
    for stack in committed_stacks(REPO):
        path = config_dir / f"{stack}.json"
        text = pack_config_text(stack)
        if path.is_file() and path.read_text() == text:
            continue
        drifted.append(path)
        if not check:
            path.write_text(text)
    verb = "differ from the stacks" if check else "written"
    for path in drifted:
        print(f"{path}: {verb}")
    return 1 if check and drifted else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
