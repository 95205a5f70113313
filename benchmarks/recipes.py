"""Training recipes compared at a fixed wall-clock budget: which optimiser, loss, clipping, crop
and batch size give the best network after the same minutes of training on this machine.

Every run trains one network (`NETS`: the found σ=50 denoiser, DnCNN, FSRCNN, the found ×4 SR
net) with one recipe (`RECIPES`: config overrides on the `cpu` preset) through `hinas.train` with
`budget_seconds` (the iteration count is set from the throughput measured on the first steps),
then scores it with `hinas.jobs.evaluate` on the task's test sets (denoising: Set12 at σ=50; SR:
Set5 and Set14 ×4, Y channel, border = scale).

Prints (and with `--json` writes) JSON:

    {"benchmark": "recipes", "config": {...}, "device": str, "command": str,
     "recipes": {name: [override, ...]},
     "runs": [{"net", "recipe", "iters", "train_seconds", "best_val_psnr", "params",
               "tests": {test name: {"psnr", "ssim"}}, "error": str | null}],
     "best": {net: recipe}}

The JSON is rewritten after every run, and runs already in the `--json` file are skipped, so an
interrupted benchmark continues where it stopped when started again with the same arguments.
A run whose loss diverges is recorded with its error instead of scores.

Example: python benchmarks/recipes.py --data ../shared/data --minutes 3 --runs
found-denoise:current,found-denoise:adamw --json benchmarks/results/recipes.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

if not __package__:  # run as a file, `python benchmarks/NAME.py`: the package made importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GENOTYPES = Path(__file__).parent / "results" / "genotypes"
NETS = {
    "found-denoise": ("denoise", "hinas", GENOTYPES / "denoise_sigma50_cpu.json"),
    "dncnn": ("denoise", "dncnn", None),
    "fsrcnn": ("sr", "fsrcnn", None),
    "found-sr": ("sr", "hinas", GENOTYPES / "sr_x4_cpu.json"),
}
"""Network name: (task, architecture, genotype or None)."""
CURRENT = ["train.optimizer=sgd", "train.lr=0.05", "train.warmup_iters=0", "train.grad_clip=0.4"]
ADAMW = ["train.optimizer=adamw", "train.lr=0.001", "train.warmup_iters=50", "train.grad_clip=0"]
RECIPES = {
    "current": CURRENT,
    "current-plain": CURRENT,
    "no-clip": [*CURRENT[:-1], "train.grad_clip=0"],
    "adamw": ADAMW,
    "adamw-clip": [*ADAMW[:-1], "train.grad_clip=0.4"],
    "adamw-mse": [*ADAMW, "train.loss=mse"],
    "adamw-l1": [*ADAMW, "train.loss=l1"],
    "adamw-b8c64": [*ADAMW, "train.batch_size=8", "train.crop=64"],
    "adamw-b32c32": [*ADAMW, "train.batch_size=32", "train.crop=32"],
    "adamw-c72": [*ADAMW, "train.crop=72"],
    "adamw-residual": ADAMW,
    "adamw-plain": ADAMW,
}
"""Recipe name: overrides of the `cpu` preset's training config. `current` is the recipe the
preset had before this benchmark chose one (SGD lr 0.05, gradient clip 0.4, MSE+SSIM, batch 16,
48 px crops); `adamw` is AdamW lr 1e-3 with 50 warm-up iterations and no clipping. FSRCNN's
`-residual` / `-plain` recipes train it with / without its bicubic residual."""
ARCH_OPTIONS = {"adamw-residual": {"residual": True}, "adamw-plain": {"residual": False},
                "current-plain": {"residual": False}}
TRAIN_DIRS = {"denoise": ["BSDS500"], "sr": ["T91", "BSDS500/train"]}
TESTS = {"denoise": [("Set12 σ=50", "Set12", {"sigma": [50.0]})],
         "sr": [("Set5 x4", "Set5", {"scale": 4}), ("Set14 x4", "Set14", {"scale": 4})]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, metavar="DIR",
                   help="folder holding BSDS500, T91, Set5, Set12, Set14")
    p.add_argument("--minutes", type=float, required=True, help="training budget of every run")
    p.add_argument("--clock", choices=("wall", "cpu"), default="cpu",
                   help="count the budget in wall-clock or this process's CPU time (default: "
                        "CPU, fair between runs while other jobs share the machine)")
    p.add_argument("--runs", required=True, metavar="NET:RECIPE,...",
                   help=f"runs in order; nets {', '.join(NETS)}; recipes {', '.join(RECIPES)}")
    p.add_argument("--preset", default="cpu", help="config preset the recipes modify")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", metavar="WORKDIR", required=True, help="run folders go here")
    p.add_argument("--json", metavar="PATH", help="also write the JSON here (and resume from it)")
    args = p.parse_args(argv)
    args.runs = [tuple(r.split(":", 1)) for r in args.runs.split(",")]
    bad = [":".join(r) for r in args.runs
           if len(r) != 2 or r[0] not in NETS or r[1] not in RECIPES]
    if bad:
        p.error(f"unknown run(s) {', '.join(bad)}; nets {', '.join(NETS)}; "
                f"recipes {', '.join(RECIPES)}")
    return args


def train_and_score(args: argparse.Namespace, net: str, recipe: str) -> dict:
    """Train `net` with `recipe` for the budget, score it on its task's test sets."""
    import hinas
    from hinas.config import resolve
    from hinas.errors import HinasError
    from hinas.jobs.evaluate import evaluate_model, load_test_images

    task, arch, genotype = NETS[net]
    data = Path(args.data)
    fields = {"sigma": [50.0]} if task == "denoise" else {"scale": 4}
    cfg = resolve(task, args.preset, None, RECIPES[recipe], task=fields, seed=args.seed)
    out = Path(args.out) / f"{net}-{recipe}"
    start = time.perf_counter()
    record = {"net": net, "recipe": recipe, "arch": arch, "iters": None, "train_seconds": None,
              "best_val_psnr": None, "params": None, "tests": {}, "error": None}
    try:
        spec = hinas.train(cfg, [str(data / d) for d in TRAIN_DIRS[task]], out, genotype, arch,
                     quiet=True, options=ARCH_OPTIONS.get(recipe),
                     budget_seconds=args.minutes * 60, budget_clock=args.clock)
    except HinasError as err:
        record.update(error=str(err), train_seconds=time.perf_counter() - start)
        return record
    record.update(iters=spec.meta["iterations"], train_seconds=time.perf_counter() - start,
                  train_cpu_seconds=spec.meta["train_cpu_seconds"],
                  best_val_psnr=spec.meta["best_val_psnr"], params=spec.meta["params"])
    model = hinas.load_model(out)
    for name, folder, task_fields in TESTS[task]:
        test_task = dataclasses.replace(spec.task, **task_fields)
        images, _ = load_test_images(data / folder, test_task.channels)
        report = evaluate_model(model, test_task, images, method=f"{net}:{recipe}",
                                data=str(data / folder), seed=args.seed)
        record["tests"][name] = {"psnr": report.mean["psnr"], "ssim": report.mean["ssim"]}
    return record


