"""`python -m cnistack connectivity {list,query,diff,audit}`: the analyzer's command line
(`reachability.cli`) with the program's own stacks as sources (`--stack NAME`, `stack:NAME`)."""

from __future__ import annotations

from collections.abc import Sequence

from cnistack.stack_documents import load_stack_inputs
from reachability import cli

PROG = "python -m cnistack connectivity"


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(argv, prog=PROG, stack_inputs=load_stack_inputs)
