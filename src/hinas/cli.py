"""Command-line interface: parses arguments and calls library functions; errors become one line."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from hinas import __version__
from hinas.config import (
    AMP_MODES,
    DEFAULT_PRESET,
    PRESETS,
    SELECTIONS,
    WIDTH_SELECTIONS,
    Config,
    load_config,
    parse_override,
    resolve,
)
from hinas.errors import HinasError
from hinas.models.export import OPSET
from hinas.runtime.distributed import is_main_process, peer_failures
from hinas.tasks import (
    DEFAULT_TASK,
    TASKS,
    command_line_levels,
    level_text,
    option_fields,
    task_class,
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default (where it has one) and keeps the examples' line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, [], argparse.SUPPRESS):
            return action.help or ""
        return super()._get_help_string(action)


def add_command(sub, name: str, help: str, example: str) -> argparse.ArgumentParser:
    """A subcommand parser whose --help shows defaults and ends with `example`."""
    return sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".",
                          formatter_class=HelpFormatter, epilog=f"example:\n  {example}")


def finished(outputs: str, next_command: str) -> None:
    """The last lines of a command: what it wrote, and the natural next command."""
    print(outputs)
    print(f"next: {next_command}")


def run_files(folder: Path) -> str:
    """The record files of a run folder, comma-separated."""
    kinds = (".yaml", ".jsonl", ".log", ".json", ".png", ".safetensors")
    return ", ".join(sorted(p.name for p in folder.iterdir() if p.suffix in kinds))


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
    import numpy as np

    from hinas.jobs.arch import genotype_to_show, random_genotype
    from hinas.measures.complexity import count_params
    from hinas.models.architectures import DerivedNet

    like, multiplier, source = genotype_to_show(args.like, args.width_multiplier)
    target = None if args.any_size else count_params(DerivedNet(like, multiplier))
    try:
        genotype = random_genotype(like.space, like.task, np.random.default_rng(args.seed),
                                   target, args.tolerance, multiplier, args.tries)
    except HinasError as err:
        raise HinasError(f"{args.like}: {err}") from None
    genotype.meta.update(seed=args.seed, like=str(args.like), target_params=target)
    genotype.save(args.output)
    window = "" if target is None else f" (target {target:,} ± {args.tolerance:.0%})"
    finished(f"random genotype written to {args.output}: path {genotype.path}, "
             f"{genotype.meta['params']:,} parameters at width multiplier {multiplier:g} from "
             f"{source}{window}, {genotype.meta['draws']} draw(s)",
             f"hinas train --genotype {args.output} --data DIR --out RUNDIR")


def _arch_select(args: argparse.Namespace) -> None:
    from hinas.jobs.search import reselect

    overrides = list(args.overrides)
    overrides += [f"search.select={args.select}"] if args.select else []
    overrides += [f"search.width={args.width}"] if args.width else []
    genotype = reselect(args.run, overrides, args.quiet)
    genotype.save(args.output)
    finished(f"genotype written to {args.output}: width path {genotype.path}, selected by "
             f"{genotype.meta['selection']['select']} (cells) and "
             f"{genotype.meta['selection']['width']} (width) from {args.run}",
             f"hinas train --genotype {args.output} --data DIR --out RUNDIR")


def add_config_args(parser: argparse.ArgumentParser, inherited: str = "") -> None:
    """Options shared by commands that resolve a Config (task, preset, YAML, overrides, seed);
    the task's defaults may be `inherited` (from a genotype)."""
    add_task_args(parser, inherited)
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"one of {', '.join(PRESETS)}")
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML config applied on the preset")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config value, e.g. search.epochs=5")
    parser.add_argument("--seed", type=int, help="random seed (default: 0)")
    parser.add_argument("--device", help="cpu or cuda[:N] (default: cpu)")
    parser.add_argument("--amp", choices=AMP_MODES,
                        help="automatic mixed precision of the job (auto: bf16 where the device "
                             "runs it natively; on a GPU without it fp16, on such a CPU fp32; "
                             "default: the preset's)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                        help="channels-last (NHWC) memory format for network and batches "
                             "(default: the preset's)")
    parser.add_argument("--workers", type=int, help="data-loading worker processes (default: 0)")
    parser.add_argument("--tensorboard", action="store_true", default=None,
                        help="also write TensorBoard scalars to RUNDIR/tensorboard "
                             "(tensorboard extra)")


