"""`python -m reachability ...`: manifests and live clusters. The IaC program runs the same
command line with its stacks as sources: `python -m cnistack connectivity ...`."""

from reachability.cli import main

raise SystemExit(main())
