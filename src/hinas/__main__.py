"""`python -m hinas` (and `torchrun -m hinas`): the `hinas` command line."""

import sys

from hinas.cli import main

sys.exit(main())