def add_task_args(parser: argparse.ArgumentParser, inherited: str = "",
                  evaluating: bool = False) -> None:
    """`--task`, `--channels` and the options of every registered task's levels (hinas.tasks):
    a list level as one value or a range LOW:HIGH, drawn per crop in training and evaluated at
    its middle (`evaluating`). Their defaults are the task's, or those `inherited` from a model
    or genotype ("the model's")."""
    def default(value: str) -> str:
        return inherited if evaluating else f"{inherited}, else {value}" if inherited else value

    first = "; a method's first task" if evaluating else ""
    parser.add_argument("--task", choices=TASKS.names(), default=None if inherited else
                        DEFAULT_TASK, help="restoration task" + (
                            f" (default: {default(DEFAULT_TASK)}{first})" if inherited else ""))
    ranges = "evaluated at its middle" if evaluating else "drawn uniformly per crop (blind)"
    for name, (level, owners) in command_line_levels().items():
        unit = task_class(owners[0])
        value = getattr(unit(), name)
        several = "" if evaluating or level.ranged else ", several (one drawn per crop)"
        form = f": one value{several} or a range LOW:HIGH {ranges}" \
            if isinstance(value, list) else ""
        kind = ({"nargs": "+"} if not level.ranged else {}) if isinstance(value, list) else \
            {"type": unit.kind(name)[0], "choices": level.choices or None}
        parser.add_argument(f"--{name.replace('_', '-')}", metavar=level.metavar, **kind,
                            help=f"{level.help}{form} ({'/'.join(owners)}; default: "
                                 f"{default(level_text(value))})")
    parser.add_argument("--channels", type=int, choices=(1, 3), help="1 = gray, 3 = RGB "
                        f"(default: {default('the task' + chr(39) + 's, RGB for SR')})")


def task_fields(args: argparse.Namespace) -> dict:
    """The task fields of the level options given (checked further by TaskConfig.validate)."""
    given = {name: getattr(args, name) for name in command_line_levels()}
    return option_fields(args.task, given)


def config_from_args(args: argparse.Namespace, task_defaults: dict | None = None,
                     **sections: dict) -> Config:
    """Resolve the Config described by the options of `add_config_args`, on top of the task
    fields `task_defaults` (a genotype's); `sections` adds command-specific values (e.g.
    `search={"strategy": "random"}`), overridable by --set."""
    task = dict(task_defaults or {})
    task.update({"channels": args.channels} if args.channels else {})
    task.update(task_fields(args))
    sections = {"runtime": {"tensorboard": args.tensorboard},
                "data": {"workers": args.workers}, **sections}
    sections = {k: {n: v for n, v in d.items() if v is not None} for k, d in sections.items()}
    return resolve(args.task, args.preset, args.config, args.overrides, task=task or None,
                   seed=args.seed, device=args.device, **sections)


def amp_override(args: argparse.Namespace, job: str) -> list[str]:
    """`--amp` of a resumed run as a config override of `job` (search or train); none without
    it (the run keeps its precision)."""
    return [f"{job}.amp='{args.amp}'"] if args.amp else []


def with_data(cfg: Config, data: list[str] | None) -> Config:
    """`cfg` recording the training folders `data` (given, or else those `cfg` holds), so that the
    run folder's config.yaml names them; HinasError when there are none."""
    folders = [str(d) for d in (data or cfg.data.path)]
    if not folders:
        raise HinasError("no training images: give --data DIR")
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=folders))


