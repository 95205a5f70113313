"""Does the search beat random architectures? HiNAS against random genotypes and RSWS, all trained
under one identical recipe and scored on held-apart test images.

Units of work, each in its own run folder under `--out` (a unit already finished is reused, an
interrupted one resumes, so the benchmark can be run in pieces, e.g. two processes with disjoint
`--units`, and finished with `--report`):

- `hinas_s<K>`: a HiNAS search with seed K (`--search-seeds`);
- `rsws_s<K>`: random search with weight sharing (RSWS) with seed K (`--rsws-seeds`);
- `params_s<K>`: the zero-cost search with seed K (`--params-seeds`, with a budget only): the most
  parameters among the search's random draws within the budget, no supernet trained;
- `random_<K>`: a genotype drawn uniformly from the same space (uniform op and edge choice per
  node, uniform valid width path), redrawn until its trained network has within ±`--tolerance`
  of the parameters of the first HiNAS genotype (`--random` of them);
- with `--budget-macs G` (a cost budget, docs/cost.md) the searches run under it
  (`search.max_macs`) and each `random_<K>` is drawn within ±`--tolerance` of G instead (its MACs
  predicted exactly by the space's cost table): one run of the benchmark per budget;
- training: every genotype trained with the same config (`--preset`, `--iters`, seed 0) in
  `train/<name>`, plus each `--repeat` genotype (default: the first HiNAS one) trained again with
  seeds 1.. (`--train-seeds`) as `<name>_t<seed>` to measure training noise. A unit named after a
  genotype makes that genotype (searching or drawing it) and trains it.

The report scores every trained network on `--test` and on the held-back `--val` images (PSNR /
SSIM under the task's convention, per image too, parameters, MACs and the folded network's latency
at the task's cost size, 481×321: `hinas.models.cost.model_cost`; kept in
`train/<name>/scores.json` and reused while the test and validation sets are the same) and states:
each HiNAS genotype's percentile among the random ones; one-sided Mann–Whitney U p-values for HiNAS
> random and HiNAS > RSWS; a bootstrap 95 % CI of the mean gap HiNAS − random (dB); the training-
seed spread; how much the search seeds agree (same width path, share of identical (input, op)
choices); and a PSNR-vs-parameters plot. `--export DIR` copies every genotype and trained model
(safetensors) with a JSON manifest.

Example (pieces, then the report):
python benchmarks/search_vs_random.py --data ../shared/data/BSDS500 --test ../shared/data/Set12
  --out runs/svr --units hinas_s0,hinas_s1 --threads 1
python benchmarks/search_vs_random.py --data ../shared/data/BSDS500 --test ../shared/data/Set12
  --out runs/svr --report --json benchmarks/results/search_vs_random.json
  --export benchmarks/results/search_vs_random
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path

if not __package__:  # run as a file, `python benchmarks/NAME.py`: the package made importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "benchmarks" / "results" / "search_vs_random" / "state"
"""Where `--save` keeps the units' state (one folder per budget), for a later session to go on."""
KEPT = ("model.json", "model.safetensors", "genotype.json", "genotype_unfilled.json",
        "config.yaml", "metrics.jsonl", "campaign.jsonl", "resumes.jsonl", "arch_history.jsonl",
        "done", "scores.json", "signals.json")
"""The files of a unit's folder that are its state (`last.pt` too while it is unfinished)."""

SEARCHES = {"hinas": "hinas", "rsws": "random", "params": "params"}
"""Each searched kind of unit and its `search.strategy`."""

AGAINST_RANDOM = (("HiNAS", "p_hinas_gt_random", "mean_gap_vs_random_db"),
                  ("the params search", "p_params_gt_random", "mean_gap_params_vs_random_db"))
"""The searches judged against the random genotypes: their label in the targets and the keys
of their one-sided p and mean gap in the statistics (in `statistics`' order: HiNAS, params)."""

