"""Train every model of the pretrained zoo with the `paper` recipe on a CUDA GPU, in about eight
minutes in all: never required (the shipped weights were trained on a CPU), it is the way to
retrain them at the paper's recipe when a GPU is at hand.

The zoo (`ZOO`), in training order:

- `denoise-gray-blind`: the shipped gray blind denoiser's genotype, σ uniform in 0–55, BSDS500;
- `denoise-color-blind`: the same genotype on RGB images (its stem and tail take 3 channels),
  σ uniform in 0–55, BSDS500 in colour;
- `sr-x4`: the shipped ×4 genotype, T91 + BSDS500 train;
- `sr-x2`: the shipped ×2 genotype (the ×4 search's cells with a ×2 tail), started from this
  run's `sr-x4` weights (`--init-from`), as the shipped one was.

Each trains through `hinas.jobs.train.train` at the `paper` preset's recipe (SGD lr 0.05,
momentum 0.9, batch 24, 64 px crops, node widths × 2) on `cuda`, with bf16 autocast, channels-last
and 4 loader workers, for `--minutes` / 4 minutes each (the iteration count is set from the
measured throughput, as `hinas train --budget`), into a run folder `OUT/<name>/` (model.json,
model.safetensors, genotype.json, config.yaml, metrics.jsonl, run.log, curves.png). `OUT/plan.json`
records the plan and, as each run ends, its iterations and best validation PSNR.

Without a CUDA device it stops with one line; `--dry-run` prints the plan (anywhere) and trains
nothing. Bringing the weights back into the package: docs/pretrained-models.md.

Example: python benchmarks/gpu_zoo.py --data ../shared/data --out "$OUT"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "src" / "hinas" / "weights"
BLIND = {"sigma": [0.0, 55.0], "sigma_sampling": "uniform"}
ZOO = {
    "denoise-gray-blind": {"task": "denoise", "fields": {**BLIND, "channels": 1},
                           "genotype": SHIPPED / "denoise-gray-blind" / "genotype.json",
                           "data": ["BSDS500"]},
    "denoise-color-blind": {"task": "denoise", "fields": {**BLIND, "channels": 3},
                            "genotype": SHIPPED / "denoise-gray-blind" / "genotype.json",
                            "data": ["BSDS500"]},
    "sr-x4": {"task": "sr", "fields": {"scale": 4, "channels": 3},
              "genotype": SHIPPED / "sr-x4" / "genotype.json", "data": ["T91", "BSDS500/train"]},
    "sr-x2": {"task": "sr", "fields": {"scale": 2, "channels": 3},
              "genotype": SHIPPED / "sr-x2" / "genotype.json", "data": ["T91", "BSDS500/train"],
              "init_from": "sr-x4"},
}
"""Zoo model: task, task fields, genotype file, training folders (under --data), and the run
of this script it starts from (fine-tuning)."""
GPU_SETTINGS = {"train.amp": "bf16", "train.channels_last": "true", "data.workers": "4"}
"""Overrides of the `paper` preset for the GPU (`--amp bf16 --channels-last --workers 4`)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, metavar="DIR", help="folder holding BSDS500 and T91")
    p.add_argument("--out", required=True, metavar="DIR", help="run folders go here ($OUT)")
    p.add_argument("--minutes", type=float, default=8.0, help="training time of the whole zoo")
    p.add_argument("--models", default=",".join(ZOO), help=f"of {', '.join(ZOO)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dry-run", action="store_true", help="print the plan, train nothing")
    args = p.parse_args(argv)
    asked = args.models.split(",")
    args.models = [m for m in ZOO if m in asked]  # the zoo's order: sr-x4 before sr-x2
    unknown = [m for m in asked if m not in ZOO]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(ZOO)}")
    if "sr-x2" in args.models and "sr-x4" not in args.models:
        p.error("sr-x2 starts from this run's sr-x4: train both")
    return args


