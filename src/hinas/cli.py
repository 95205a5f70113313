"""Command-line interface: parses arguments and calls library functions; errors become one line.

Every option is declared once, in :mod:`hinas.cli_options` (choices and help read from the
registries); each command (`COMMANDS`) names the options it takes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hinas import __version__
from hinas.cli_options import HelpFormatter, add_command, options
from hinas.config import (
    DEFAULT_PRESET,
    Config,
    flatten,
    load_config,
    load_yaml,
    parse_override,
    resolve,
    with_data,
)
from hinas.errors import HinasError
from hinas.runtime.distributed import is_main_process, leave_report_to_rank_zero, peer_failures
from hinas.tasks import DEFAULT_TASK, command_line_levels, noise_level_options, option_fields


def finished(outputs: str, next_command: str) -> None:
    """The last lines of a command: what it wrote, and the natural next command."""
    print(outputs)
    print(f"next: {next_command}")


def run_files(folder: Path) -> str:
    """The record files of a run folder, comma-separated."""
    kinds = (".yaml", ".jsonl", ".log", ".json", ".png", ".safetensors")
    return ", ".join(sorted(p.name for p in folder.iterdir() if p.suffix in kinds))


def task_fields(args: argparse.Namespace) -> dict:
    """The task fields of the level options given (checked further by TaskConfig.validate),
    and of `--noise-map`."""
    mapped = {"noise_map": True} if getattr(args, "noise_map", None) else {}
    return {**option_fields(args.task, {name: getattr(args, name)
                                        for name in command_line_levels()}), **mapped}


def config_from_args(args: argparse.Namespace, task_defaults: dict | None = None,
                     **sections: dict) -> Config:
    """Resolve the Config of the task and config options, on top of the task fields
    `task_defaults` (a genotype's); `sections` adds command-specific values (e.g.
    `search={"strategy": "random"}`), overridable by --set."""
    task = {**(task_defaults or {}), **({"channels": args.channels} if args.channels else {}),
            **task_fields(args)}
    sections = {"runtime": {"tensorboard": args.tensorboard}, "data": {"workers": args.workers},
                **sections}
    sections = {k: {n: v for n, v in d.items() if v is not None} for k, d in sections.items()}
    return resolve(args.task or DEFAULT_TASK, args.preset or DEFAULT_PRESET, args.config,
                   args.overrides, task=task or None, seed=args.seed, device=args.device,
                   **sections)


def resumed_config(args: argparse.Namespace, job: str, **options: str) -> Config | None:
    """The config of the run folder `--out` when `--resume` finds one (else None), with the
    config options given (and `options`, config keys of `job`-specific ones) as overrides after
    the --set ones: a change is allowed or refused with its key named (docs/run-folders.md)."""
    path = Path(args.out) / "config.yaml"
    if not (args.resume and path.exists()):
        return None
    task = {"name": args.task, "channels": args.channels, **task_fields(args)}
    values = {**{f"task.{k}": v for k, v in task.items()},
              **(flatten(load_yaml(args.config)) if args.config else {}),
              "preset": args.preset, "seed": args.seed, "device": args.device,
              f"{job}.amp": args.amp, f"{job}.channels_last": args.channels_last,
              "data.workers": args.workers, "runtime.tensorboard": args.tensorboard,
              **{key: getattr(args, name) for name, key in options.items()}}
    return load_config(path, [*args.overrides, *(f"{key}={json.dumps(value)}" for key, value
                                                 in values.items() if value is not None)])


def _arch_show(args: argparse.Namespace) -> None:
    from hinas.jobs.arch import describe_genotype, genotype_to_show

    genotype, multiplier, source = genotype_to_show(args.genotype, args.width_multiplier)
    print(describe_genotype(genotype, multiplier))
    print(f"width multiplier {multiplier:g} from {source}")
    if args.plot:
        from hinas.runtime.viz import plot_genotype

        plot_genotype(genotype, args.plot, multiplier)
        print(f"plot written to {args.plot}")
    target = Path(args.genotype)
    if (target / "model.json").exists():
        print(f"next: hinas eval --model {target} --data TEST_DIR")
    else:
        genotype_file = target / "genotype.json" if target.is_dir() else target
        print(f"next: hinas train --genotype {genotype_file} --data DIR --out RUNDIR")


def _arch_random(args: argparse.Namespace) -> None:
    from hinas.jobs.arch import random_like

    genotype, multiplier, source = random_like(args.like, args.seed, args.tolerance,
                                               args.width_multiplier, args.tries, args.any_size)
    genotype.save(args.output)
    target = genotype.meta["target_params"]
    window = "" if target is None else f" (target {target:,} ± {args.tolerance:.0%})"
    finished(f"random genotype written to {args.output}: path {genotype.path}, "
             f"{genotype.meta['params']:,} parameters at width multiplier {multiplier:g} from "
             f"{source}{window}, {genotype.meta['draws']} draw(s)",
             f"hinas train --genotype {args.output} --data DIR --out RUNDIR")


def _arch_select(args: argparse.Namespace) -> None:
    from hinas.jobs.search import reselect

    overrides = [*args.overrides, *([f"search.select={args.select}"] if args.select else []),
                 *([f"search.width={args.width}"] if args.width else [])]
    genotype = reselect(args.run, overrides, args.quiet)
    genotype.save(args.output)
    chosen = genotype.meta["selection"]
    finished(f"genotype written to {args.output}: width path {genotype.path}, selected by "
             f"{chosen['select']} (cells) and {chosen['width']} (width) from {args.run}",
             f"hinas train --genotype {args.output} --data DIR --out RUNDIR")


def _search(args: argparse.Namespace) -> None:
    from hinas.jobs.search import search
    from hinas.runtime.budget import cost_text

    out = Path(args.out)
    cfg = resumed_config(args, "search", strategy="search.strategy",
                         samples="search.samples", max_macs="search.max_macs",
                         max_latency="search.max_latency") or config_from_args(args, search={
        "strategy": args.strategy, "channels_last": args.channels_last, "amp": args.amp,
        "samples": args.samples, "max_macs": args.max_macs, "max_latency": args.max_latency})
    cfg = with_data(cfg, args.data)
    genotype = search(cfg, cfg.data.path, out, resume=args.resume, quiet=args.quiet, lq=args.lq)
    if is_main_process():
        preset = f" --preset {cfg.preset}" if cfg.preset else ""
        lq = f" --lq {' '.join(args.lq or cfg.data.lq)}" if args.lq or cfg.data.lq else ""
        cost = f"; {cost_text(genotype.meta['cost'])}" if "cost" in genotype.meta else ""
        finished(f"genotype written to {out / 'genotype.json'} (width path {genotype.path}"
                 f"{cost}); run folder {out}: {run_files(out)}", f"hinas train --genotype "
                 f"{out / 'genotype.json'} --data {' '.join(cfg.data.path)}{lq}{preset} --out "
                 f"{out}-train")


def _train(args: argparse.Namespace) -> None:
    from hinas.jobs.train import parse_budget, train
    from hinas.models.pretrained import model_folder
    from hinas.space.genotype import Genotype

    out = Path(args.out)
    budget = parse_budget(args.budget) if args.budget else None
    cfg = resumed_config(args, "train", iters="train.iters")
    if cfg is None:  # the task, its levels and channels default to the genotype's
        base = Genotype.load(args.genotype).task if args.genotype else None
        args.task = args.task or (base.name if base else DEFAULT_TASK)
        cfg = config_from_args(args, base.defaults_for(args.task) if base else {}, train={
            "iters": args.iters, "channels_last": args.channels_last, "amp": args.amp})
    pieces = cfg.train.schedule == "constant"
    if budget and (args.iters or (args.resume and not pieces)):
        raise HinasError("--budget ends this piece of the run: drop --iters" if pieces else
                         "--budget sets the iteration count of a new run: drop --iters, "
                         "and resume with --resume alone (the count is in its config.yaml)")
    data = args.data or cfg.data.path
    cfg = with_data(cfg, data) if data else cfg
    spec = train(cfg, data or None, out, args.genotype, args.arch, resume=args.resume,
                 quiet=args.quiet, lq=args.lq, budget_seconds=budget,
                 options={k: v for text in args.arch_options
                          for k, v in parse_override(text).items()},
                 init_from=model_folder(args.init_from)[0] if args.init_from else None)
    m = spec.meta
    if is_main_process():
        if pieces and m.get("campaign"):
            print(f"campaign ({out / 'campaign.png'}): {m['campaign']['status']}")
        elif budget:
            print(f"budget {args.budget}: {m['budget']['iters']} iterations "
                  f"({m['budget']['step_seconds']:.3f} s each as measured; reproduce with "
                  f"--iters {m['budget']['iters']})")
        finished(f"model written to {out} ({spec.arch}, {m['params']:,} parameters; best "
                 f"validation PSNR {m['best_val_psnr']:.2f} dB at iteration {m['best_iter']} of "
                 f"{m['iterations']}); run folder: {run_files(out)}",
                 f"hinas eval --model {out} --data TEST_DIR"
                 + (" --lq TEST_LQ_DIR" if m.get("lq") else ""))


def _eval(args: argparse.Namespace) -> None:
    from hinas.io import check_output_file
    from hinas.jobs.evaluate import evaluate

    if args.json:
        check_output_file(args.json)
    report = evaluate(args.data, model=args.model, pretrained=args.pretrained,
                      method=args.method, task=args.task, levels=task_fields(args),
                      channels=args.channels, lq=args.lq, seed=args.seed, device=args.device,
                      tile=args.tile, overlap=args.overlap, save_dir=args.save_images,
                      quiet=args.quiet)
    print(report.table())
    if args.json:
        report.save_json(args.json)
    written = "; ".join([*([f"results written to {args.json}"] if args.json else []),
                         *([f"restored images written to {args.save_images}"]
                           if args.save_images else [])])
    if args.model or args.pretrained:
        which = f"--model {args.model}" if args.model else f"--pretrained {args.pretrained}"
        finished(written or "nothing written (add --json PATH to keep the results)",
                 f"hinas restore {which} INPUT... -o OUTDIR")
    elif written:
        print(written)


def _restore(args: argparse.Namespace) -> None:
    from hinas.jobs.restore import restore_images
    from hinas.models.pretrained import model_folder

    names = [flag[2:].replace("-", "_") for flag, _ in noise_level_options()]
    levels = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    written = restore_images(model_folder(args.model, args.pretrained)[0], args.inputs,
                             args.out, tile=args.tile, overlap=args.overlap,
                             convert=args.convert, device=args.device, quiet=args.quiet,
                             backend=args.backend, levels=levels)
    print(f"restored {len(written)} image(s) into {args.out}")
    if written:
        print(f"first: {written[0]}")


def _export(args: argparse.Namespace) -> None:
    from hinas.models.export import export_model

    path = export_model(args.model, args.out, args.opset)
    print(f"exported {args.model} to {path} (ONNX opset {args.opset}, dynamic batch, height "
          f"and width)")


def _models(args: argparse.Namespace) -> None:
    from hinas.models.pretrained import models_table

    print(models_table())


def _demo(args: argparse.Namespace) -> None:
    from hinas.demo import demo_task, run_demo

    demo = demo_task(args.task)
    report = run_demo(args.out, tiny=args.tiny or None, quiet=args.quiet, task=demo.name)
    finished(f"demo report written to {report}", f"hinas search --task {demo.name} "
             f"{demo.options} --data YOUR_IMAGES/ --out runs/mine")


CONFIG = ("preset", "config", "set", "seed", "device", "amp", "channels last", "workers",
          "tensorboard")
"""The options of the commands that resolve a Config."""
COMMANDS = [
    ("arch show", "print (and draw) a genotype at the widths it is trained at",
     "hinas arch show runs/den50 --plot arch.svg", _arch_show,
     ("genotype file", "plot", "width multiplier")),
    ("arch random", "draw a random genotype from the space of another one (uniform ops, edges "
     "and width path), by default with about its parameter count",
     "hinas arch random --like runs/den50 -o random.json", _arch_random,
     ("like", "output", "draw seed", "tolerance", "any size", "tries", "width multiplier")),
    ("arch select", "choose a genotype again from a finished search's supernet, by another "
     "selection signal", "hinas arch select runs/den50 --select perturb --width oneshot -o "
     "g.json", _arch_select, ("search run", "output", "select", "width", "set", "quiet")),
    ("search", "search an architecture on a folder of images", "hinas search --task denoise "
     "--sigma 50 --data BSDS500/ --out runs/den50", _search,
     ("task", *CONFIG, "data", "lq", "out", "strategy", "samples", "max macs", "max latency",
      "resume", "quiet")),
    ("train", "train a searched architecture on a folder of images", "hinas train --genotype "
     "runs/den50/genotype.json --data BSDS500/ --out runs/den50-train", _train,
     ("genotype's task", *CONFIG, "genotype", "arch", "arch option", "data", "lq", "out",
      "iters", "budget", "init from", "resume", "quiet")),
    ("eval", "score a trained model or a classical method on test images", "hinas eval --model "
     "runs/den50-train --data Set12/ --sigma 50 --json r.json", _eval,
     ("model", "pretrained", "method", "test data", "test lq", "model's task", "json",
      "save images", "tile", "overlap", "inference device", "noise seed", "quiet")),
    ("restore", "restore images with a trained model", "hinas restore --model runs/den50-train "
     "noisy/*.png -o restored/", _restore, ("inputs", "model", "pretrained", "out folder",
                                            "noise level", "tile", "overlap",
                                            "inference device", "convert", "backend", "quiet")),
    ("models", "list the pretrained models shipped with hinas", "hinas models", _models, ()),
    ("export", "export a trained model to ONNX (onnx extra)", "hinas export --model "
     "runs/den50-train -o den50.onnx", _export, ("export model", "onnx", "opset")),
    ("demo", "search, train and evaluate on built-in photographs", "hinas demo --out hinas-demo",
     _demo, ("demo out", "demo task", "tiny", "quiet")),
]
"""Each command: its name, what it does, an example, its function and its options."""
GROUPS = {"arch": ("inspect architectures", "hinas arch show runs/den50")}
"""The commands of subcommands: what they do, an example."""


def build_parser() -> argparse.ArgumentParser:
    """The `hinas` argument parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="hinas", formatter_class=HelpFormatter,
        description="Memory-efficient hierarchical NAS for image restoration "
                    "(search, train, evaluate, restore).",
        epilog="a whole run:\n"
               "  hinas search --task denoise --sigma 50 --data BSDS500/ --out runs/den50\n"
               "  hinas train --genotype runs/den50/genotype.json --data BSDS500/ "
               "--out runs/den50-train\n"
               "  hinas eval --model runs/den50-train --data Set12/ --sigma 50\n"
               "  hinas restore --model runs/den50-train noisy/ -o restored/")
    parser.add_argument("--version", action="version", version=f"hinas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    groups, declared = {"": sub}, options()
    for name, help, example, func, keys in COMMANDS:
        group, _, leaf = name.rpartition(" ")
        if group not in groups:  # a command of subcommands, e.g. `hinas arch`
            words, first = GROUPS[group]
            groups[group] = add_command(sub, group, words, first).add_subparsers(
                dest=f"{group}_command", required=True)
        command = add_command(groups[group], leaf, help, example)
        for key in keys:
            for flags, kw in declared[key]:
                command.add_argument(*flags, **kw)
        command.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `hinas` console script."""
    args = build_parser().parse_args(argv)
    try:
        with peer_failures():
            args.func(args)
    except HinasError as err:
        if is_main_process():  # under torchrun every rank has the error; rank 0 says it
            print(f"hinas: error: {err}", file=sys.stderr, flush=True)
        else:
            leave_report_to_rank_zero(str(err))
        return 2
    except KeyboardInterrupt:
        print("hinas: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
