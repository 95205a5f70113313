"""Command-line interface: parses arguments and calls library functions; errors become one line."""

from __future__ import annotations

import argparse
import sys

from hinas import __version__
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
