"""Which selection signal ranks architectures? Every signal's score of the ground-truth genotypes
against their stand-alone PSNR.

The ground truth is a `search_vs_random.py` report: random genotypes of one space, each trained
alone under one recipe (some with several training seeds) and scored. For every trained supernet
of that space (HiNAS searches `--hinas`, RSWS searches `--rsws`, one per search seed), each
genotype gets a score from every signal (docs/selection.md):

- `alpha`: log-probability under the searched α/β (HiNAS runs);
- `oneshot_hinas` / `oneshot_rsws`: validation PSNR with the supernet's shared weights at the
  genotype's one-hot α/β, BatchNorm re-estimated per genotype;
- `perturb`: summed perturbation importance of the genotype's operations and width moves
  (HiNAS runs);
- `params`, `macs`, `latency`: the parameter count, the MACs and the measured latency of the
  trained network (from the ground truth's report), zero-cost floors; within a cost budget the
  last two say whether the costlier networks of the budget are the better ones.

Reported per signal and supernet seed: Kendall τ with the ground truth and its bootstrap 95 %
CI (resampling genotypes); between supernet seeds: τ of the two seeds' scores (agreement); and
per HiNAS run the width path that each width selection of `search.width` chooses (Viterbi on β
under the run's `search.path_prior`, one-shot path scoring), beside the ground truth's mean PSNR
per path.

Example:
python benchmarks/selection_signals.py --ground-truth benchmarks/results/search_vs_random.json
  --genotypes benchmarks/results/search_vs_random/genotypes --hinas runs/search/hinas_s0
  runs/search/hinas_s1 --rsws runs/search/rsws_s0 --json benchmarks/results/selection_signals.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

REPORTED = {"params": "params", "macs": "macs", "latency": "latency_s"}
"""The signals read from the ground truth's report (their field there), not from a supernet."""

if not __package__:  # run as a file, `python benchmarks/NAME.py`: the package made importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ground-truth", required=True, metavar="JSON",
                   help="search_vs_random.py report with the stand-alone scores")
    p.add_argument("--genotypes", required=True, metavar="DIR",
                   help="folder of <name>.json genotypes (search_vs_random --export of a run "
                        "without a budget) or of <name>/genotype.json (its --out/genotypes)")
    p.add_argument("--key", default="val_psnr",
                   help="ground-truth score: val_psnr (held-back validation) or psnr (test set)")
    p.add_argument("--hinas", nargs="*", default=[], metavar="RUN", help="HiNAS search runs")
    p.add_argument("--rsws", nargs="*", default=[], metavar="RUN", help="RSWS search runs")
    p.add_argument("--signals", default="alpha,oneshot,perturb,params,macs,latency",
                   help="signals to compute (comma-separated)")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for τ's CI")
    p.add_argument("--signals-only", action="store_true",
                   help="compute (and keep in each RUN/signals.json) every genotype's signals, "
                        "rank nothing: the ground truth may still be training")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--json", metavar="PATH", help="also write the JSON here")
    return p.parse_args(argv)


def cached_signals(run: str, kind: str, genotypes: dict, wanted: set[str]) -> tuple[dict, dict]:
    """`run_signals`, kept in `RUN/signals.json` and reused for the genotypes and signals it
    already holds (the supernet of a finished search does not change)."""
    cache = Path(run) / "signals.json"
    if cache.exists():
        held = json.loads(cache.read_text())
        if set(held["wanted"]) >= wanted and all(set(genotypes) <= set(v)
                                                  for v in held["signals"].values()):
            return held["signals"], held["info"]
    signals, info = run_signals(run, kind, genotypes, wanted)
    cache.write_text(json.dumps({"wanted": sorted(wanted), "signals": signals, "info": info}))
    return signals, info


def run_signals(run: str, kind: str, genotypes: dict, wanted: set[str]) -> tuple[dict, dict]:
    """Scores of every genotype under each registered signal (`hinas.runtime.selection.SIGNALS`)
    one supernet gives (the signals that read the searched α/β on HiNAS runs only; the others
    named after the run's kind, e.g. `oneshot_rsws`), and the timings of that supernet and, on
    HiNAS runs, the path each registered width selection (`WIDTHS`) chooses."""
    from hinas.jobs.search import open_search
    from hinas.runtime.selection import SIGNALS, WIDTHS

    cfg, _, scorer = open_search(run)
    signals: dict[str, dict[str, float]] = {}
    info: dict = {"run": Path(run).name, "seed": cfg.seed, "seconds": {}}
    for name in SIGNALS.names():
        signal = SIGNALS.get(name)
        if name not in wanted or (signal.searched and kind != "hinas"):
            continue
        start = time.perf_counter()
        measured = signal.measure(scorer, None)
        key = name if signal.searched else f"{name}_{kind}"
        signals[key] = {n: signal.score(g, measured, scorer) for n, g in genotypes.items()}
        info["seconds"][name] = round(time.perf_counter() - start, 1)
        info.update(signal.describe(measured))
    if kind == "hinas":
        start = time.perf_counter()
        for name in WIDTHS.names():
            path, found = WIDTHS.get(name).choose(scorer, None)
            info.update({f"{name}_path": path, **found})
        info["seconds"]["paths"] = round(time.perf_counter() - start, 1)
    return signals, info