def plan(args: argparse.Namespace) -> list[dict]:
    """One entry per model to train: name, task, genotype, data folders, budget, run folder and
    the equivalent `hinas train` command (for the colour denoiser, with the gray genotype's task
    set to RGB, which the script does itself)."""
    seconds = args.minutes * 60 / len(args.models)
    entries = []
    for name in args.models:
        z = ZOO[name]
        out = Path(args.out) / name
        data = [str(Path(args.data) / d) for d in z["data"]]
        task = z["fields"]
        levels = (["--sigma", "0:55"] if z["task"] == "denoise"
                  else ["--scale", str(task["scale"])])
        command = ["hinas", "train", "--task", z["task"], *levels, "--channels",
                   str(task["channels"]), "--genotype", str(z["genotype"].relative_to(REPO)),
                   "--preset", "paper", "--device", "cuda", "--budget", f"{seconds:.0f}s",
                   "--amp", "bf16", "--channels-last", "--workers", "4", "--data", *data,
                   "--out", str(out)]
        if "init_from" in z:
            command += ["--init-from", str(Path(args.out) / z["init_from"])]
        entries.append({"name": name, "task": {"name": z["task"], **task},
                        "genotype": str(z["genotype"].relative_to(REPO)), "data": data,
                        "budget_seconds": seconds, "out": str(out), "command": " ".join(command)})
    return entries


def with_channels(genotype, channels: int):
    """`genotype` for images of `channels` channels (the cells and widths are the same; the stem
    and tail take that many channels)."""
    import dataclasses

    return dataclasses.replace(genotype, task=dataclasses.replace(genotype.task,
                                                                  channels=channels))


def train_zoo(args: argparse.Namespace, entries: list[dict]) -> list[dict]:
    """Train every planned model on CUDA; returns the entries with their results."""
    from hinas.config import resolve
    from hinas.jobs.train import train
    from hinas.space.genotype import Genotype

    for entry in entries:
        z = ZOO[entry["name"]]
        fields = {k: v for k, v in entry["task"].items() if k != "name"}
        overrides = [f"{k}={v}" for k, v in GPU_SETTINGS.items()]
        cfg = resolve(z["task"], "paper", None, overrides, task=fields, seed=args.seed,
                      device="cuda")
        genotype = with_channels(Genotype.load(z["genotype"]), fields["channels"])
        init = Path(args.out) / z["init_from"] if "init_from" in z else None
        spec = train(cfg, entry["data"], entry["out"], genotype, quiet=True,
                     budget_seconds=entry["budget_seconds"], init_from=init)
        entry.update(iterations=spec.meta["iterations"],
                     best_val_psnr=spec.meta["best_val_psnr"],
                     train_seconds=spec.meta["train_seconds"])
        write_plan(args, entries)
        print(f"{entry['name']}: {entry['iterations']} iterations, best validation PSNR "
              f"{entry['best_val_psnr']:.2f} dB -> {entry['out']}")
    return entries


def write_plan(args: argparse.Namespace, entries: list[dict]) -> None:
    """Write OUT/plan.json: the plan and the results so far."""
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "plan.json").write_text(json.dumps(
        {"minutes": args.minutes, "preset": "paper", "settings": GPU_SETTINGS,
         "models": entries}, indent=1) + "\n")


def main(argv: list[str] | None = None) -> list[dict]:
    """Print the plan (`--dry-run`) or train the zoo; one line and exit status 1 without CUDA."""
    args = parse_args(argv)
    entries = plan(args)
    if args.dry_run:
        for entry in entries:
            print(f"{entry['name']}: {entry['budget_seconds']:.0f} s: {entry['command']}")
        return entries
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("gpu_zoo: no CUDA device here; this script trains the zoo on a GPU "
                         "only (--dry-run prints the plan)")
    from hinas.errors import HinasError

    write_plan(args, entries)
    try:
        return train_zoo(args, entries)
    except HinasError as err:
        raise SystemExit(f"gpu_zoo: error: {err}") from None


if __name__ == "__main__":
    main(sys.argv[1:])
