"""Command-line entry points of the pure core (`python -m cnistack`): `render` and `connectivity`,
no Pulumi engine needed. Each command lives in a module of this package."""

from __future__ import annotations

import sys

from cnistack.cli.connectivity_command import main as connectivity
from cnistack.cli.render_command import main as render

USAGE = """usage: python -m cnistack {render,connectivity} ...

  render        write the manifests a stack applies (--stack S --out DIR)
  connectivity  who can reach whom: list, diff, query (see --help)
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
    print(f"unknown command {command!r}\n{USAGE}", file=sys.stderr)
    return 2
