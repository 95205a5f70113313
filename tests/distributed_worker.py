"""One rank of a distributed tiny search, started by torchrun from tests/test_distributed.py:
`distributed_worker.py OUT DATA DUMP [KEY=VALUE ...]` searches into OUT and writes what this rank
ended with (genotype, raw α and β) to DUMP/rank<R>.json."""

import json
import os
import sys
from pathlib import Path

from hinas.config import resolve
from hinas.jobs.search import SearchRun

out, data, dump, *overrides = sys.argv[1:]
run = SearchRun(resolve("denoise", "tiny", overrides=overrides, seed=5), data, out, quiet=True)
genotype = run.run()
record = {k: v for k, v in genotype.to_dict().items() if k != "meta"}
record.update(raw_alpha=run.net.alpha.detach().tolist(), raw_beta=run.net.beta.detach().tolist())
Path(dump, f"rank{os.environ['RANK']}.json").write_text(json.dumps(record))
