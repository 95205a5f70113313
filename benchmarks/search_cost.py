"""Wall time and peak memory of a whole search with and without cell sharing (paper §3.2, Eq. 5/6).

The same search (`hinas.search`: same preset, seed, data and overrides) runs twice, each in a
fresh subprocess so that peak RSS is its own: `sharing` (paper Eq. 5, the default) and `eq6`
(Auto-DeepLab mode, `space.cell_sharing=false`). Without `--data` it searches on the demo's
training photographs (`hinas.demo.write_demo_data`, shipped with scikit-image). Prints (and with
`--json` writes) JSON:

    {"benchmark": "search_cost", "config": {...}, "device": str,
     "sharing": {"seconds", "peak_rss_mb", "epochs", "best_val_psnr", "path", "params", "macs",
                 "cost_input"}, "eq6": {...}, "time_ratio", "memory_ratio"}

`params` and `macs` are those of the found network as `hinas train` builds it (the preset's
`train.width_multiplier`), at the task's cost size: a 481×321 input for denoising and a 128×128
LR input for SR (as in `quality.py`). With `--out DIR` the run folders (genotype, plots, logs) are
kept in DIR/<mode>.
`--merge EARLIER.json` adds the modes of an earlier run of the same search (same task, data,
preset, overrides and seed), so that the two modes can be measured at different times.

The paper reports 1.0 h vs 3.6 h (denoising) and 3.5 h vs 12.6 h (SR) on a GTX 1080Ti; the
targets are in docs/benchmarks.md.
Example: python benchmarks/search_cost.py --preset cpu --json benchmarks/results/search_cost.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as a file, `python benchmarks/NAME.py`: the package made importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODES = {"sharing": True, "eq6": False}
"""Mode name → `space.cell_sharing`."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", nargs="+", metavar="DIR", help="training folders (default: demo's)")
    p.add_argument("--task", choices=("denoise", "sr"), default="denoise")
    p.add_argument("--sigma", type=float, default=50.0, help="noise level (denoise)")
    p.add_argument("--scale", type=int, choices=(2, 3, 4), default=4, help="SR factor (sr)")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for both searches, e.g. search.epochs=5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--merge", metavar="EARLIER.json",
                   help="add the modes measured by an earlier run of the same search")
    p.add_argument("--out", metavar="DIR", help="keep the run folders here (default: temp)")
    p.add_argument("--json", metavar="PATH", help="also write the JSON here")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    p.add_argument("--_out", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def measure(args: argparse.Namespace, mode: str) -> dict:
    """Run the whole search in this process for `mode`; return its wall time and peak RSS."""
    import torch

    import hinas
    from hinas.config import resolve
    from hinas.models.cost import model_cost
    from hinas.models.folder import ModelSpec
    from hinas.runtime.runs import peak_rss_mb

    torch.set_num_threads(args.threads)
    task = {"sigma": [args.sigma]} if args.task == "denoise" else {"scale": args.scale}
    cfg = resolve(args.task, args.preset, None, args.overrides, task=task, seed=args.seed,
                  space={"cell_sharing": MODES[mode]})
    start = time.perf_counter()
    genotype = hinas.search(cfg, args.data, args._out, quiet=True)
    seconds, peak = round(time.perf_counter() - start, 2), round(peak_rss_mb(), 1)
    net = ModelSpec("hinas", cfg.task, {"width_multiplier": cfg.train.width_multiplier},
                    genotype).build()
    cost = model_cost(net, cfg.task, repeats=0)
    w, h = cost.size
    return {"seconds": seconds, "peak_rss_mb": peak, "epochs": cfg.search.epochs,
            "best_val_psnr": genotype.meta.get("best_val_psnr"), "path": genotype.path,
            "params": cost.params, "macs": cost.macs, "cost_input": [w, h, cfg.task.channels]}


SEARCH_KEYS = ("data", "task", "sigma", "scale", "preset", "overrides", "seed", "threads")
"""Config entries that must agree for two measurements to be of the same search."""


def command(config: dict) -> str:
    """The `hinas search` command line of the sharing mode of a search-cost config."""
    task = (f"--task denoise --sigma {config['sigma']:g}" if config["task"] == "denoise"
            else f"--task sr --scale {config['scale']}")
    sets = "".join(f" --set {o}" for o in config["overrides"])
    return (f"hinas search {task} --preset {config['preset']}{sets} --seed {config['seed']} "
            f"--data {' '.join(config['data'])} --out RUNDIR")


def merge(summary: dict, earlier_path: str) -> dict:
    """`summary` with the modes of the earlier search-cost summary at `earlier_path` added."""
    from benchmarks.harness import joined_commands, load_compatible

    earlier = load_compatible(earlier_path, summary["config"], SEARCH_KEYS, "search_cost")
    modes = {m: earlier[m] for m in MODES if m in earlier and m not in summary}
    config = {**summary["config"],
              "modes": ",".join(m for m in MODES if m in summary or m in modes)}
    return {**summary, "config": config, **modes, "command": joined_commands(earlier, summary)}


def markdown(summary: dict) -> str:
    """A search-cost summary as a markdown table."""
    c = summary["config"]
    lines = [f"Whole search, {c['task']}, preset {c['preset']} "
             f"{' '.join(c['overrides'])}".rstrip() + f", on {summary['device']}; the sharing "
             f"row is `{command(c)}`",
             "",
             "| mode | wall time | peak RSS (MB) | best val PSNR (dB) | width path | params "
             "| MACs (G) at input |",
             "|---|---:|---:|---:|---|---:|---:|"]
    for mode in MODES:
        if mode in summary:
            m = summary[mode]
            psnr = "–" if m["best_val_psnr"] is None else f"{m['best_val_psnr']:.2f}"
            minutes, seconds = divmod(round(m["seconds"]), 60)
            w, h, ch = m["cost_input"]
            lines.append(f"| {mode} | {minutes} min {seconds:02d} s | {m['peak_rss_mb']:.0f} | "
                         f"{psnr} | {m['path']} | {m['params']:,} | "
                         f"{m['macs'] / 1e9:.2f} at {w}×{h}×{ch} |")
    if "time_ratio" in summary:
        lines.append(f"\nEq. 6 / Eq. 5: time ×{summary['time_ratio']}, "
                     f"memory ×{summary['memory_ratio']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    """Run every mode in its own subprocess and print the JSON summary."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args._child:
        print(json.dumps(measure(args, args._child)))
        return {}
    from benchmarks.harness import child_result, command_line, device, emit, portable
    from hinas.demo import write_demo_data

    results = {}
    with tempfile.TemporaryDirectory(prefix="hinas-search-cost-") as tmp:
        runs = Path(args.out) if args.out else Path(tmp)
        if not args.data:
            args.data = [str(write_demo_data(Path(tmp) / "data")[0])]
            argv += ["--data", *args.data]
        for mode in args.modes.split(","):
            results[mode] = child_result(__file__, argv, mode, "--_out", str(runs / mode))
    config = {k: v for k, v in vars(args).items()
              if k not in ("json", "out", "merge", "_child", "_out")}
    config["data"] = [portable(d) for d in config["data"]]
    summary = {"benchmark": "search_cost", "config": config,
               "device": device("cpu"), **results}
    summary["command"] = command_line(__file__, argv)
    if args.merge:
        summary = merge(summary, args.merge)
    if "sharing" in summary and "eq6" in summary:
        sharing, eq6 = summary["sharing"], summary["eq6"]
        summary["time_ratio"] = round(eq6["seconds"] / sharing["seconds"], 3)
        summary["memory_ratio"] = round(eq6["peak_rss_mb"] / sharing["peak_rss_mb"], 3)
    emit(summary, args.json)
    return summary


if __name__ == "__main__":
    main()
