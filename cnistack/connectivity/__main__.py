"""`python -m cnistack.connectivity ...` (same as `python -m cnistack connectivity ...`)."""

from cnistack.connectivity.cli import main

raise SystemExit(main())
