"""Does the search beat random architectures of the same cost, across cost budgets? One
`search_vs_random.py --budget-macs G` report per budget (its HiNAS, params and RSWS searches under
the budget, its random genotypes drawn within the tolerance of it, all trained under one recipe),
and optionally the `selection_signals.py` report of each budget, combined:

- per budget, on the held-back photographs (`--key val_psnr`, the default) and on the test set:
  every searched network's percentile among the random ones of its budget, the one-sided
  Mann–Whitney p of HiNAS (and of the params search and RSWS) above them, the mean gain with its
  bootstrap 95 % CI, the training-seed noise (the standard deviation of one training) and
  whether the gain is larger than twice it;
- the front: the random architectures' PSNR–latency Pareto front over every budget, and whether
  each searched network lies on or above it (its PSNR at least that of every random network of
  no greater measured latency);
- with `--signals`: Kendall τ of every selection signal within each budget, and the signal with
  the best mean τ;
- the targets, for HiNAS and for the params search (above random at p < 0.05 with a gain over
  twice the noise at two budgets or more; every one of its networks on or above the front), and
  one plot of PSNR against measured latency with the searches and random (`--plot`).

Example:
python benchmarks/budget_search.py --reports benchmarks/results/search_vs_random_4.4g.json
  benchmarks/results/search_vs_random_5.3g.json benchmarks/results/search_vs_random_6.2g.json
  --json benchmarks/results/budget_search.json --plot benchmarks/results/budget_search.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if not __package__:  # run as a file, `python benchmarks/NAME.py`: the package made importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KINDS = {"hinas_s": ("HiNAS", "tab:red"), "rsws_s": ("RSWS", "tab:blue"),
         "params_s": ("params", "tab:green"),
         "random_": ("random", "tab:gray")}
"""The kinds of network of a report (by name prefix), with their label and colour."""
SEARCHED = ("hinas_s", "params_s", "rsws_s")
"""The kinds that search (HiNAS, the zero-cost params search, RSWS)."""
WINS_NEEDED = 2
"""Budgets at which the search must beat random (of three)."""
ALPHA = 0.05
"""Significance level of the one-sided test."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reports", nargs="+", required=True, metavar="JSON",
                   help="search_vs_random.py reports, one per budget (--budget-macs)")
    p.add_argument("--signals", nargs="*", default=[], metavar="JSON",
                   help="selection_signals.py reports, one per budget, in the order of --reports")
    p.add_argument("--key", default="val_psnr",
                   help="the score that decides: val_psnr (held-back photographs) or psnr (test)")
    p.add_argument("--json", metavar="PATH", help="also write the JSON here")
    p.add_argument("--plot", metavar="PNG", help="PSNR against measured latency")
    args = p.parse_args(argv)
    if args.signals and len(args.signals) != len(args.reports):
        p.error("--signals needs one report per --reports entry")
    return args


def kind_of(name: str) -> str | None:
    """The kind prefix of a network's name (None for a name of no kind)."""
    return next((k for k in KINDS if name.startswith(k)), None)


def single(scores: dict, prefix: str, key: str) -> dict[str, float]:
    """Score `key` of every network of kind `prefix` trained with the first seed."""
    return {n: s[key] for n, s in scores.items()
            if n.startswith(prefix) and "_t" not in n and s.get(key) is not None}


def budget_row(report: dict, key: str) -> dict:
    """The comparison at one budget: percentiles, one-sided p, mean gain with CI, noise."""
    import numpy as np

    from benchmarks.stats import mean_gap_ci95, p_greater, spread_against_noise

    scores = report["scores"]
    rand = single(scores, "random_", key)
    noise = spread_against_noise(scores, key).get("training_seed_std_db")
    row: dict = {"budget_macs": report["config"].get("budget_macs"), "n_random": len(rand),
                 "training_seed_std_db": noise}
    for prefix in SEARCHED:
        found = single(scores, prefix, key)
        if not found or len(rand) < 2:
            continue
        label = KINDS[prefix][0].lower()
        gap = float(np.mean(list(found.values())) - np.mean(list(rand.values())))
        row[label] = {
            "percentile_among_random": {n: round(100.0 * float(np.mean(
                [r < v for r in rand.values()])), 1) for n, v in found.items()},
            "p_above_random": p_greater(list(found.values()), list(rand.values())),
            "mean_gain_db": round(gap, 4),
            "mean_gain_ci95_db": mean_gap_ci95(list(found.values()), list(rand.values())),
            "gain_over_twice_noise": bool(noise is not None and gap > 2 * noise)}
        row[label]["beats_random"] = bool(row[label]["p_above_random"] < ALPHA
                                          and row[label]["gain_over_twice_noise"])
    return row


