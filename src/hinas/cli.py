"""Command-line interface: parses arguments and calls library functions; errors become one line."""

from __future__ import annotations

import argparse
import sys

from pathlib import Path

from hinas import __version__
from hinas.config import PRESETS, TASKS, Config, from_dict, load_yaml, resolve
from hinas.errors import HinasError


def _arch_show(args: argparse.Namespace) -> None:
    from hinas.arch import describe_genotype
    from hinas.genotype import Genotype

    genotype = Genotype.load(args.genotype)
    print(describe_genotype(genotype, args.width_multiplier))
    if args.plot:
        from hinas.viz import plot_genotype

        plot_genotype(genotype, args.plot, args.width_multiplier)
        print(f"plot written to {args.plot}")


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """Options shared by commands that resolve a Config (task, preset, YAML, overrides, seed)."""
    parser.add_argument("--task", choices=TASKS, default="denoise", help="restoration task")
    parser.add_argument("--sigma", type=float, nargs="+",
                        help="noise level(s) on the 0-255 scale (denoise; several = sampled)")
    parser.add_argument("--scale", type=int, choices=(2, 3, 4), help="SR factor (sr)")
    parser.add_argument("--channels", type=int, choices=(1, 3),
                        help="1 = gray, 3 = RGB (default: preset's)")
    parser.add_argument("--preset", default="cpu", help=f"one of {', '.join(PRESETS)}")
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML config applied on the preset")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config value, e.g. search.epochs=5")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument("--device", help="cpu or cuda[:N]")


def config_from_args(args: argparse.Namespace, **sections: dict) -> Config:
    """Resolve the Config described by the options of `add_config_args`; `sections` adds
    command-specific values (e.g. `search={"strategy": "random"}`), overridable by --set."""
    task = {k: v for k, v in (("sigma", args.sigma), ("scale", args.scale),
                              ("channels", args.channels)) if v is not None}
    sections = {k: {n: v for n, v in d.items() if v is not None} for k, d in sections.items()}
    return resolve(args.task, args.preset, args.config, args.overrides, task=task or None,
                   seed=args.seed, device=args.device, **sections)


def _search(args: argparse.Namespace) -> None:
    from hinas.search import search

    if args.resume and args.out and (Path(args.out) / "config.yaml").exists():
        cfg = from_dict(load_yaml(Path(args.out) / "config.yaml"))
    else:
        cfg = config_from_args(args, search={"strategy": args.strategy,
                                             "samples": args.samples})
    data = args.data or cfg.data.path
    if not data:
        raise HinasError("no training images: give --data DIR")
    genotype = search(cfg, data, args.out, resume=args.resume, quiet=args.quiet)
    print(f"genotype written to {Path(args.out) / 'genotype.json'} (path {genotype.path})")


def build_parser() -> argparse.ArgumentParser:
    """The `hinas` argument parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="hinas",
        description="Memory-efficient hierarchical NAS for image restoration "
                    "(search, train, evaluate, restore).")
    parser.add_argument("--version", action="version", version=f"hinas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    arch = sub.add_parser("arch", help="inspect architectures")
    arch_sub = arch.add_subparsers(dest="arch_command", required=True)
    show = arch_sub.add_parser("show", help="print (and draw) a genotype")
    show.add_argument("genotype", help="genotype.json written by `hinas search`")
    show.add_argument("--plot", metavar="OUT", help="draw the architecture to OUT.png or OUT.svg")
    show.add_argument("--width-multiplier", type=float, default=1.0,
                      help="node-width multiplier of the derived network (default 1)")
    show.set_defaults(func=_arch_show)

    srch = sub.add_parser("search", help="search an architecture on a folder of images")
    add_config_args(srch)
    srch.add_argument("--data", metavar="DIR", help="folder of training images (recursive)")
    srch.add_argument("--out", metavar="RUNDIR", required=True, help="run folder")
    srch.add_argument("--strategy", choices=("hinas", "random"),
                      help="hinas (default) or random search with weight sharing (RSWS)")
    srch.add_argument("--samples", type=int, help="architectures scored by random search")
    srch.add_argument("--resume", action="store_true", help="continue an interrupted search")
    srch.add_argument("--quiet", action="store_true", help="no progress bar")
    srch.set_defaults(func=_search)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `hinas` console script."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except HinasError as err:
        print(f"hinas: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hinas: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
