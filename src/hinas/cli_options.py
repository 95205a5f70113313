"""The command-line vocabulary of `hinas`: every option of every command declared once, by key,
with its choices and help read from the registries (tasks and their levels, architectures,
classical methods, selection signals, strategies, backends), and the help layout of the parsers;
:mod:`hinas.cli` names the options each command takes."""

from __future__ import annotations

import argparse

from hinas.config import AMP_MODES, DEFAULT_PRESET, PRESETS, SearchConfig
from hinas.tasks import command_line_options, noise_level_options, noise_map_option


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


def listing(names: list[str], say) -> str:
    """`a (x), b (y)`: registered `names`, each with what `say(name)` tells of it."""
    return ", ".join(f"{name} ({say(name)})" for name in names)


def options() -> dict[str, list[tuple[list[str], dict]]]:
    """Every option of every command, declared once, by key: its flags and `add_argument`
    keywords (the task options: one per level of the registered tasks)."""
    from hinas.jobs.restore import BACKENDS
    from hinas.models.architectures import MODELS
    from hinas.models.classical import METHODS
    from hinas.models.export import OPSET
    from hinas.runtime.selection import SIGNALS, WIDTHS
    from hinas.runtime.strategies import STRATEGIES

    files = "matched by file-name stem (recursive; --task paired, or --task sr --scale S for " \
            "low-resolution files"
    test_files = "matched by file-name stem (recursive; for any model or task they replace the " \
                 "synthesised degradation; an SR task's are low-resolution files"
    archs = listing(MODELS.names(), lambda n: "from --genotype" if MODELS.get(n).needs_genotype
                    else "/".join(MODELS.get(n).tasks or ["any"]))
    found = {key: [(flags.split(), kw)] for key, flags, kw in [
        ("genotype file", "genotype", dict(metavar="GENOTYPE_OR_RUNDIR",
                                           help="genotype.json, or a search or training run")),
        ("plot", "--plot", dict(metavar="OUT", help="draw the architecture to OUT.png or .svg")),
        ("width multiplier", "--width-multiplier", dict(type=float, help="node-width multiplier "
         f"(default: the run folder's, else the {DEFAULT_PRESET} preset's train one)")),
        ("output", "-o --output", dict(required=True, metavar="OUT.json")),
        ("like", "--like", dict(required=True, metavar="GENOTYPE_OR_RUNDIR",
                                help="genotype whose task, space and parameter count to match")),
        ("draw seed", "--seed", dict(type=int, default=0)),
        ("tolerance", "--tolerance", dict(type=float, default=0.15,
                                          help="parameter window, a fraction of the target")),
        ("any size", "--any-size", dict(action="store_true", help="no parameter window")),
        ("tries", "--tries", dict(type=int, default=2000, help="draws before giving up")),
        ("search run", "run", dict(metavar="RUNDIR", help="a HiNAS search run folder")),
        ("select", "--select", dict(choices=SIGNALS.names(), help="how the cells are chosen: "
         f"{listing(SIGNALS.names(), lambda n: SIGNALS.get(n).summary)} (default: the run's)")),
        ("width", "--width", dict(choices=WIDTHS.names(), help="how the width path is chosen: "
         f"{listing(WIDTHS.names(), lambda n: WIDTHS.get(n).summary)} (default: the run's)")),
        ("set", "--set", dict(dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                              help="override a config value, e.g. search.epochs=5")),
        ("preset", "--preset", dict(help=f"one of {', '.join(PRESETS)} (default: "
                                    f"{DEFAULT_PRESET})")),
        ("config", "--config", dict(metavar="FILE.yaml", help="YAML config applied on the preset")),
        ("seed", "--seed", dict(type=int, help="random seed (default: 0)")),
        ("device", "--device", dict(help="cpu or cuda[:N] (default: cpu)")),
        ("amp", "--amp", dict(choices=AMP_MODES, help="automatic mixed precision of the job (auto:"
         " bf16 where the device runs it natively; on a GPU without it fp16, on such a CPU fp32; "
         "default: the preset's)")),
        ("channels last", "--channels-last", dict(action=argparse.BooleanOptionalAction, help=
         "channels-last (NHWC) memory format for network and batches (default: the preset's)")),
        ("workers", "--workers", dict(type=int, help="data-loading processes (default: 0)")),
        ("tensorboard", "--tensorboard", dict(action="store_true", default=None, help="also write"
         " TensorBoard scalars to RUNDIR/tensorboard (tensorboard extra)")),
        ("data", "--data", dict(metavar="DIR", nargs="+", help="folder(s) of training images "
                                "(recursive; --resume: the run's)")),
        ("lq", "--lq", dict(metavar="DIR", nargs="+", help="folder(s) of degraded inputs of the "
                            f"training images, {files}; --resume: the run's)")),
        ("out", "--out", dict(metavar="RUNDIR", required=True, help="run folder")),
        ("resume", "--resume", dict(action="store_true", help="continue an interrupted run")),
        ("quiet", "--quiet", dict(action="store_true", help="no progress bar")),
        ("strategy", "--strategy", dict(choices=STRATEGIES.names(), help="how the architecture "
         f"is searched: {listing(STRATEGIES.names(), lambda n: STRATEGIES.get(n).summary)} "
         f"(default: {SearchConfig.strategy})")),
        ("samples", "--samples", dict(type=int, help="architectures scored by the random "
                                      "and params searches (default: the preset's)")),
        ("max macs", "--max-macs", dict(type=float, metavar="G", help="search under a cost "
         "budget: at most G GMACs for the derived network (at the preset's training width) on "
         "the task's cost-size input, a 481x321 photograph for denoising")),
        ("max latency", "--max-latency", dict(type=float, metavar="MS", help="search under a "
         "latency budget: at most MS ms for the folded derived network on that input, one CPU "
         "thread of this machine (a shipped latency table of this machine, else measured)")),
        ("genotype", "--genotype", dict(metavar="G.json", help="written by `hinas search`")),
        ("arch", "--arch", dict(default="hinas", metavar="NAME", help=f"to train: {archs}")),
        ("arch option", "--arch-option", dict(dest="arch_options", action="append", default=[],
         metavar="KEY=VALUE", help="architecture build option, e.g. depth=10 (dncnn)")),
        ("iters", "--iters", dict(type=int, help="training iterations (default: the preset's)")),
        ("budget", "--budget", dict(metavar="TIME", help="wall-clock budget such as 90s, 45m or "
         "2h: the iteration count is set from the throughput of the first steps (and recorded); "
         "with train.schedule=constant, the length of this piece of the run")),
        ("init from", "--init-from", dict(metavar="RUNDIR", help="start from the weights of a "
         "trained model (pretrained:NAME: a shipped one) where names and shapes match")),
        ("model", "--model", dict(metavar="RUNDIR", help="trained model folder (`hinas train`; "
                                  "restore with onnxruntime: also an exported .onnx)")),
        ("pretrained", "--pretrained", dict(metavar="NAME", help="a model shipped with hinas "
                                            "(see `hinas models`)")),
        ("method", "--method", dict(metavar="NAME", help="classical method instead of a model: "
         + listing(METHODS.names(), lambda n: ", ".join(METHODS.get(n).tasks)))),
        ("test data", "--data", dict(metavar="DIR", nargs="+", required=True,
                                     help="folder(s) of clean test images (recursive)")),
        ("test lq", "--lq", dict(metavar="DIR", nargs="+", help="folder(s) of degraded inputs of "
                                 f"the test images, {test_files})")),
        ("tile", "--tile", dict(type=int, default=0, help="tile size in pixels (0 = whole image)")),
        ("overlap", "--overlap", dict(type=int, default=32, help="tile overlap in pixels")),
        ("inference device", "--device", dict(default="cpu", help="cpu or cuda[:N]")),
        ("json", "--json", dict(metavar="PATH", help="also write the results as JSON")),
        ("save images", "--save-images", dict(metavar="DIR", help="write the restored images")),
        ("noise seed", "--seed", dict(type=int, default=0, help="seed of the per-image noise")),
        ("inputs", "inputs", dict(nargs="+", metavar="INPUT", help="image files or folders")),
        ("out folder", "-o --out", dict(metavar="OUTDIR", required=True, help="output folder")),
        ("convert", "--convert", dict(action="store_true", help="convert images whose channels "
                                      "differ from the model's (601 luma)")),
        ("backend", "--backend", dict(choices=BACKENDS, default=BACKENDS[0], help="run the "
                                      "model with PyTorch or ONNX Runtime (onnx extra)")),
        ("export model", "--model", dict(metavar="RUNDIR", required=True, help="model folder")),
        ("onnx", "-o --out", dict(metavar="FILE.onnx", required=True, help="ONNX file to write")),
        ("opset", "--opset", dict(type=int, default=OPSET, help="ONNX opset")),
        ("demo out", "--out", dict(default="hinas-demo", help="output folder")),
        ("demo task", "--task", dict(help="denoise (default: gray, sigma 25) or jpeg (gray, "
                                     "blind quality 10-40, compared with the JPEG itself)")),
        ("tiny", "--tiny", dict(action="store_true", help="a seconds-long smoke run (also "
                                "HINAS_DEMO_TINY=1)")),
    ]}
    for key, inherited, evaluating in (("task", "", False), ("genotype's task", "the genotype's",
                                       False), ("model's task", "the model's", True)):
        found[key] = [([flag], kw) for flag, kw in command_line_options(inherited, evaluating)]
        if not evaluating:
            found[key].append(([noise_map_option()[0]], noise_map_option()[1]))
    found["noise level"] = [([flag], kw) for flag, kw in noise_level_options()]
    return found
