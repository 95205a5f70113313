"""Restoration quality of HiNAS against its baselines, all trained under one identical budget.

Every network is trained by `hinas.train` with the same resolved config (iterations, batch, crop,
learning rate, seed, training folders) and scored by `hinas.jobs.evaluate` on the same test images
(same seeded noisy inputs / LR images, same metric convention):

- denoising: `hinas` (genotype of `--genotype`, or found here by `hinas.search`), `rsws` (random
  search with weight sharing: `--rsws-genotype`, or searched here), `hinas-w40` and `hinas-wm`
  (the hinas cells at fixed widths, paper Table 3), `dncnn`; plus the classic `noisy` input and
  `bm3d` (skipped with a note where the package is missing);
- super-resolution: `hinas`, `rsws`, `fsrcnn`, and `bicubic`.

Prints (and with `--json` writes) JSON:

    {"benchmark": "quality", "config": {...}, "device": str, "notes": [...],
     "methods": {name: {"kind": "network"|"classic", "arch", "psnr", "ssim", "params", "macs",
                        "cost_input": [W, H, C], "latency_s", "seconds_per_image",
                        "search_seconds", "train_seconds", "best_val_psnr", "device",
                        "load_1min"}}}

`params`, `macs` and `latency_s` (median forward time of the BatchNorm-folded network that
`hinas restore` runs; `hinas.models.cost.model_cost`) are taken at the task's cost size, a 481×321
input for denoising (a BSD500 image) and a 128×128 LR input for SR (`--cost-size` changes it);
`search_seconds` is the search that produced the genotype (None when it was given and did not
record it); classic methods have no parameters, MACs or latency.
`--markdown` writes the table. `--methods` runs a subset (e.g. to spread the trainings over several
processes) and `--merge EARLIER.json` adds the methods of an earlier run with the same config.

Example: python benchmarks/quality.py --task denoise --sigma 50 --train ../shared/data/BSDS500
--test ../shared/data/Set12 --iters 3000 --preset cpu --json benchmarks/results/quality_denoise.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as a file, `python benchmarks/NAME.py`: the package made importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NETWORKS = {
    "denoise": [("hinas", "hinas", "hinas"), ("rsws", "hinas", "random"),
                ("hinas-w40", "hinas-w40", "hinas"), ("hinas-wm", "hinas-wm", "hinas"),
                ("dncnn", "dncnn", None)],
    "sr": [("hinas", "hinas", "hinas"), ("rsws", "hinas", "random"), ("fsrcnn", "fsrcnn", None)],
}
"""Per task: (method name, architecture, search strategy of its genotype or None)."""
CLASSICS = {"denoise": ["noisy", "bm3d"], "sr": ["bicubic"]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", choices=("denoise", "sr"), default="denoise")
    p.add_argument("--sigma", type=float, default=50.0, help="noise level (denoise)")
    p.add_argument("--scale", type=int, choices=(2, 3, 4), default=4, help="SR factor (sr)")
    p.add_argument("--train", nargs="+", required=True, metavar="DIR", help="training folders")
    p.add_argument("--test", required=True, metavar="DIR", help="folder of clean test images")
    p.add_argument("--iters", type=int, required=True, help="training iterations of every net")
    p.add_argument("--genotype", metavar="G.json", help="HiNAS genotype (default: search here)")
    p.add_argument("--rsws-genotype", metavar="G.json", help="RSWS genotype (default: search)")
    p.add_argument("--preset", default="cpu", help="config preset of search and training")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every run, e.g. train.batch_size=8")
    p.add_argument("--arch-option", dest="arch_options", action="append", default=[],
                   metavar="ARCH.KEY=VALUE", help="build option of one architecture, "
                   "e.g. dncnn.depth=10")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--cost-size", metavar="WxH", help="input size of params/MACs/latency")
    p.add_argument("--repeats", type=int, default=3, help="latency repeats (median)")
    p.add_argument("--methods", metavar="A,B", help="methods to run (default: all of the task)")
    p.add_argument("--merge", metavar="EARLIER.json",
                   help="add the methods of an earlier run with the same config")
    p.add_argument("--out", metavar="WORKDIR", help="keep the run folders here (default: temp)")
    p.add_argument("--json", metavar="PATH", help="also write the JSON here")
    p.add_argument("--markdown", metavar="PATH", help="also write the markdown table here")
    args = p.parse_args(argv)
    from hinas.config import TaskConfig

    w, h = (map(int, args.cost_size.lower().split("x")) if args.cost_size
            else TaskConfig(name=args.task).cost_size)
    args.cost_size = (w, h)
    known = [n for n, _, _ in NETWORKS[args.task]] + CLASSICS[args.task]
    args.methods = args.methods.split(",") if args.methods else known
    unknown = sorted(set(args.methods) - set(known))
    if unknown:
        p.error(f"unknown method(s) {', '.join(unknown)} for {args.task}; known: "
                f"{', '.join(known)}")
    return args


TARGETS = {
    "denoise": [("hinas", ">=", "dncnn", ("params", "latency_s")), ("hinas", ">", "rsws", ()),
                ("hinas", ">=", "hinas-w40", ("params",)), ("*", ">=1dB", "bm3d", ())],
    "sr": [("hinas", ">", "rsws", ()), ("hinas", ">=", "fsrcnn", ()),
           ("hinas", ">", "bicubic", ())],
}
"""Per task, the quality targets (docs/benchmarks.md): (method or `*` for every network, PSNR
relation, other method, costs in which the method must be lower)."""


COST_FORMAT = {"params": lambda v: f"{v:,}", "latency_s": lambda v: f"{v * 1e3:.1f} ms"}


def target_checks(summary: dict) -> list[str]:
    """One line per quality target whose methods are in `summary`: met or missed, with the
    figures it was judged on."""
    methods, lines = summary["methods"], []
    for left, relation, right, costs in TARGETS[summary["config"]["task"]]:
        names = ([n for n, m in methods.items() if m["kind"] == "network"] if left == "*"
                 else [left])
        if right not in methods or not all(n in methods for n in names) or not names:
            continue
        for name in names:
            a, b = methods[name], methods[right]
            margin = a["psnr"] - b["psnr"]
            ok = {">=": margin >= 0, ">": margin > 0, ">=1dB": margin >= 1}[relation]
            parts = [f"PSNR {a['psnr']:.2f} vs {b['psnr']:.2f} dB ({margin:+.3f})"]
            for cost in costs:
                ok = ok and a[cost] < b[cost]
                parts.append(f"{cost} {COST_FORMAT[cost](a[cost])} vs {COST_FORMAT[cost](b[cost])}")
            wanted = {">=": "≥", ">": ">", ">=1dB": "≥ 1 dB above"}[relation]
            lower = f" with lower {' and '.join(costs)}" if costs else ""
            lines.append(f"- {'met' if ok else 'MISSED'}: {name} {wanted} {right}{lower} — "
                         f"{', '.join(parts)}")
    return lines


def task_label(config: dict) -> str:
    """`denoise σ=50` or `sr ×4`: the task of a quality config."""
    what = f"σ={config['sigma']:g}" if config["task"] == "denoise" else f"×{config['scale']}"
    return f"{config['task']} {what}"


def markdown(summary: dict) -> str:
    """The methods of a quality summary as a markdown table, then the quality targets."""
    c = summary["config"]
    w, h = c["cost_size"]
    lines = [f"**{task_label(c)}**, test `{c['test']}`, {c['iters']} training iterations "
             f"(batch {c['batch_size']}, crop {c['crop']}, preset {c['preset']}) on "
             f"{summary['device']}; params / MACs / latency at {w}×{h}",
             "",
             "| method | PSNR (dB) | SSIM | params (M) | MACs (G) | latency (ms) | search (s) "
             "| train (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def num(value, fmt: str, scale: float = 1.0) -> str:
        return "–" if value is None else format(value * scale, fmt)

    for name, m in summary["methods"].items():
        lines.append(f"| {name} | {m['psnr']:.2f} | {m['ssim']:.4f} | "
                     f"{num(m['params'], '.4f', 1e-6)} | {num(m['macs'], '.2f', 1e-9)} | "
                     f"{num(m['latency_s'], '.1f', 1e3)} | {num(m['search_seconds'], '.0f')} | "
                     f"{num(m['train_seconds'], '.0f')} |")
    checks = target_checks(summary)
    if checks:
        lines += ["", "Targets:", "", *checks]
    lines += [f"\nnote: {n}" for n in summary["notes"]]
    return "\n".join(lines) + "\n"


def find_genotype(cfg, strategy: str, given: str | None, data: list[str], work: Path):
    """The genotype of `strategy` (`hinas` or `random`) and its search time: loaded from `given`
    (the time its search recorded, if any), or searched on `data` in `work/search-<strategy>`."""
    import hinas
    from hinas.space.genotype import Genotype

    if given:
        genotype = Genotype.load(given)
        return genotype, genotype.meta.get("search_seconds")
    cfg = dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, strategy=strategy))
    start = time.perf_counter()
    genotype = hinas.search(cfg, data, work / f"search-{strategy}", quiet=True)
    return genotype, time.perf_counter() - start


def run(args: argparse.Namespace, work: Path) -> dict:
    """Search (where needed), train, and score every method; return the summary."""
    import torch

    import hinas
    from benchmarks.harness import device, load_1min, portable
    from hinas.config import parse_override, resolve
    from hinas.errors import HinasError
    from hinas.jobs.evaluate import evaluate_model, load_test_images
    from hinas.models.classical import get_method
    from hinas.models.cost import model_cost

    torch.set_num_threads(args.threads)
    task = {"sigma": [args.sigma]} if args.task == "denoise" else {"scale": args.scale}
    cfg = resolve(args.task, args.preset, None, args.overrides, task=task,
                  train={"iters": args.iters}, seed=args.seed, device=args.device)
    options: dict = {}
    for text in args.arch_options:
        options.update(parse_override(text))
    images, notes = load_test_images(args.test, cfg.task.channels)
    networks = [n for n in NETWORKS[args.task] if n[0] in args.methods]
    genotypes = {}
    for strategy, given in (("hinas", args.genotype), ("random", args.rsws_genotype)):
        if any(s == strategy for _, _, s in networks):
            genotypes[strategy] = find_genotype(cfg, strategy, given, args.train, work)
    w, h = args.cost_size
    methods = {}
    for name, arch, strategy in networks:
        genotype, search_s = genotypes[strategy] if strategy else (None, None)
        start = time.perf_counter()
        spec = hinas.train(cfg, args.train, work / name, genotype, arch, quiet=True,
                           options=options.get(arch))
        train_s = time.perf_counter() - start
        model = hinas.load_model(work / name, cfg.device)
        report = evaluate_model(model, cfg.task, images, method=name, data=args.test,
                                seed=args.seed, device=cfg.device, quiet=True)
        cost = model_cost(model, cfg.task, (w, h), args.repeats)
        methods[name] = {
            "kind": "network", "arch": arch, "psnr": report.mean["psnr"],
            "ssim": report.mean["ssim"], "params": cost.params, "macs": cost.macs,
            "cost_input": [w, h, cfg.task.channels], "latency_s": cost.latency_s,
            "load_1min": load_1min(),  # machine load while it was measured
            "seconds_per_image": report.mean["seconds"], "search_seconds": search_s,
            "train_seconds": train_s, "best_val_psnr": spec.meta["best_val_psnr"],
            "device": report.device}
    for name in (n for n in CLASSICS[args.task] if n in args.methods):
        try:
            get_method(name, cfg.task)
        except HinasError as err:
            notes.append(f"{name} skipped: {err}")
            continue
        report = evaluate_model(name, cfg.task, images, data=args.test, seed=args.seed,
                                quiet=True)
        methods[name] = {
            "kind": "classic", "arch": None, "psnr": report.mean["psnr"],
            "ssim": report.mean["ssim"], "params": None, "macs": None, "cost_input": None,
            "latency_s": None, "seconds_per_image": report.mean["seconds"],
            "search_seconds": None, "train_seconds": None, "best_val_psnr": None,
            "device": report.device, "load_1min": None}
    t = cfg.train
    config = {"task": args.task, "sigma": args.sigma, "scale": args.scale,
              "channels": cfg.task.channels, "train": [portable(d) for d in args.train],
              "test": portable(args.test),
              "images": len(images), "iters": t.iters, "batch_size": t.batch_size,
              "crop": t.crop, "lr": t.lr, "seed": cfg.seed, "preset": args.preset,
              "overrides": args.overrides, "arch_options": options,
              "genotype": args.genotype and portable(args.genotype),
              "rsws_genotype": args.rsws_genotype and portable(args.rsws_genotype),
              "cost_size": [w, h], "repeats": args.repeats, "threads": args.threads}
    return {"benchmark": "quality", "config": config, "device": device(cfg.device),
            "notes": notes, "methods": methods}


RUN_KEYS = ("task", "sigma", "scale", "channels", "train", "test", "iters", "batch_size", "crop",
            "lr", "seed", "preset", "overrides", "arch_options", "genotype", "rsws_genotype",
            "cost_size")
"""Config entries that must agree for two quality runs to be merged."""


def merge(summary: dict, earlier_path: str) -> dict:
    """`summary` with the methods (and notes) of the earlier quality summary at `earlier_path`
    added, in the task's method order."""
    from benchmarks.harness import joined_commands, load_compatible

    earlier = load_compatible(earlier_path, summary["config"], RUN_KEYS, "quality")
    found = {**earlier["methods"], **summary["methods"]}
    task = summary["config"]["task"]
    order = [n for n, _, _ in NETWORKS[task]] + CLASSICS[task]
    notes = earlier["notes"] + [n for n in summary["notes"] if n not in earlier["notes"]]
    return {**summary, "notes": notes, "methods": {n: found[n] for n in order if n in found},
            "command": joined_commands(earlier, summary)}


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print the JSON and write the requested files."""
    args = parse_args(argv)
    from hinas.errors import HinasError

    try:
        if args.out:
            summary = run(args, Path(args.out))
        else:
            with tempfile.TemporaryDirectory(prefix="hinas-quality-") as work:
                summary = run(args, Path(work))
    except HinasError as err:
        raise SystemExit(f"quality: error: {err}") from None
    from benchmarks.harness import command_line, emit

    summary["command"] = command_line(__file__, argv)
    if args.merge:
        summary = merge(summary, args.merge)
    emit(summary, args.json, {args.markdown: markdown(summary)})
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
