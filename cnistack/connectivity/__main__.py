"""`python -m cnistack.connectivity ...` (same as `python -m cnistack connectivity ...`)."""

from cnistack.cli.connectivity_command import main

raise SystemExit(main())