def _search(args: argparse.Namespace) -> None:
    from hinas.jobs.search import search

    out = Path(args.out)
    if args.resume and (out / "config.yaml").exists():
        cfg = load_config(out / "config.yaml", [*args.overrides, *amp_override(args, "search")])
    else:
        cfg = config_from_args(args, search={"strategy": args.strategy,
                                             "channels_last": args.channels_last,
                                             "amp": args.amp,
                                             "samples": args.samples})
    cfg = with_data(cfg, args.data)
    genotype = search(cfg, cfg.data.path, out, resume=args.resume, quiet=args.quiet, lq=args.lq)
    if not is_main_process():
        return
    preset = f" --preset {cfg.preset}" if cfg.preset else ""
    lq = f" --lq {' '.join(args.lq or cfg.data.lq)}" if args.lq or cfg.data.lq else ""
    finished(f"genotype written to {out / 'genotype.json'} (width path {genotype.path}); "
             f"run folder {out}: {run_files(out)}",
             f"hinas train --genotype {out / 'genotype.json'} --data {' '.join(cfg.data.path)}"
             f"{lq}{preset} --out {out}-train")


def _train(args: argparse.Namespace) -> None:
    from hinas.jobs.train import parse_budget, train
    from hinas.space.genotype import Genotype

    out = Path(args.out)
    budget = None
    if args.budget:
        if args.iters or args.resume:
            raise HinasError("--budget sets the iteration count of a new run: drop --iters, "
                             "and resume with --resume alone (the count is in its config.yaml)")
        budget = parse_budget(args.budget)
    if args.resume and (out / "config.yaml").exists():
        iters = [f"train.iters={args.iters}"] if args.iters else []
        cfg = load_config(out / "config.yaml", [*args.overrides, *iters, *amp_override(args,
                                                                                       "train")])
    else:
        task_defaults = {}
        if args.genotype:  # the task, its levels and channels default to the genotype's
            g = Genotype.load(args.genotype).task
            args.task = args.task or g.name
            task_defaults = g.defaults_for(args.task)
        args.task = args.task or DEFAULT_TASK
        cfg = config_from_args(args, task_defaults, train={"iters": args.iters,
                                                           "channels_last": args.channels_last,
                                                           "amp": args.amp})
    data = args.data or cfg.data.path
    if data:
        cfg = with_data(cfg, data)
    init_from = None
    if args.init_from:
        name = args.init_from.removeprefix("pretrained:")
        init_from = model_folder(args.init_from, None if name == args.init_from else name)[0]
    options = {k: v for text in args.arch_options for k, v in parse_override(text).items()}
    spec = train(cfg, data or None, out, args.genotype, args.arch, resume=args.resume,
                 quiet=args.quiet, options=options, budget_seconds=budget, init_from=init_from,
                 lq=args.lq)
    m = spec.meta
    if is_main_process():
        if budget:
            print(f"budget {args.budget}: {m['budget']['iters']} iterations "
                  f"({m['budget']['step_seconds']:.3f} s each as measured; reproduce with "
                  f"--iters {m['budget']['iters']})")
        finished(f"model written to {out} ({spec.arch}, {m['params']:,} parameters; best "
                 f"validation PSNR {m['best_val_psnr']:.2f} dB at iteration {m['best_iter']} of "
                 f"{m['iterations']}); run folder: {run_files(out)}",
                 f"hinas eval --model {out} --data TEST_DIR"
                 + (" --lq TEST_LQ_DIR" if spec.meta.get("lq") else ""))


def model_folder(model: str | None, pretrained: str | None) -> tuple[str | Path, str]:
    """The model folder named by --model or --pretrained, and how to call it in messages."""
    if pretrained:
        from hinas.models.pretrained import pretrained_folder

        return pretrained_folder(pretrained), f"pretrained model {pretrained}"
    return model, model


