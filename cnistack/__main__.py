"""`python -m cnistack ...`: the command line of the pure core (see cnistack/cli/)."""

import sys

from cnistack.cli import main

sys.exit(main(sys.argv[1:]))
