"""`hinas` with rank 0 held back for a while before it claims its run folder, started by torchrun
from tests/test_distributed.py: the other rank meets the same error first, and rank 0 must
still be the one that reports it."""

import os
import sys
import time

import hinas.runtime.runs as runs
from hinas.cli import main

claim = runs.RunFolder.__init__


def late_on_rank_zero(self, *args, **kwargs):
    if os.environ["RANK"] == "0":
        time.sleep(10)
    claim(self, *args, **kwargs)


runs.RunFolder.__init__ = late_on_rank_zero
sys.exit(main(sys.argv[1:]))