def _eval(args: argparse.Namespace) -> None:
    from hinas.io import check_output_file
    from hinas.jobs.evaluate import (
        evaluate_classical,
        evaluate_model,
        evaluation_task,
        load_test_images,
        load_test_inputs,
    )

    if sum(x is not None for x in (args.model, args.pretrained, args.method)) != 1:
        raise HinasError("give one of --model RUNDIR, --pretrained NAME or --method NAME")
    if args.json:
        check_output_file(args.json)
    if args.model or args.pretrained:
        from hinas.models.folder import ModelSpec, check_task, load_model
        folder, source = model_folder(args.model, args.pretrained)
        spec = ModelSpec.load(folder)
        task = evaluation_task(spec.task, args.task, task_fields(args), args.channels, source)
        check_task(spec.task, task, source)
    else:
        from hinas.models.classical import get_method

        task = evaluation_task(None, args.task or get_method(args.method).tasks[0],
                               task_fields(args), args.channels, f"method {args.method}")
    images, notes = load_test_images(args.data, task.channels)
    inputs = load_test_inputs(images, args.lq, task)
    common = {"data": " ".join(args.data), "seed": args.seed, "save_dir": args.save_images,
              "notes": notes, "quiet": args.quiet, "inputs": inputs,
              "lq": " ".join(args.lq or [])}
    if args.model or args.pretrained:
        report = evaluate_model(load_model(folder, args.device), task, images,
                                method=f"{spec.arch} ({source})", device=args.device,
                                tile=args.tile, overlap=args.overlap, **common)
    else:
        report = evaluate_classical(args.method, task, images, **common)
    print(report.table())
    written = [f"results written to {args.json}"] if args.json else []
    if args.json:
        report.save_json(args.json)
    if args.save_images:
        written.append(f"restored images written to {args.save_images}")
    if args.model or args.pretrained:
        which = f"--model {args.model}" if args.model else f"--pretrained {args.pretrained}"
        finished("; ".join(written) or "nothing written (add --json PATH to keep the results)",
                 f"hinas restore {which} INPUT... -o OUTDIR")
    elif written:
        print("; ".join(written))


def _restore(args: argparse.Namespace) -> None:
    from hinas.jobs.restore import restore_images

    if (args.model is None) == (args.pretrained is None):
        raise HinasError("give either --model RUNDIR or --pretrained NAME (see `hinas models`)")
    folder, _ = model_folder(args.model, args.pretrained)
    written = restore_images(folder, args.inputs, args.out, tile=args.tile,
                             overlap=args.overlap, convert=args.convert, device=args.device,
                             quiet=args.quiet, backend=args.backend)
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
    finished(f"demo report written to {report}",
             f"hinas search --task {demo.name} {demo.options} --data YOUR_IMAGES/ --out "
             f"runs/mine")


def add_lq_arg(parser: argparse.ArgumentParser, images: str) -> None:
    """`--lq DIR...`: the degraded inputs of the `images` images of --data, from files."""
    resume = "; --resume: the run's" if images == "training" else ""
    parser.add_argument("--lq", metavar="DIR", nargs="+",
                        help=f"folder(s) of degraded inputs of the {images} images, matched by "
                             f"file-name stem (recursive; --task paired, or --task sr --scale S "
                             f"for low-resolution files{resume})")