EARLY = 2 / 3
"""The fraction of the training length whose ranking of the networks must agree with the full
length's (Spearman ≥ 0.8) for the recipe to count as stable."""

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", nargs="+", required=True, metavar="DIR",
                   help="training folders (search and training)")
    p.add_argument("--test", required=True, metavar="DIR", help="folder of clean test images")
    p.add_argument("--val", metavar="DIR",
                   help="held-back validation images (never trained or searched on), scored too")
    p.add_argument("--val-count", type=int, default=0,
                   help="score only the first N --val images by file name (0: all)")
    p.add_argument("--sigma", type=float, default=50.0, help="noise level")
    p.add_argument("--preset", default="cpu", help="config preset of searches and trainings")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every search and training")
    p.add_argument("--iters", type=int, required=True, help="training iterations of every net")
    p.add_argument("--search-seeds", default="0,1,2")
    p.add_argument("--rsws-seeds", default="0,1,2")
    p.add_argument("--params-seeds", default="",
                   help="seeds of the zero-cost params search (with --budget-macs)")
    p.add_argument("--random", type=int, default=8, help="random genotypes (K)")
    p.add_argument("--tolerance", type=float, default=0.15,
                   help="window of the random genotypes around their target (fraction)")
    p.add_argument("--budget-macs", type=float, default=0.0, metavar="G",
                   help="a cost budget: HiNAS and RSWS search under it (search.max_macs) and the "
                        "random genotypes are drawn within --tolerance of it (G MACs at the "
                        "task's cost size and the training width); 0: random genotypes match "
                        "the parameters of the first HiNAS genotype")
    p.add_argument("--train-seeds", type=int, default=3,
                   help="trainings of each --repeat genotype (training noise)")
    p.add_argument("--repeat", default="",
                   help="comma-separated genotypes trained with --train-seeds seeds (default: the "
                        "first HiNAS genotype)")
    p.add_argument("--units", help="comma-separated units to run now (default: all)")
    p.add_argument("--genotypes-only", action="store_true",
                   help="only search / draw the genotypes of --units, train nothing")
    p.add_argument("--report", action="store_true", help="score what is trained and report")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", required=True, metavar="WORKDIR", help="run folders (kept)")
    p.add_argument("--json", metavar="PATH", help="also write the report JSON here")
    p.add_argument("--export", metavar="DIR", help="copy genotypes, models and a manifest here")
    p.add_argument("--committed", default=str(COMMITTED), metavar="DIR",
                   help="committed unit states: a unit missing from --out continues from there")
    p.add_argument("--save", action="store_true",
                   help="after every unit, copy the units' state into --committed (commit it)")
    args = p.parse_args(argv)
    args.search_seeds = [int(s) for s in args.search_seeds.split(",") if s != ""]
    args.rsws_seeds = [int(s) for s in args.rsws_seeds.split(",") if s != ""]
    args.params_seeds = [int(s) for s in args.params_seeds.split(",") if s != ""]
    if args.params_seeds and not args.budget_macs:
        p.error("--params-seeds needs --budget-macs: the params search searches under a budget")
    if not args.search_seeds:
        p.error("--search-seeds needs at least one seed")
    args.repeat = [n for n in args.repeat.split(",") if n] or [f"hinas_s{args.search_seeds[0]}"]
    return args


def config(args: argparse.Namespace, seed: int = 0, strategy: str = "hinas"):
    """The resolved config of one unit (same for every unit except the seed and strategy)."""
    from hinas.config import resolve

    cfg = resolve("denoise", args.preset, None, args.overrides, task={"sigma": [args.sigma]},
                  train={"iters": args.iters}, seed=seed)
    return dataclasses.replace(cfg, search=dataclasses.replace(
        cfg.search, strategy=strategy, max_macs=args.budget_macs))


def genotype_units(args: argparse.Namespace) -> list[str]:
    """Names of every genotype of the benchmark, searched or drawn."""
    return ([f"hinas_s{s}" for s in args.search_seeds] + [f"rsws_s{s}" for s in args.rsws_seeds]
            + [f"params_s{s}" for s in args.params_seeds]
            + [f"random_{k}" for k in range(args.random)])


