"""Command-line entry points of the pure core (`python -m cnistack`): `render`, `connectivity`
and `verify`, no Pulumi engine needed. Each command lives in a module of this package."""

from __future__ import annotations

import sys

from cnistack.cli.connectivity_command import main as connectivity
from cnistack.cli.render_command import main as render
from cnistack.cli.verify_command import main as verify

USAGE = """usage: python -m cnistack {render,connectivity,verify} ...

  render        write the manifests a stack applies (--stack S --out DIR)
  connectivity  who can reach whom: list, diff, query (see --help)
  verify        the stack's policies through its real datapath, with real packets (--stack S;
                Linux and root; docs/datapath-lab.md)
"""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "render":
        return render(rest)
    if command == "connectivity":
        return connectivity(rest)
    if command == "verify":
        return verify(rest)
    print(f"unknown command {command!r}\n{USAGE}", file=sys.stderr)
    return 2
