"""Training speed of the zoo's networks on the CPU: which execution settings make training
iterations cheaper without changing what is learnt.

Networks (`NETS`): the found denoiser (the genotype and build options of the shipped
`denoise-gray-blind`, trained blind, σ 0–55) and the found SR net (those of `sr-x4`), trained
from scratch at `--preset` (the `cpu` recipe by default). Settings (`SETTINGS`), each against
`baseline` (fp32, contiguous memory, eager, 1 thread, batches made in the training process):

- `bf16`: forward passes under bf16 autocast (`train.amp=bf16`, as `--amp bf16`);
- `channels-last`: network and batches in channels-last memory format (`--channels-last`);
- `bf16+channels-last`: both;
- `compile`: `torch.compile` of the network; compilation must end within `--compile-limit`
  seconds, else (or if it fails) the setting is recorded as unavailable;
- `threads-2`: two torch threads instead of one;
- `workers-2`: batches made in two loader worker processes (`data.workers=2`).

Every setting trains in its own Python process (`harness.child_result`), from the same seed, the
same `--iters` iterations of the recipe's schedule and the same batches (they are a pure
function of seed and iteration), through the training job's own pieces
(:func:`hinas.jobs.train.time_training`). It reports training iterations per second over
the iterations after the first `--skip` (allocation, compilation), their ratio to the baseline,
and the validation PSNR at the end (the training job's validation: held-back images, central
crops, fp32), so that "equal quality" reads `|ΔPSNR| ≤ 0.05 dB at equal iterations`
(`EQUAL_DB`). The 1-minute load average before and after every run is recorded: speeds mean
something only on a quiet machine.

Prints (and with `--json` writes) JSON:

    {"benchmark": "training_speed", "config": {...}, "device": str, "command": str,
     "runs": {net: {setting: {"iters_per_s", "ratio", "val_psnr", "delta_psnr_db",
                              "equal_quality", "seconds", "load_1min": [before, after]}
                             | {"unavailable": str, "load_1min": [...]}}}}

Example: python benchmarks/training_speed.py --data-denoise ../shared/data/BSDS500 --data-sr
../shared/data/T91 --iters 200 --json benchmarks/results/training_speed.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if not __package__:  # run as a file, `python benchmarks/NAME.py`: the package made importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NETS = {"found-denoise": "denoise-gray-blind", "found-sr": "sr-x4"}
"""Network name: the shipped model whose genotype, task and build options it trains."""
BASELINE = ["train.amp='off'", "train.channels_last=false", "data.workers=0"]
"""The baseline's execution, whatever the preset's defaults: fp32, contiguous, no workers."""
SETTINGS = {
    "baseline": ([], 1),
    "bf16": (["train.amp=bf16"], 1),
    "channels-last": (["train.channels_last=true"], 1),
    "bf16+channels-last": (["train.amp=bf16", "train.channels_last=true"], 1),
    "compile": ([], 1),
    "threads-2": ([], 2),
    "workers-2": (["data.workers=2"], 1),
}
"""Setting name: (config overrides on `BASELINE`, torch threads); `compile` also compiles the
network."""
EQUAL_DB = 0.05
"""Validation PSNR difference (dB) within which a setting trains to equal quality."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-denoise", nargs="+", required=True, metavar="DIR",
                   help="training images of the denoiser")
    p.add_argument("--data-sr", nargs="+", required=True, metavar="DIR",
                   help="training images of the SR net (HR)")
    p.add_argument("--nets", default=",".join(NETS), help=f"of {', '.join(NETS)}")
    p.add_argument("--settings", default=",".join(SETTINGS),
                   help=f"of {', '.join(SETTINGS)} (baseline always runs)")
    p.add_argument("--preset", default="cpu", help="training recipe")
    p.add_argument("--iters", type=int, default=200, help="training iterations of every run")
    p.add_argument("--skip", type=int, default=5, help="first iterations not timed")
    p.add_argument("--compile-limit", type=float, default=300.0, metavar="S",
                   help="seconds allowed for a run with torch.compile")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also write the JSON here")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.nets, args.settings = args.nets.split(","), args.settings.split(",")
    bad = sorted(set(args.nets) - set(NETS)) + sorted(set(args.settings) - set(SETTINGS))
    if bad:
        p.error(f"unknown net(s) or setting(s) {', '.join(bad)}")
    if not 0 <= args.skip < args.iters:
        p.error("--skip must be at least 0 and below --iters")
    return args


def train_setting(args: argparse.Namespace, net: str, setting: str) -> dict:
    """Train `net` under `setting` for `--iters` iterations in this process; its speed and the
    final validation PSNR."""
    import dataclasses

    import torch

    from hinas.config import resolve
    from hinas.jobs.train import time_training
    from hinas.models.folder import ModelSpec
    from hinas.models.pretrained import pretrained_folder

    overrides, threads = SETTINGS[setting]
    torch.set_num_threads(threads)
    shipped = ModelSpec.load(pretrained_folder(NETS[net]))
    data = args.data_denoise if shipped.task.name == "denoise" else args.data_sr
    cfg = resolve(shipped.task.name, args.preset, None,
                  [*BASELINE, *overrides, f"train.iters={args.iters}"],
                  task=dataclasses.asdict(shipped.task), seed=args.seed)
    return time_training(cfg, data, shipped, args.skip, compile_network=setting == "compile")


def run_child(args: argparse.Namespace, argv: list[str], net: str, setting: str) -> dict:
    """`train_setting` in a fresh process, with the load average around it; a compile run
    that fails or exceeds `--compile-limit` is recorded as unavailable."""
    from benchmarks.harness import child_result, load_1min

    before = load_1min()
    limit = args.compile_limit if setting == "compile" else None
    try:
        result = child_result(__file__, argv, f"{net}:{setting}", timeout=limit)
    except SystemExit as err:
        if setting != "compile":
            raise
        result = {"unavailable": str(err).strip().splitlines()[-1][:300]}
    return {**result, "load_1min": [before, load_1min()]}


def compare(runs: dict[str, dict]) -> dict[str, dict]:
    """Each setting's runs with its speed ratio and PSNR difference to the baseline."""
    base = runs["baseline"]
    for result in runs.values():
        if "iters_per_s" in result:
            delta = result["val_psnr"] - base["val_psnr"]
            result.update(ratio=result["iters_per_s"] / base["iters_per_s"],
                          delta_psnr_db=delta, equal_quality=abs(delta) <= EQUAL_DB)
    return runs


def main(argv: list[str] | None = None) -> dict:
    """Run the baseline and every setting of every network; print the JSON and write it."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args._child:
        print(json.dumps(train_setting(args, *args._child.split(":"))))
        return {}
    from benchmarks.harness import command_line, device, emit

    settings = ["baseline", *(s for s in args.settings if s != "baseline")]
    runs = {net: compare({s: run_child(args, argv, net, s) for s in settings})
            for net in args.nets}
    config = {k: v for k, v in vars(args).items() if k not in ("json", "_child")}
    summary = {"benchmark": "training_speed", "config": config,
               "device": device("cpu"),
               "equal_db": EQUAL_DB, "command": command_line(__file__, argv), "runs": runs}
    emit(summary, args.json)
    return summary


if __name__ == "__main__":
    main()
