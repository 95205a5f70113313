"""Search throughput with torch.distributed: N gloo processes × 1 thread against 1 process × N
threads, on the same search (same global batch, so the same steps per epoch).

Each mode runs a short search (`--preset`, `--epochs`, validation only in the last epoch) in fresh
processes: `1xN` as one Python process with N torch threads, `Nx1` under `torchrun
--nproc_per_node=N` with one thread per process. Per mode it reports the seconds per search step
(W-step + A-step of one global batch) over the epochs after warm-up that do not validate, the
wall time of the whole command, and the genotype every rank derived: the ranks of the distributed
run must agree (`ranks_agree`). Prints (and with `--json` writes) JSON:

    {"benchmark": "distributed", "config": {...}, "device": str, "command": str,
     "modes": {"1x2"|"2x1": {"processes", "threads", "seconds_per_step", "samples_per_second",
                             "wall_seconds", "genotypes": [per rank], "ranks_agree"}}}

Example: python benchmarks/distributed_throughput.py --data ../data/BSDS500 --json
benchmarks/results/distributed_throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as a file, `python benchmarks/NAME.py`: the package made importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", nargs="+", required=True, help="training image folder(s)")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--sigma", type=float, default=50.0, help="denoising noise level")
    p.add_argument("--epochs", type=int, default=4, help="search epochs (the first warms up)")
    p.add_argument("--max-images", type=int, default=100, help="training images used")
    p.add_argument("--processes", type=int, default=2, help="N: processes, or threads of one")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also write the JSON here")
    p.add_argument("--_child", metavar="DUMP", help=argparse.SUPPRESS)
    p.add_argument("--_out", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def overrides(args: argparse.Namespace) -> list[str]:
    """Config overrides of the measured search."""
    return [f"search.epochs={args.epochs}", "search.warmup_epochs=1",
            f"search.eval_from_epoch={args.epochs}", f"search.max_images={args.max_images}"]


def config(args: argparse.Namespace):
    """The resolved config of the measured search (the same in every mode and rank)."""
    from hinas.config import resolve

    return resolve("denoise", args.preset, overrides=overrides(args),
                   task={"sigma": [args.sigma]}, seed=args.seed)


def child(args: argparse.Namespace) -> None:
    """One rank (or the single process) of a mode: search, then dump this rank's genotype."""
    import hinas

    genotype = hinas.search(config(args), args.data, args._out, quiet=True)
    rank = os.environ.get("RANK", "0")
    Path(args._child, f"rank{rank}.json").write_text(json.dumps(
        {"path": genotype.path, "cells": genotype.cells, "alpha": genotype.alpha,
         "beta": genotype.beta}))


def measure(args: argparse.Namespace, processes: int, threads: int, folder: Path) -> dict:
    """Run one mode in fresh processes and summarise it."""
    out, dump = folder / f"run{processes}x{threads}", folder / f"dump{processes}x{threads}"
    dump.mkdir()
    forwarded = ["--data", *args.data, "--preset", args.preset, "--sigma", str(args.sigma),
                 "--epochs", str(args.epochs), "--max-images", str(args.max_images),
                 "--seed", str(args.seed)]
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                 f"--nproc_per_node={processes}"] if processes > 1 else [sys.executable])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run([*launcher, __file__, *forwarded, "--_child", str(dump),
                           "--_out", str(out)], env=env, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"mode {processes}x{threads} failed:\n{done.stderr[-3000:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = json.loads((out / "genotype.json").read_text())["meta"]["arch_budget"][
        "steps_per_epoch"]
    timed = [r["seconds"] for r in records if r["phase"] == "search" and "val_psnr" not in r]
    per_step = sum(timed) / (len(timed) * steps)
    genotypes = [json.loads(p.read_text()) for p in sorted(dump.glob("rank*.json"))]
    return {"processes": processes, "threads": threads, "steps_per_epoch": steps,
            "timed_epochs": len(timed), "seconds_per_step": per_step,
            "samples_per_second": config(args).search.batch_size / per_step, "wall_seconds": wall,
            "genotypes": [{"path": g["path"], "cells": g["cells"]} for g in genotypes],
            "ranks_agree": all(g == genotypes[0] for g in genotypes)}


def run(args: argparse.Namespace) -> dict:
    """Measure both modes; return the summary."""
    from benchmarks.harness import device

    n = args.processes
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        modes = {f"1x{n}": measure(args, 1, n, Path(tmp)),
                 f"{n}x1": measure(args, n, 1, Path(tmp))}
    config = {k: v for k, v in vars(args).items() if k != "json" and not k.startswith("_")}
    return {"benchmark": "distributed", "config": config, "overrides": overrides(args),
            "device": device("cpu").split(";")[0] + ")",  # threads: per mode
            "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
            "modes": modes}


def markdown(summary: dict) -> str:
    """The modes of a distributed-throughput summary as a markdown table."""
    c = summary["config"]
    lines = [f"Search steps on {summary['device']}, preset `{c['preset']}`, {c['epochs']} epochs "
             f"(load average {summary['load_average']['before'][0]:.1f} before, "
             f"{summary['load_average']['after'][0]:.1f} after)", "",
             "| mode | processes × threads | s / step | samples / s | wall (s) | ranks agree |",
             "|---|---|---:|---:|---:|---|"]
    for name, m in summary["modes"].items():
        lines.append(f"| {name} | {m['processes']} × {m['threads']} | "
                     f"{m['seconds_per_step']:.3f} | {m['samples_per_second']:.2f} | "
                     f"{m['wall_seconds']:.0f} | {'yes' if m['ranks_agree'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict | None:
    """Run the benchmark (or, with --_child, one of its processes)."""
    args = parse_args(argv)
    if args._child:
        return child(args)
    summary = run(args)
    from benchmarks.harness import command_line, emit

    summary["command"] = command_line(__file__, argv)
    emit(summary, args.json)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