def train_units(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    """(training run name, genotype name, training seed) of every training."""
    return ([(name, name, 0) for name in genotype_units(args)]
            + [(f"{name}_t{t}", name, t) for name in args.repeat
               for t in range(1, args.train_seeds)])


def genotype_path(work: Path, name: str) -> Path:
    """Where the genotype of unit `name` is written."""
    return work / "genotypes" / name / "genotype.json"


def make_genotype(args: argparse.Namespace, work: Path, name: str):
    """Search (or resume searching) or draw the genotype of unit `name`; reuse a finished one."""
    import numpy as np

    import hinas
    from hinas.jobs.arch import random_genotype
    from hinas.models.cost import model_cost
    from hinas.models.folder import ModelSpec
    from hinas.space.genotype import Genotype

    path = genotype_path(work, name)
    if path.exists():
        return Genotype.load(path)
    kind, _, index = name.partition("_")
    if kind in SEARCHES:
        seed = int(index.lstrip("s"))
        run = path.parent
        resume = (run / "last.pt").exists()
        if run.exists() and not resume:
            shutil.rmtree(run)
        return hinas.search(config(args, seed, SEARCHES[kind]), args.data, run, resume=resume,
                            quiet=True)
    if args.budget_macs:
        genotype = budget_draw(args, int(index))
        path.parent.mkdir(parents=True, exist_ok=True)
        genotype.save(path)
        return genotype
    reference = make_genotype(args, work, f"hinas_s{args.search_seeds[0]}")
    cfg = config(args)
    multiplier = cfg.train.width_multiplier
    spec = ModelSpec("hinas", reference.task, {"width_multiplier": multiplier}, reference)
    target = model_cost(spec.build(), reference.task, repeats=0).params
    genotype = random_genotype(reference.space, reference.task,
                               np.random.default_rng([int(index), 2024]), target,
                               args.tolerance, multiplier)
    genotype.meta.update(matched_to=reference.meta.get("strategy", "hinas"), target_params=target)
    path.parent.mkdir(parents=True, exist_ok=True)
    genotype.save(path)
    return genotype


def budget_draw(args: argparse.Namespace, index: int, tries: int = 20000):
    """Random genotype `index` of the space, redrawn until its MACs (predicted exactly by the
    space's cost table) are within `--tolerance` of `--budget-macs`."""
    import numpy as np

    from hinas.jobs.arch import random_genotype
    from hinas.runtime.cost_table import measure_table

    cfg = config(args)
    table = measure_table(cfg.space, cfg.task, cfg.train.width_multiplier,
                          tuple(cfg.task.cost_size), "macs")
    rng = np.random.default_rng([index, 2024])
    for draw in range(1, tries + 1):
        genotype = random_genotype(cfg.space, cfg.task, rng)
        macs = table.predict(genotype)
        if abs(macs / args.budget_macs - 1) <= args.tolerance:
            genotype.meta.update(budget_macs=args.budget_macs, macs=round(macs, 5), draws=draw)
            return genotype
    raise SystemExit(f"search_vs_random: no random genotype within {args.tolerance:.0%} of "
                     f"{args.budget_macs:g} G MACs in {tries} draws")


def train_unit(args: argparse.Namespace, work: Path, run: str, name: str, seed: int) -> None:
    """Train genotype `name` with training seed `seed` in `work/train/run` (resumed if cut)."""
    import hinas

    out = work / "train" / run
    if (out / "done").exists() and trained_iterations(out) >= args.iters:
        return
    genotype = make_genotype(args, work, name)
    cfg = config(args, seed)
    resume = (out / "last.pt").exists()
    if out.exists() and not resume:  # cut before its first checkpoint: start it again
        shutil.rmtree(out)
    hinas.train(cfg, args.data, out, genotype, resume=resume, quiet=True)
    (out / "done").write_text("")


def state_folder(args: argparse.Namespace) -> Path:
    """This run's folder under `--committed`: one per budget (`5.3g`), `matched` without."""
    return Path(args.committed) / (f"{args.budget_macs:g}g" if args.budget_macs else "matched")


def unit_folders(work: Path) -> list[Path]:
    """Every unit's folder under `work`, searched or drawn genotypes and trainings."""
    return sorted(p for part in ("genotypes", "train") if (work / part).is_dir()
                  for p in (work / part).iterdir() if p.is_dir())


def restore_state(args: argparse.Namespace, work: Path) -> None:
    """Copy every unit folder that `--out` lacks from its committed state."""
    from benchmarks.families import run_folder

    committed = state_folder(args)
    for folder in unit_folders(committed):
        part = folder.parent.name
        run_folder(work / part, folder.name, committed / part)


def save_state(args: argparse.Namespace, work: Path,
               units: Iterable[tuple[str, str]] | None = None) -> None:
    """Copy the state of the units `units` ((training run, genotype) names; default every unit
    under `work`) into `--committed`: the files of KEPT, `last.pt` while the unit is unfinished,
    and a finished search's `best.pt` (its supernet) until its `signals.json` holds the selection
    signals' scores of it. Only this process's units: another process may be writing others."""
    from benchmarks.harness import copy_state

    committed = state_folder(args)
    folders = unit_folders(work) if units is None else [
        folder for run, name in units
        for folder in (work / "genotypes" / name, work / "train" / run) if folder.is_dir()]
    for folder in folders:
        searched = folder.parent.name == "genotypes"
        finished = (folder / ("genotype.json" if searched else "done")).exists()
        scored = (folder / "signals.json").exists()
        copy_state(folder, committed / folder.parent.name / folder.name, KEPT,
                   {"last.pt": not finished, "best.pt": searched and finished and not scored})


def trained_iterations(out: Path) -> int:
    """The iterations a finished training ran (a longer `--iters` extends it: under a constant
    rate the resumed run is the longer run, exactly)."""
    return json.loads((out / "model.json").read_text())["meta"].get("iterations", 0)


def choice_agreement(a, b) -> float:
    """Share of identical (input, op) choices of two genotypes (same space), over all nodes."""
    same = total = 0
    for cell_a, cell_b in zip(a.cells, b.cells, strict=True):
        for node_a, node_b in zip(cell_a, cell_b, strict=True):
            same += len(set(map(tuple, node_a)) & set(map(tuple, node_b)))
            total += len(node_a)
    return same / total


def statistics(scores: dict, args: argparse.Namespace, genotypes: dict) -> dict:
    """Percentiles, one-sided Mann–Whitney U p-values, bootstrap CI of the mean gap, training
    noise and search-seed agreement, from the PSNR of every trained network."""
    import numpy as np

    from benchmarks.stats import mean_gap_ci95, p_greater, spread_against_noise

    def psnrs(prefix: str) -> list[float]:
        return [scores[n]["psnr"] for n in scores if n.startswith(prefix) and "_t" not in n]

    hinas, rsws, rand = psnrs("hinas_s"), psnrs("rsws_s"), psnrs("random_")
    zero_cost = psnrs("params_s")
    first = args.repeat[0]
    seeds = [scores[n]["psnr"] for n in scores if n == first or n.startswith(first + "_t")]
    out: dict = {"n": {"hinas": len(hinas), "rsws": len(rsws), "random": len(rand),
                       "training_seeds": len(seeds)}}
    if (hinas or zero_cost) and rand:
        out["percentile_among_random"] = {
            n: round(100.0 * np.mean([r < scores[n]["psnr"] for r in rand]), 1)
            for n in scores if n.startswith(("hinas_s", "params_s")) and "_t" not in n}
    for found, (_, p_key, gap_key) in zip((hinas, zero_cost), AGAINST_RANDOM, strict=True):
        if found and rand:
            out[p_key] = p_greater(found, rand)
            out[gap_key] = round(float(np.mean(found) - np.mean(rand)), 4)
            out[gap_key.replace("_db", "_ci95_db")] = mean_gap_ci95(found, rand)
    if hinas and rsws:
        out["p_hinas_gt_rsws"] = p_greater(hinas, rsws)
        out["mean_gap_vs_rsws_db"] = round(float(np.mean(hinas) - np.mean(rsws)), 4)
    if len(seeds) > 1:
        out["training_seed_spread_db"] = round(float(max(seeds) - min(seeds)), 4)
        out["training_seed_std_db"] = round(float(np.std(seeds, ddof=1)), 4)
    searched = [genotypes[f"hinas_s{s}"] for s in args.search_seeds
                if f"hinas_s{s}" in genotypes]
    if len(searched) > 1:
        pairs = list(itertools.combinations(searched, 2))
        out["search_seed_agreement"] = {
            "paths": [g.path for g in searched],
            "same_path": all(a.path == b.path for a, b in pairs),
            "choice_agreement": round(float(np.mean([choice_agreement(a, b)
                                                     for a, b in pairs])), 4)}
    out["ground_truth"] = {key: spread_against_noise(scores, key) for key in ("psnr", "val_psnr")
                           if any(key in entry for entry in scores.values())}
    out["targets"] = targets(out)
    return out


def targets(stats: dict) -> list[str]:
    """The benchmark's targets judged from `stats`: met or MISSED, with the figures."""
    lines = []
    for label, p_key, gap_key in AGAINST_RANDOM:
        if p_key in stats:
            p = stats[p_key]
            lines.append(f"{'met' if p < 0.05 else 'MISSED'}: {label} above random genotypes at "
                         f"p < 0.05 — p = {p:.3g}, mean gap {stats[gap_key]:+.3f} dB")
    if "mean_gap_vs_rsws_db" in stats:
        gap = stats["mean_gap_vs_rsws_db"]
        lines.append(f"{'met' if gap > 0 else 'MISSED'}: HiNAS above RSWS — mean gap "
                     f"{gap:+.3f} dB, p = {stats['p_hinas_gt_rsws']:.3g}")
    if "training_seed_spread_db" in stats and "mean_gap_vs_random_db" in stats:
        gap, spread = stats["mean_gap_vs_random_db"], stats["training_seed_spread_db"]
        lines.append(f"{'met' if gap > spread else 'MISSED'}: gap to random larger than the "
                     f"training-seed spread — {gap:+.3f} vs {spread:.3f} dB")
    return lines


def score(args: argparse.Namespace, work: Path) -> tuple[dict, dict]:
    """PSNR / SSIM / params / MACs / latency of every finished training, and the genotypes."""
    import hinas
    from hinas.jobs.evaluate import evaluate_model, load_test_images
    from hinas.models.cost import model_cost
    from hinas.space.genotype import Genotype

    cfg = config(args)
    images, _ = load_test_images(args.test, cfg.task.channels)
    held_back = {}
    if args.val:
        held_back, _ = load_test_images(args.val, cfg.task.channels)
        chosen = sorted(held_back, key=lambda p: p.name)[:args.val_count or None]
        held_back = {path: held_back[path] for path in chosen}
    genotypes = {name: Genotype.load(genotype_path(work, name)) for name in genotype_units(args)
                 if genotype_path(work, name).exists()}
    scores = {}
    key = {"test": args.test, "val": args.val, "val_count": args.val_count, "sigma": args.sigma,
           "iters": args.iters}
    for run, name, seed in train_units(args):
        folder = work / "train" / run
        if not (folder / "done").exists() or trained_iterations(folder) != args.iters:
            continue
        cache = folder / "scores.json"
        if cache.exists() and json.loads(cache.read_text()).get("key") == key:
            scores[run] = {**json.loads(cache.read_text())["scores"],
                           **curve_scores(folder / "metrics.jsonl", args.iters)}
            continue
        model = hinas.load_model(folder)
        report = evaluate_model(model, cfg.task, images, method=run, data=args.test, seed=0,
                                quiet=True)
        cost = model_cost(model, cfg.task, repeats=3)
        meta = genotypes[name].meta
        scores[run] = {"genotype": name, "train_seed": seed, "psnr": report.mean["psnr"],
                       "ssim": report.mean["ssim"],
                       "per_image_psnr": {r["image"]: round(r["psnr"], 4) for r in report.rows},
                       **curve_scores(folder / "metrics.jsonl", args.iters)}
        if held_back:
            val = evaluate_model(model, cfg.task, held_back, method=run, data=args.val, seed=0,
                                 quiet=True)
            scores[run].update(val_psnr=val.mean["psnr"], val_ssim=val.mean["ssim"],
                               val_per_image_psnr={r["image"]: round(r["psnr"], 4)
                                                   for r in val.rows})
        scores[run] |= {"params": cost.params, "macs": cost.macs, "latency_s": cost.latency_s,
                       "path": genotypes[name].path,
                       "search_seconds": meta.get("search_seconds"),
                       "verdict": (meta.get("verdict") or {}).get("message")}
        cache.write_text(json.dumps({"key": key, "scores": scores[run]}) + "\n")
    return scores, genotypes


def curve_scores(metrics: Path, iters: int) -> dict:
    """The training run's own validation PSNR at EARLY of its length (the logged point nearest
    it) and at full length (from metrics.jsonl)."""
    records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    val = {r["iter"]: r["val_psnr"] for r in records if "val_psnr" in r}
    early = min(val, key=lambda it: abs(it - iters * EARLY)) if val else None
    return {"curve_early_iter": early, "curve_early_psnr": val.get(early),
            "curve_full_psnr": val.get(iters), "curve_val_psnr": val}


def markdown(summary: dict) -> str:
    """A `search_vs_random.py` summary as markdown: every trained network, then the ground truth
    (spread against training noise, ranking stability) and the targets."""
    c = summary["config"]
    held = f"{Path(c['val']).name} (first {c['val_count'] or 'all'})" if c.get("val") else None
    lines = [f"σ={c['sigma']:g}, `{c['preset']}` preset, {c['iters']} training iterations per "
             f"network ({', '.join(c['overrides']) or 'no overrides'}), on {summary['device']}",
             "", "| network | width path | params | " + (f"{held} PSNR | " if held else "")
             + f"{Path(c['test']).name} PSNR | SSIM |",
             "|---|---|---:|" + ("---:|" if held else "") + "---:|---:|"]
    for name, entry in sorted(summary["scores"].items()):
        val = f" {entry['val_psnr']:.3f} |" if held and entry.get("val_psnr") is not None else (
            " – |" if held else "")
        lines.append(f"| {name} | {entry['path']} | {entry['params']:,} |{val} "
                     f"{entry['psnr']:.3f} | {entry['ssim']:.4f} |")
    for key, label in (("val_psnr", held), ("psnr", Path(c["test"]).name)):
        truth = summary["statistics"].get("ground_truth", {}).get(key)
        if not truth or label is None:
            continue
        text = (f"\nGround truth on {label}: {truth['n_random']} random genotypes, interquartile "
                f"range {truth['iqr_db']:.3f} dB, max − min {truth['range_db']:.3f} dB")
        if "training_seed_std_db" in truth:
            text += (f"; training-seed noise (std of one training, {truth['training_pairs']} "
                     f"pairs) {truth['training_seed_std_db']:.4f} dB, so the interquartile range "
                     f"is {truth['iqr_over_noise']}× the noise: "
                     + ("**flat** at matched size" if truth["flat"] else "not flat"))
        # results written before the early point moved to EARLY were ranked at half length
        early = next(((k, at) for k, at in (("early_vs_full_spearman", f"{EARLY:.2f} of the "
                                             "length"), ("half_vs_full_spearman", "half length"))
                      if k in truth), None)
        if early:
            text += (f"; the runs' own validation ranks at {early[1]} against full length at "
                     f"Spearman {truth[early[0]]:+.2f} ("
                     + ("stable" if truth["ranking_stable"] else "**not stable**: < 0.8")
                     + "; every logged iteration: " + ", ".join(
                         f"{it}: {rho:+.2f}" for it, rho in truth["curve_spearman_vs_full"].items())
                     + ")")
        lines.append(text + ".")
    lines += [f"\n{t}" for t in summary["statistics"].get("targets", [])]
    return "\n".join(lines) + "\n"


def plot(scores: dict, path: Path) -> None:
    """PSNR against parameters, one colour per kind of genotype."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    kinds = {"hinas_s": ("HiNAS (search seeds)", "tab:red"), "rsws_s": ("RSWS", "tab:blue"),
             "params_s": ("params search (seeds)", "tab:green"),
             "random_": ("random, matched params", "tab:gray")}
    for prefix, (label, color) in kinds.items():
        pts = [(s["params"], s["psnr"]) for n, s in scores.items()
               if n.startswith(prefix) and "_t" not in n]
        if pts:
            ax.scatter(*zip(*pts, strict=True), label=label, color=color)
        seeds = [(s["params"], s["psnr"]) for n, s in scores.items()
                 if n.startswith(prefix) and "_t" in n]
        if seeds:
            ax.scatter(*zip(*seeds, strict=True), label=f"{label}, other training seeds",
                       color=color, marker="x")
    ax.set_xlabel("parameters")
    ax.set_ylabel("PSNR (dB)")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def exported_name(name: str, budget: float) -> str:
    """A unit's name in an export: with a budget, tagged after its kind (`hinas_s0` →
    `hinas_5.3g_s0`, `random_0_t1` → `random_5.3g_0_t1`), so that the budgets share one
    folder."""
    if not budget:
        return name
    kind, _, rest = name.partition("_")
    return f"{kind}_{budget:g}g_{rest}"


def export(scores: dict, args: argparse.Namespace, work: Path, dest: Path) -> None:
    """Copy every genotype and trained model (model.json, model.safetensors, genotype.json) to
    `dest` with a manifest.json listing them and their scores. The runs of other budgets already
    exported there are kept (same recipe and test images, else refused)."""
    from benchmarks.harness import portable

    shared = {"test": Path(args.test).name, "sigma": args.sigma,
              "val": Path(args.val).name if args.val else None, "val_count": args.val_count,
              "iters": args.iters, "overrides": args.overrides}
    manifest = {**shared, "budget_macs": args.budget_macs or None, "models": {}}
    held = dest / "manifest.json"
    if args.budget_macs and held.exists():
        earlier = json.loads(held.read_text())
        differ = sorted(k for k in shared if earlier.get(k) != shared[k])
        if differ:
            raise SystemExit(f"search_vs_random: {held} holds runs of another recipe or test "
                             f"({', '.join(differ)} differ): export to another folder")
        manifest["budget_macs"] = sorted({*(earlier.get("budget_macs") or []),
                                          args.budget_macs})
        manifest["models"] = {n: m for n, m in earlier["models"].items()
                              if m.get("budget_macs") != args.budget_macs}
    elif args.budget_macs:
        manifest["budget_macs"] = [args.budget_macs]

    def tag(name: str) -> str:
        return exported_name(name, args.budget_macs)

    for name in genotype_units(args):
        src = genotype_path(work, name)
        if src.exists():
            (dest / "genotypes").mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dest / "genotypes" / f"{tag(name)}.json")
    for run, entry in scores.items():
        target = dest / "models" / tag(run)
        target.mkdir(parents=True, exist_ok=True)
        for file in ("model.json", "model.safetensors", "genotype.json"):
            if (work / "train" / run / file).exists():
                shutil.copy(work / "train" / run / file, target / file)
        record = json.loads((target / "model.json").read_text())
        record["meta"]["data"] = [portable(d) for d in record["meta"].get("data", [])]
        (target / "model.json").write_text(json.dumps(record, indent=1) + "\n")
        manifest["models"][tag(run)] = {
            "folder": f"models/{tag(run)}", "genotype": f"genotypes/{tag(entry['genotype'])}.json",
            "budget_macs": args.budget_macs or None,
            **{k: entry[k] for k in ("train_seed", "psnr", "ssim", "params", "macs", "latency_s",
                                     "val_psnr", "val_ssim", "per_image_psnr",
                                     "val_per_image_psnr") if k in entry}}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def main(argv: list[str] | None = None) -> dict:
    """Run the requested units, then (with --report) score, judge and write the results."""
    args = parse_args(argv)
    import torch

    from hinas.errors import HinasError

    torch.set_num_threads(args.threads)
    work = Path(args.out)
    names = [run for run, _, _ in train_units(args)]
    wanted = args.units.split(",") if args.units else ([] if args.report else names)
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise SystemExit(f"search_vs_random: unknown unit(s) {', '.join(unknown)}; known: "
                         f"{', '.join(names)}")
    started = time.perf_counter()
    restore_state(args, work)
    try:
        for run, name, seed in train_units(args):
            if run in wanted and args.genotypes_only:
                make_genotype(args, work, name)
            elif run in wanted:
                train_unit(args, work, run, name, seed)
            if run in wanted and args.save:  # after every unit: a cut session keeps its work
                save_state(args, work, [(run, name)])
        if args.save and not wanted:  # nothing run now: save what --out holds
            save_state(args, work)
        if not args.report:
            return {}
        scores, genotypes = score(args, work)
    except HinasError as err:
        raise SystemExit(f"search_vs_random: error: {err}") from None
    from benchmarks.harness import command_line, device, emit
    from hinas.config import TaskConfig

    summary = {"benchmark": "search_vs_random",
               "config": {"data": args.data, "test": args.test, "sigma": args.sigma,
                          "preset": args.preset, "overrides": args.overrides,
                          "iters": args.iters, "search_seeds": args.search_seeds,
                          "rsws_seeds": args.rsws_seeds, "params_seeds": args.params_seeds,
                          "random": args.random,
                          "tolerance": args.tolerance, "budget_macs": args.budget_macs or None,
                          "train_seeds": args.train_seeds,
                          "repeat": args.repeat, "val": args.val, "val_count": args.val_count,
                          "cost_size": list(TaskConfig().cost_size), "threads": args.threads},
               "device": device("cpu"), "scores": scores,
               "statistics": statistics(scores, args, genotypes),
               "report_seconds": round(time.perf_counter() - started, 1),
               "command": command_line(__file__, argv)}
    plot(scores, work / "psnr_vs_params.png")
    if args.export:
        export(scores, args, work, Path(args.export))
        plot(scores, Path(args.export) / (f"psnr_vs_params_{args.budget_macs:g}g.png"
                                          if args.budget_macs else "psnr_vs_params.png"))
    emit(summary, args.json)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