def front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The Pareto front of (latency, PSNR) points: fastest first, each better than all faster."""
    best, kept = float("-inf"), []
    for latency, psnr in sorted(points):
        if psnr > best:
            kept.append((latency, psnr))
            best = psnr
    return kept


def against_front(reports: list[dict], key: str) -> dict:
    """The random networks' front over every budget, and each searched network's margin over it
    (its PSNR minus the best random PSNR at no greater latency; ≥ 0: on or above)."""
    rand = [(s["latency_s"], s[key]) for r in reports for n, s in r["scores"].items()
            if n.startswith("random_") and "_t" not in n and s.get(key) is not None]
    edge = front(rand)
    margins = {}
    for report in reports:
        budget = report["config"].get("budget_macs")
        for name, s in report["scores"].items():
            if kind_of(name) in SEARCHED and "_t" not in name and \
                    s.get(key) is not None:
                faster = [p for lat, p in edge if lat <= s["latency_s"]]
                margin = s[key] - max(faster) if faster else None
                margins[f"{name}@{budget:g}G"] = {
                    "latency_s": s["latency_s"], key: s[key],
                    "margin_db": None if margin is None else round(margin, 4),
                    "on_or_above": margin is None or margin >= 0}
    return {"front": [[round(lat, 4), round(p, 4)] for lat, p in edge], "searched": margins}


def signal_rows(paths: list[str], reports: list[dict]) -> dict:
    """Mean Kendall τ of every selection signal within each budget, and the best on average."""
    import numpy as np

    per_signal: dict[str, dict[str, float]] = {}
    for path, report in zip(paths, reports, strict=True):
        budget = f"{report['config'].get('budget_macs'):g}G"
        for name, entry in json.loads(Path(path).read_text())["signals"].items():
            per_signal.setdefault(name, {})[budget] = entry["mean_tau"]
    rows = {name: {"tau": taus, "mean_tau": round(float(np.mean(list(taus.values()))), 4)}
            for name, taus in per_signal.items()}
    best = max(rows, key=lambda n: rows[n]["mean_tau"]) if rows else None
    return {"signals": rows, "best_signal": best}


def targets(budgets: list[dict], edge: dict) -> list[str]:
    """The targets judged for each search (HiNAS, and the params search where the reports hold
    it): met or MISSED, with the figures."""
    lines = []
    for label in ("hinas", "params"):
        held = [b for b in budgets if label in b]
        if not held:
            continue
        wins = [b for b in held if b[label]["beats_random"]]
        lines.append(
            f"{'met' if len(wins) >= WINS_NEEDED else 'MISSED'}: the {label} search above random "
            f"at p < {ALPHA} with a gain over twice the training noise at {len(wins)} of "
            f"{len(budgets)} budgets (" + "; ".join(
                f"{b['budget_macs']:g} G: p = {b[label]['p_above_random']:.3g}, gain "
                f"{b[label]['mean_gain_db']:+.3f} dB, noise "
                + (f"{b['training_seed_std_db']:.3f}" if b['training_seed_std_db'] is not None
                   else "unmeasured") + " dB" for b in held) + ")")
        below = [n for n, m in edge["searched"].items()
                 if n.startswith(label) and not m["on_or_above"]]
        lines.append(f"{'met' if not below else 'MISSED'}: the {label} search's networks on or "
                     f"above the random architectures' PSNR–latency front"
                     + (f" ({', '.join(below)} below it)" if below else ""))
    return lines


def plot(reports: list[dict], key: str, edge: dict, path: Path) -> None:
    """PSNR against measured latency: one colour per kind, one marker per budget, the random
    front as a step line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = "osD^v<>"
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    for k, report in enumerate(reports):
        budget = report["config"].get("budget_macs")
        for prefix, (label, color) in KINDS.items():
            pts = [(1000 * s["latency_s"], s[key]) for n, s in report["scores"].items()
                   if n.startswith(prefix) and "_t" not in n and s.get(key) is not None]
            if pts:
                ax.scatter(*zip(*pts, strict=True), color=color, marker=markers[k % 7],
                           label=f"{label}, {budget:g} G MACs", alpha=0.8)
    if edge["front"]:
        lat, psnr = zip(*edge["front"], strict=True)
        ax.step([1000 * v for v in lat], psnr, where="post", color="tab:gray", lw=1,
                label="random front")
    ax.set_xlabel("measured latency, 481×321, one thread (ms)")
    ax.set_ylabel(f"{key} (dB)")
    ax.legend(fontsize=7, ncol=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    """Combine the budgets' reports, judge the targets, write the JSON and the plot."""
    args = parse_args(argv)
    from benchmarks.harness import command_line, emit

    reports = [json.loads(Path(p).read_text()) for p in args.reports]
    missing = [p for p, r in zip(args.reports, reports, strict=True)
               if not r["config"].get("budget_macs")]
    if missing:
        raise SystemExit(f"budget_search: {missing[0]}: not a report of a --budget-macs run")
    budgets = [budget_row(r, args.key) for r in reports]
    edge = against_front(reports, args.key)
    summary = {"benchmark": "budget_search", "key": args.key,
               "reports": [Path(p).name for p in args.reports],
               "device": reports[0].get("device"), "budgets": budgets,
               "test_set": [budget_row(r, "psnr") for r in reports], "front": edge,
               **(signal_rows(args.signals, reports) if args.signals else {}),
               "targets": targets(budgets, edge), "command": command_line(__file__, argv)}
    if args.plot:
        plot(reports, args.key, edge, Path(args.plot))
    emit(summary, args.json)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
