"""How well the cost model predicts: a latency (and MACs) table of a space measured part by part,
then the predicted against the measured cost of derived networks (random genotypes of the space,
seeded, plus any `--genotype` files), each built at the table's width multiplier, BatchNorm
folded, timed on one thread at the task's cost size (481×321 for denoising).

    python benchmarks/cost_model.py --preset cpu --networks 12 --json OUT.json \
        [--table src/hinas/cost_tables/NAME.json] [--set space.start_scale=2]

`--table` also writes the latency table (the file `hinas search --max-latency` looks for among the
shipped tables of its machine class); `--with-table FILE` predicts with that table instead of
measuring one (how well a shipped table predicts the networks a search derives, e.g. `--networks
0 --genotype` every searched genotype). Prints (and with `--json` writes) JSON:

    {"benchmark": "cost_model", "config": {...}, "machine", "table_seconds",
     "networks": [{"name", "path", "macs_predicted", "macs_measured", "latency_predicted_ms",
                   "latency_measured_ms", "error"}],
     "latency_error": {"mean_abs", "max_abs", "median"}, "macs_error_max_abs", "load_1min",
     "command"}
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

if not __package__:  # run as a file, `python benchmarks/NAME.py`: the package made importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="cpu")
    p.add_argument("--task", default="denoise")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--multiplier", type=float, help="width multiplier (default: the preset's "
                                                    "train one)")
    p.add_argument("--networks", type=int, default=12, help="random genotypes to check")
    p.add_argument("--genotype", action="append", default=[], help="genotype files to check too")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--table", help="also write the latency table here")
    p.add_argument("--with-table", metavar="FILE",
                   help="predict with this latency table (checked against the space and this "
                        "machine) instead of measuring one")
    p.add_argument("--json")
    args = p.parse_args(argv)

    import dataclasses

    import numpy as np
    import torch

    from benchmarks.harness import command_line, emit
    from hinas.config import resolve
    from hinas.errors import HinasError
    from hinas.jobs.arch import random_genotype
    from hinas.models.cost import model_cost
    from hinas.models.folder import ModelSpec
    from hinas.runtime.cost_table import CostTable, measure_table
    from hinas.runtime.execution import machine_class
    from hinas.space.genotype import Genotype

    torch.set_num_threads(1)
    cfg = resolve(args.task, args.preset, overrides=args.overrides)
    multiplier = args.multiplier or cfg.train.width_multiplier
    size = tuple(cfg.task.cost_size)
    start = time.perf_counter()
    if args.with_table:
        latency = CostTable.load(args.with_table)
        try:
            latency.check(cfg.space, cfg.task, multiplier, machine_class("cpu"), args.with_table)
        except HinasError as err:
            raise SystemExit(f"cost_model: {err}") from None
    else:
        latency = measure_table(cfg.space, cfg.task, multiplier, size, "latency",
                                repeats=args.repeats)
    table_seconds = time.perf_counter() - start
    macs = measure_table(cfg.space, cfg.task, multiplier, size, "macs")
    if args.table:
        latency.save(args.table)
    rng = np.random.default_rng(args.seed)
    genotypes = [(f"random{k}", random_genotype(cfg.space, cfg.task, rng))
                 for k in range(args.networks)]
    for path in args.genotype:
        g = Genotype.load(path)
        genotypes.append((Path(path).stem, dataclasses.replace(g, space=cfg.space)))
    rows = []
    for name, g in genotypes:
        net = ModelSpec("hinas", cfg.task, {"width_multiplier": multiplier}, g).build().eval()
        measured = model_cost(net, cfg.task, size, args.repeats)
        again = model_cost(net, cfg.task, size, args.repeats).latency_s
        predicted = latency.predict(g)
        rows.append({"name": name, "path": g.path,
                     "macs_predicted": round(macs.predict(g), 5),
                     "macs_measured": round(measured.macs / 1e9, 5),
                     "latency_predicted_ms": round(predicted, 2),
                     "latency_measured_ms": round(measured.latency_s * 1e3, 2),
                     "error": round(predicted / (measured.latency_s * 1e3) - 1, 4),
                     "repeat_error": round(again / measured.latency_s - 1, 4)})
    errors = [abs(r["error"]) for r in rows]
    summary = {
        "benchmark": "cost_model",
        "config": {"preset": args.preset, "task": args.task, "overrides": args.overrides,
                   "multiplier": multiplier, "size": list(size), "levels": cfg.space.levels,
                   "start_scale": cfg.space.start_scale, "repeats": args.repeats},
        "machine": latency.machine, "table_seconds": round(table_seconds, 1),
        "table": Path(args.with_table).name if args.with_table else None,
        "networks": rows,
        "latency_error": {"mean_abs": round(statistics.mean(errors), 4),
                          "max_abs": round(max(errors), 4),
                          "median": round(statistics.median(r["error"] for r in rows), 4)},
        # What the measurement itself repeats to: the same network timed twice.
        "repeat_error_mean_abs": round(statistics.mean(abs(r["repeat_error"]) for r in rows), 4),
        "macs_error_max_abs": max(abs(r["macs_predicted"] / r["macs_measured"] - 1)
                                  for r in rows),
        "load_1min": round(os.getloadavg()[0], 2),
        "command": command_line(__file__, argv),
    }
    emit(summary, args.json)
    return summary


if __name__ == "__main__":
    main()
