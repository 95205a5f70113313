"""How noisy is the architecture gradient? Signal-to-noise ratio of ∂L/∂α and ∂L/∂β of a search's
supernet, and the number of architecture steps a decision needs.

Loads a search run folder's checkpoint (`best.pt`, else `last.pt`) and its config
(`hinas.jobs.search.open_search`), draws `--batches` Train-A batches exactly as the search does,
and records the gradient of the search loss with respect to α and β on each (weights frozen, as
in an A-step: `hinas.jobs.search.arch_gradients`). Per entry, SNR = |mean| / std
over batches. With per-step SNR s, the summed gradient of n steps is s·√n standard deviations
from zero, so a choice that should be made at z = 3 needs about 9 / s² A-steps; the JSON reports
that for the median entry and for the strongest decile. Averaging `--group` batches per estimate
shows what a batch that many times larger would give.

Example: python benchmarks/arch_gradient_snr.py --run RUNDIR --data ../shared/data/BSDS500
--batches 64 --json benchmarks/results/arch_gradient_snr.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if not __package__:  # run as a file, `python benchmarks/NAME.py`: the package made importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, metavar="RUNDIR", help="a search run folder")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR",
                   help="the search's training folders")
    p.add_argument("--batches", type=int, default=64, help="A-batches to sample")
    p.add_argument("--group", type=int, default=4, help="batches averaged per larger batch")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", metavar="PATH", help="also write the JSON here")
    return p.parse_args(argv)


def search_a_steps(run: Path) -> int:
    """The A-steps the search of `run` makes in all, as its epoch records state."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return next(r["a_steps_total"] for r in reversed(records) if "a_steps_total" in r)


def main(argv: list[str] | None = None) -> dict:
    """Measure and print the JSON."""
    args = parse_args(argv)
    import torch

    from benchmarks.harness import command_line, device, emit, load_1min
    from benchmarks.stats import snr_summary
    from hinas.jobs.search import arch_gradients

    torch.set_num_threads(args.threads)
    run = Path(args.run)
    # the search's images are named here: the folders its config records are another machine's
    cfg, alpha, beta = arch_gradients(run, args.data, args.batches)
    a_steps = search_a_steps(run)
    usable = len(alpha) // args.group * args.group
    summary = {
        "benchmark": "arch_gradient_snr", "run": run.name,
        "checkpoint": "best.pt" if (run / "best.pt").exists() else "last.pt",
        "batches": len(alpha), "batch_size": cfg.search.batch_size, "crop": cfg.search.crop,
        "search_a_steps": a_steps,
        "alpha": snr_summary(alpha, a_steps), "beta": snr_summary(beta, a_steps),
        f"alpha_batch_x{args.group}": snr_summary(
            alpha[:usable].reshape(-1, args.group, alpha.shape[1]).mean(axis=1), a_steps),
        "device": device("cpu"), "load_1min": load_1min(),
        "command": command_line(__file__, argv)}
    emit(summary, args.json)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