def path_truth(genotypes: dict, truth: dict[str, float]) -> list[dict]:
    """Mean ground-truth score of the ranked genotypes on each width path, best first."""
    import numpy as np

    by_path: dict[tuple, list[float]] = {}
    for name, value in truth.items():
        by_path.setdefault(tuple(genotypes[name].path), []).append(value)
    rows = [{"path": list(p), "n": len(v), "mean": round(float(np.mean(v)), 4)}
            for p, v in by_path.items()]
    return sorted(rows, key=lambda r: -r["mean"])


def markdown(summary: dict) -> str:
    """A `selection_signals.py` summary as markdown: τ per signal and supernet seed, the seeds'
    agreement, and the width path each decoding picks."""
    c = summary["config"]
    lines = [f"{len(summary['ground_truth'])} genotypes ranked by their stand-alone {c['key']} "
             f"(mean over training seeds); supernets {', '.join(c['hinas'] + c['rsws'])}; "
             f"on {summary['device']}", "",
             "| signal | Kendall τ per supernet seed (95 % CI) | mean τ | τ between seeds |",
             "|---|---|---:|---|"]
    for name, entry in summary["signals"].items():
        per_seed = "; ".join(f"{t['tau']:+.2f} ({t['ci95'][0]:+.2f} to {t['ci95'][1]:+.2f})"
                             for t in entry["per_seed"])
        agree = "; ".join(f"{t['tau']:+.2f}" for t in entry.get("seed_agreement_tau", [])) or "–"
        lines.append(f"| {name} | {per_seed} | {entry['mean_tau']:+.2f} | {agree} |")
    for run in summary["runs"]:
        if run["kind"] == "hinas":
            lines.append(f"\n{run['run']}: Viterbi on β picks {run['viterbi_path']}, one-shot path "
                         f"scoring picks {run['oneshot_path']} (path PSNR "
                         f"{run['path_psnr'][0]['psnr']:.2f} to {run['path_psnr'][-1]['psnr']:.2f}"
                         f" dB); perturbation took {run['seconds'].get('perturb', 0):.0f} s.")
    best = summary["path_truth"][0] if summary["path_truth"] else None
    if best:
        lines.append(f"\nGround truth by width path: best {best['path']} ({best['mean']:.3f} dB, "
                     f"{best['n']} genotype(s)) of {len(summary['path_truth'])} paths present.")
    lines.append(f"\nBest-ranking signal: {summary['best_signal']}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    """Score every genotype under every signal and rank the signals against the ground truth."""
    args = parse_args(argv)
    import torch

    from benchmarks.harness import command_line, device, emit
    from benchmarks.stats import kendall, standalone_scores
    from hinas.errors import HinasError
    from hinas.space.genotype import Genotype

    torch.set_num_threads(args.threads)
    report = json.loads(Path(args.ground_truth).read_text()) if Path(
        args.ground_truth).exists() else {"scores": {}}
    truth = standalone_scores(report, args.key)
    if len(truth) < 3 and not args.signals_only:
        raise SystemExit(f"selection_signals: {args.ground_truth}: {len(truth)} random genotype(s) "
                         f"with a {args.key}; need at least 3")
    wanted = set(args.signals.split(","))
    try:
        folder = Path(args.genotypes)
        genotypes = {p.stem: Genotype.load(p) for p in sorted(folder.glob("random_*.json"))} | {
            p.parent.name: Genotype.load(p) for p in sorted(folder.glob("random_*/genotype.json"))}
        missing = sorted(set(truth) - set(genotypes))
        if missing:
            raise HinasError(f"{args.genotypes}: no genotype file for {', '.join(missing)}")
        per_run: dict[str, list[dict[str, float]]] = {}
        runs = []
        for kind, paths in (("hinas", args.hinas), ("rsws", args.rsws)):
            for run in paths:
                signals, info = cached_signals(run, kind, genotypes, wanted - set(REPORTED))
                runs.append({"kind": kind, **info})
                for name, values in signals.items():
                    per_run.setdefault(name, []).append(values)
    except HinasError as err:
        raise SystemExit(f"selection_signals: error: {err}") from None
    if args.signals_only:
        return {"runs": runs}
    for signal, field in REPORTED.items():
        if signal in wanted:
            per_run[signal] = [{entry["genotype"]: float(entry[field])
                                for entry in report["scores"].values()
                                if entry["genotype"] in truth and field in entry}]
    names = list(truth)
    target = [truth[n] for n in names]
    ranking = {}
    for signal, seeds in per_run.items():
        entry = {"per_seed": [kendall([s[n] for n in names], target, args.bootstrap, k)
                              for k, s in enumerate(seeds)],
                 "scores": [{n: round(s[n], 5) for n in names} for s in seeds]}
        if len(seeds) > 1:
            entry["seed_agreement_tau"] = [
                kendall([a[n] for n in names], [b[n] for n in names], args.bootstrap)
                for a, b in itertools.combinations(seeds, 2)]
        entry["mean_tau"] = round(sum(t["tau"] for t in entry["per_seed"]) / len(seeds), 4)
        ranking[signal] = entry
    best = max(ranking, key=lambda s: ranking[s]["mean_tau"]) if ranking else None
    summary = {"benchmark": "selection_signals",
               "config": {"ground_truth": Path(args.ground_truth).name, "key": args.key,
                          "hinas": [Path(r).name for r in args.hinas],
                          "rsws": [Path(r).name for r in args.rsws],
                          "signals": sorted(wanted), "bootstrap": args.bootstrap,
                          "threads": args.threads},
               "device": device("cpu"), "ground_truth": truth,
               "path_truth": path_truth(genotypes, truth), "runs": runs, "signals": ranking,
               "best_signal": best,
               "command": command_line(__file__, argv)}
    emit(summary, args.json)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