def add_inference_args(parser: argparse.ArgumentParser) -> None:
    """Options of commands that run a model on whole images: tiling and device."""
    parser.add_argument("--tile", type=int, default=0,
                        help="tile size in pixels (0 = whole image)")
    parser.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")


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

    arch = add_command(sub, "arch", "inspect architectures", "hinas arch show runs/den50")
    arch_sub = arch.add_subparsers(dest="arch_command", required=True)
    show = add_command(arch_sub, "show", "print (and draw) a genotype at the widths it is "
                       "trained at", "hinas arch show runs/den50 --plot arch.svg")
    show.add_argument("genotype", metavar="GENOTYPE_OR_RUNDIR",
                      help="genotype.json, or a search or training run folder")
    show.add_argument("--plot", metavar="OUT", help="draw the architecture to OUT.png or OUT.svg")
    show.add_argument("--width-multiplier", type=float,
                      help="node-width multiplier (default: what the run folder records, else "
                           f"the {DEFAULT_PRESET} preset's train.width_multiplier)")
    show.set_defaults(func=_arch_show)
    rand = add_command(arch_sub, "random", "draw a random genotype from the space of another "
                       "one (uniform ops, edges and width path), by default with about its "
                       "parameter count", "hinas arch random --like runs/den50 -o random.json")
    rand.add_argument("--like", required=True, metavar="GENOTYPE_OR_RUNDIR",
                      help="genotype whose task, space and parameter count to match")
    rand.add_argument("-o", "--output", required=True, metavar="OUT.json")
    rand.add_argument("--seed", type=int, default=0)
    rand.add_argument("--tolerance", type=float, default=0.15,
                      help="parameter window, a fraction of the target")
    rand.add_argument("--any-size", action="store_true", help="no parameter window")
    rand.add_argument("--tries", type=int, default=2000, help="draws before giving up")
    rand.add_argument("--width-multiplier", type=float,
                      help="node-width multiplier the parameters are counted at (default: as "
                           "`arch show`)")
    rand.set_defaults(func=_arch_random)
    sel = add_command(arch_sub, "select", "choose a genotype again from a finished search's "
                      "supernet, by another selection signal",
                      "hinas arch select runs/den50 --select perturb --width oneshot -o g.json")
    sel.add_argument("run", metavar="RUNDIR", help="a HiNAS search run folder")
    sel.add_argument("-o", "--output", required=True, metavar="OUT.json")
    sel.add_argument("--select", choices=SELECTIONS, help="how the cells are chosen (default: the "
                     "run's search.select)")
    sel.add_argument("--width", choices=WIDTH_SELECTIONS, help="how the width path is chosen "
                     "(default: the run's search.width)")
    sel.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a search setting, e.g. search.samples=50")
    sel.add_argument("--quiet", action="store_true", help="no progress bar")
    sel.set_defaults(func=_arch_select)

    srch = add_command(sub, "search", "search an architecture on a folder of images",
                       "hinas search --task denoise --sigma 50 --data BSDS500/ --out runs/den50")
    add_config_args(srch)
    srch.add_argument("--data", metavar="DIR", nargs="+",
                      help="folder(s) of training images (recursive; --resume: the run's)")
    add_lq_arg(srch, "training")
    srch.add_argument("--out", metavar="RUNDIR", required=True, help="run folder")
    srch.add_argument("--strategy", choices=("hinas", "random"),
                      help="hinas (default) or random search with weight sharing (RSWS)")
    srch.add_argument("--samples", type=int,
                      help="architectures scored by random search (default: the preset's)")
    srch.add_argument("--resume", action="store_true", help="continue an interrupted search")
    srch.add_argument("--quiet", action="store_true", help="no progress bar")
    srch.set_defaults(func=_search)

    trn = add_command(sub, "train", "train a searched architecture on a folder of images",
                      "hinas train --genotype runs/den50/genotype.json --data BSDS500/ "
                      "--out runs/den50-train")
    add_config_args(trn, "the genotype's")
    trn.add_argument("--genotype", metavar="G.json", help="genotype.json written by `hinas search`")
    trn.add_argument("--arch", default="hinas",
                     help="architecture to train: hinas (default), hinas-w40, hinas-wm (from "
                          "--genotype), dncnn (denoise), fsrcnn (sr)")
    trn.add_argument("--arch-option", dest="arch_options", action="append", default=[],
                     metavar="KEY=VALUE", help="architecture build option, e.g. depth=10 (dncnn)")
    trn.add_argument("--data", metavar="DIR", nargs="+",
                     help="folder(s) of training images (recursive; --resume: the run's)")
    add_lq_arg(trn, "training")
    trn.add_argument("--out", metavar="RUNDIR", required=True, help="run folder")
    trn.add_argument("--iters", type=int, help="training iterations (default: the preset's)")
    trn.add_argument("--budget", metavar="TIME",
                     help="wall-clock budget such as 90s, 45m or 2h: the iteration count is set "
                          "from the throughput measured on the first steps (and recorded)")
    trn.add_argument("--init-from", metavar="RUNDIR",
                     help="start from the weights of a trained model (pretrained:NAME for a "
                          "shipped one) where names and shapes match, e.g. x2 from x4")
    trn.add_argument("--resume", action="store_true", help="continue an interrupted run")
    trn.add_argument("--quiet", action="store_true", help="no progress bar")
    trn.set_defaults(func=_train)

    evl = add_command(sub, "eval", "score a trained model or a classical method on test images",
                      "hinas eval --model runs/den50-train --data Set12/ --sigma 50 --json r.json")
    evl.add_argument("--model", metavar="RUNDIR", help="trained model folder (`hinas train`)")
    evl.add_argument("--pretrained", metavar="NAME",
                     help="a model shipped with hinas (see `hinas models`)")
    evl.add_argument("--method", metavar="NAME",
                     help="classical method instead of a model: bicubic (sr), noisy (denoise, "
                          "camera), bm3d (denoise, camera), jpeg (jpeg), identity (paired)")
    evl.add_argument("--data", metavar="DIR", nargs="+", required=True,
                     help="folder(s) of clean test images (recursive)")
    add_lq_arg(evl, "test")
    add_task_args(evl, "the model's", evaluating=True)
    evl.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    evl.add_argument("--save-images", metavar="DIR", help="write the restored images (PNG)")
    add_inference_args(evl)
    evl.add_argument("--seed", type=int, default=0, help="seed of the per-image test noise")
    evl.add_argument("--quiet", action="store_true", help="no progress bar")
    evl.set_defaults(func=_eval)

    rst = add_command(sub, "restore", "restore images with a trained model",
                      "hinas restore --model runs/den50-train noisy/*.png -o restored/")
    rst.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    rst.add_argument("--model", metavar="RUNDIR",
                     help="trained model folder (onnxruntime backend: also an exported .onnx)")
    rst.add_argument("--pretrained", metavar="NAME",
                     help="a model shipped with hinas instead (see `hinas models`)")
    rst.add_argument("-o", "--out", metavar="OUTDIR", required=True, help="output folder")
    add_inference_args(rst)
    rst.add_argument("--convert", action="store_true",
                     help="convert images whose channels differ from the model's (601 luma)")
    rst.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                     help="run the model with PyTorch (default) or ONNX Runtime (onnx extra)")
    rst.add_argument("--quiet", action="store_true", help="no progress bar")
    rst.set_defaults(func=_restore)

    mdl = add_command(sub, "models", "list the pretrained models shipped with hinas",
                      "hinas models")
    mdl.set_defaults(func=_models)

    exp = add_command(sub, "export", "export a trained model to ONNX (onnx extra)",
                      "hinas export --model runs/den50-train -o den50.onnx")
    exp.add_argument("--model", metavar="RUNDIR", required=True, help="trained model folder")
    exp.add_argument("-o", "--out", metavar="FILE.onnx", required=True, help="ONNX file to write")
    exp.add_argument("--opset", type=int, default=OPSET, help="ONNX opset")
    exp.set_defaults(func=_export)

    dem = add_command(sub, "demo", "search, train and evaluate on built-in photographs",
                      "hinas demo --out hinas-demo")
    dem.add_argument("--out", default="hinas-demo", help="output folder")
    dem.add_argument("--task", help="denoise (default: gray, sigma 25) or jpeg (gray, blind "
                                    "quality 10-40, compared with the JPEG itself)")
    dem.add_argument("--tiny", action="store_true",
                     help="a seconds-long smoke run (also HINAS_DEMO_TINY=1)")
    dem.add_argument("--quiet", action="store_true", help="no progress bars")
    dem.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `hinas` console script."""
    args = build_parser().parse_args(argv)
    try:
        with peer_failures():
            args.func(args)
    except HinasError as err:
        if is_main_process():  # under torchrun every rank has the error; rank 0 says it
            print(f"hinas: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hinas: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