def best_recipes(runs: list[dict]) -> dict[str, str]:
    """Per network, the recipe with the highest mean PSNR over its test sets."""
    best: dict[str, tuple[float, str]] = {}
    for r in runs:
        if r["error"] or not r["tests"]:
            continue
        score = sum(t["psnr"] for t in r["tests"].values()) / len(r["tests"])
        if r["net"] not in best or score > best[r["net"]][0]:
            best[r["net"]] = (score, r["recipe"])
    return {net: recipe for net, (_, recipe) in best.items()}


def main(argv: list[str] | None = None) -> dict:
    """Run the requested runs (skipping those already in `--json`), print and write the JSON."""
    args = parse_args(argv)
    import torch

    from benchmarks.harness import command_line, device, emit
    from hinas.io import atomic_write_text

    torch.set_num_threads(args.threads)
    earlier = json.loads(Path(args.json).read_text()) if args.json and \
        Path(args.json).exists() else {}
    runs = list(earlier.get("runs", []))
    done = {(r["net"], r["recipe"]) for r in runs}
    config = {"minutes": args.minutes, "clock": args.clock, "preset": args.preset,
              "seed": args.seed, "threads": args.threads, "data": args.data, "train": TRAIN_DIRS,
              "tests": {t: [n for n, _, _ in v] for t, v in TESTS.items()}}
    commands = [c for c in [earlier.get("command")] if c]
    summary: dict = {}
    for net, recipe in args.runs:
        if (net, recipe) in done:
            continue
        runs.append(train_and_score(args, net, recipe))
        summary = {"benchmark": "recipes", "config": config, "device": device("cpu"),
                   "command": ", then ".join([*commands, command_line(__file__, argv)]),
                   "recipes": {n: RECIPES[n] for n in dict.fromkeys(r["recipe"] for r in runs)},
                   "arch_options": ARCH_OPTIONS, "runs": runs, "best": best_recipes(runs)}
        if args.json:
            atomic_write_text(args.json, json.dumps(summary, indent=2) + "\n")
    summary = summary or earlier
    emit(summary)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
