"""Memory and time of one full search step of the supernet in its three modes.

For one configuration, each mode runs in a fresh subprocess (so peak RSS is its own): cell sharing
(paper Eq. 5), Auto-DeepLab mode (Eq. 6) and cell sharing with per-cell gradient checkpointing. A
search step is what the search loop runs after warm-up: a weight step (forward, backward, SGD) on a
Train-W batch and an architecture step (forward, backward, Adam) on a Train-A batch. Prints JSON:

    {"config": {...}, "sharing": {"peak_rss_mb", "step_s", "params"}, "eq6": {...},
     "sharing_ckpt": {...}, "sharing_cl": {...}, "memory_ratio", "time_ratio",
     "sharing_over_eq6", "ckpt_over_eq6",
     "channels_last_speedup", "theory_ratio", "device"}

`theory_ratio` = Σ_cells(#incoming paths × width) / Σ_cells(width): the cell work of Eq. 6 over
Eq. 5 (`--levels resolution`: resolution levels, where a level's work is also divided by its 4^k
fewer pixels). Example:
python benchmarks/supernet_cost.py --json benchmarks/results/supernet_cost.json;
at the `cpu` preset's search config, before/after channels-last:
python benchmarks/supernet_cost.py --width 4 --batch 4 --patch 32 --modes sharing,sharing_cl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

if not __package__:  # run as a file, `python benchmarks/NAME.py`: the package made importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODES = {"sharing": {"cell_sharing": True, "checkpoint": False},
         "eq6": {"cell_sharing": False, "checkpoint": False},
         "sharing_ckpt": {"cell_sharing": True, "checkpoint": True},
         "sharing_cl": {"cell_sharing": True, "checkpoint": False}}
CHANNELS_LAST = {"sharing_cl"}
"""Modes run in channels-last memory format (what `search.channels_last` does); the others run
contiguous, the layout searches used before, so `sharing` vs `sharing_cl` is the before/after."""


def measure(args: argparse.Namespace, mode: str) -> dict:
    """Run `args.steps` search steps in this process for `mode`; return peak RSS and median time."""
    import torch

    from benchmarks.harness import load_1min
    from hinas.config import TaskConfig, resolve
    from hinas.jobs.search_probes import time_search_steps

    torch.set_num_threads(args.threads)
    task = TaskConfig(name=args.task, sigma=[50.0], scale=args.scale, channels=args.channels)
    cfg = resolve(args.task, space={"nodes": args.nodes, "layers": args.layers,
                                    "width": args.width, "width_factors": args.width_factors,
                                    "levels": args.levels, "start_scale": args.start_scale,
                                    **MODES[mode]})
    cost = time_search_steps(cfg.space, task, cfg.search, args.batch, args.patch, args.steps,
                             args.warmup, channels_last=mode in CHANNELS_LAST)
    return {"peak_rss_mb": round(cost["peak_rss_mb"], 1), "step_s": round(cost["step_s"], 3),
            "load_1min": load_1min(), "params": cost["params"]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", choices=("denoise", "sr"), default="denoise")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--channels", type=int, default=None)
    p.add_argument("--width", type=int, default=10)
    p.add_argument("--width-factors", default="1,2,4")
    p.add_argument("--levels", default="width",
                   help="what the levels differ in (space.levels: width or resolution)")
    p.add_argument("--start-scale", type=int, default=1, help="space.start_scale")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--batch", type=int, default=6)
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--steps", type=int, default=3, help="measured steps (median)")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured first steps")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--json", metavar="PATH", help="also write the JSON here")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.width_factors = [float(v) for v in str(args.width_factors).split(",")]
    if args.channels is None:
        args.channels = 1 if args.task == "denoise" else 3
    return args


def main(argv: list[str] | None = None) -> dict:
    """Measure every mode in its own subprocess and print the JSON summary."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args._child:
        print(json.dumps(measure(args, args._child)))
        return {}
    from benchmarks.harness import child_result, command_line, device, emit
    from hinas.jobs.search_probes import cell_work_ratio

    results = {}
    for mode in args.modes.split(","):
        results[mode] = child_result(__file__, argv, mode)
    widths = [args.width * f for f in args.width_factors]
    config = {k: v for k, v in vars(args).items() if k not in ("json", "_child", "modes")}
    summary = {"config": config, **results}
    if "sharing" in results and "eq6" in results:
        summary["memory_ratio"] = round(results["eq6"]["peak_rss_mb"]
                                        / results["sharing"]["peak_rss_mb"], 3)
        summary["time_ratio"] = round(results["eq6"]["step_s"] / results["sharing"]["step_s"], 3)
        summary["sharing_over_eq6"] = round(1 / summary["memory_ratio"], 3)
        if "sharing_ckpt" in results:
            summary["ckpt_over_eq6"] = round(results["sharing_ckpt"]["peak_rss_mb"]
                                             / results["eq6"]["peak_rss_mb"], 3)
    if "sharing" in results and "sharing_cl" in results:
        summary["channels_last_speedup"] = round(results["sharing"]["step_s"]
                                                 / results["sharing_cl"]["step_s"], 3)
    if "sharing" in results and "sharing_ckpt" in results:
        summary["ckpt_memory_fraction"] = round(results["sharing_ckpt"]["peak_rss_mb"]
                                                / results["sharing"]["peak_rss_mb"], 3)
    summary["theory_ratio"] = round(cell_work_ratio(args.layers, widths, args.levels), 3)
    summary["device"] = device("cpu")
    summary["command"] = command_line(__file__, argv)
    emit(summary, args.json)
    return summary


if __name__ == "__main__":
    main()
