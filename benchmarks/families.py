"""Which network family turns CPU minutes into quality: blind gray denoising (σ 0–55) trained on
one thread under one recipe, scored on photographs held back from BSDS500/val.

Families (docs/decisions.md §1.2b), each at matched parameters and at matched MACs per pixel
against the reference (`width`, the width-level `cpu` search genotype at the preset's width ×2):

- `width`: today's width-level space (`benchmarks/results/genotypes/denoise_sigma50_cpu.json`);
- `start2-*`: the same genotype with the start part's pixel-unshuffle ×2 (`space.start_scale`);
- `resolution-*`: the `cpu` search genotype found with resolution levels
  (`denoise_sigma50_cpu_resolution.json`);
- `ffdnet-*`: the fixed FFDNet-like network (10 convolutions at half resolution), no search;
- `resolution-macs-map`: `resolution-macs` (the chosen family) told σ by a noise-level map (a
  variant that measures what the map is worth, not a candidate for the choice).

`-params` / `-macs` pick the width multiplier (ffdnet: the width) whose network is nearest the
reference's parameter count / MACs per pixel. Every run trains with the `cpu` preset's recipe
(AdamW, cosine, batch 16, 48 px crops, fp32 channels-last), σ drawn uniformly from [0, 55] per
crop, for a budget of this process's CPU time (one thread), on BSDS500 train plus the val
photographs not held back; every fifth val photograph (sorted by name) is held back and never
trained on or used for a choice during training.

    python benchmarks/families.py --bsds DIR --work runs/families --stage 30 --only width
    python benchmarks/families.py --bsds DIR --work runs/families --stage 120
    python benchmarks/families.py --bsds DIR --work runs/families --report --json OUT.json

A stage trains the runs it names that are not finished yet (an interrupted run resumes where its
last checkpoint left it; a run missing from `--work` starts from its committed state in
`benchmarks/results/families/`, which `--save` writes): stage 30 every family, 30 CPU-minutes each;
stage 120 the best two families of stage 30 (held-back PSNR at σ=50), 120 CPU-minutes, a second
training seed of the better of the two at 120 minutes (of the stage-30 best until both are
done), and today's `width` space at the same length (the reference of the chosen family's gain;
the shipped `denoise-gray-blind`, a width-space network, cannot be: it trained on the
held-back photographs). `--report` scores every finished run on the held-back photographs at σ = 15,
25, 50 beside BM3D (`hinas eval --method bm3d`, same noisy inputs), with parameters, MACs and the
folded network's latency at the task's cost size (481×321, `hinas.models.cost.model_cost`) on
one thread, and plots validation PSNR against CPU minutes
(`--plot`). Prints (and with `--json` writes) JSON:

    {"benchmark": "families", "heldout": [names], "bm3d": {σ: psnr},
     "runs": {run: {"family", "budget_minutes", "seed", "arch", "params", "macs_per_pixel",
                    "latency_s", "bm3d_latency_s", "cpu_minutes", "iterations",
                    "heldout": {σ: psnr}, "curve": [[cpu_minutes, val_psnr], ...]}},
     "choice": {"family", "seeds", "heldout", "over_bm3d": {σ: dB}, "over_width_sigma50",
                "bm3d_speedup", "targets_met"}}
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

if not __package__:  # run as a file, `python benchmarks/NAME.py`: the package made importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
GENOTYPES = REPO / "benchmarks" / "results" / "genotypes"
COMMITTED = REPO / "benchmarks" / "results" / "families"
"""The committed state of every run (finished: weights and scores; unfinished: last.pt), from
which a stage continues in a fresh clone (`--save` writes it)."""
KEPT = ("model.json", "model.safetensors", "genotype.json", "config.yaml", "metrics.jsonl",
        "heldout.json", "curves.png")
SIGMAS = (15.0, 25.0, 50.0)
HOLD_EVERY = 5
STAGE_BUDGETS = {30: 30.0, 120: 120.0}


@dataclass(frozen=True)
class Family:
    """A family of networks: its architecture, genotype file and space changes, and what it is
    matched on against the reference (None: it is the reference)."""

    name: str
    arch: str
    genotype: str | None
    space: tuple[tuple[str, object], ...] = ()
    match: str | None = None
    noise_map: bool = False
    """Told σ by a noise-level map: a variant of a family, not a candidate for the choice."""


FAMILIES = {f.name: f for f in [
    Family("width", "hinas", "denoise_sigma50_cpu.json"),
    Family("start2-params", "hinas", "denoise_sigma50_cpu.json", (("start_scale", 2),), "params"),
    Family("start2-macs", "hinas", "denoise_sigma50_cpu.json", (("start_scale", 2),), "macs"),
    Family("resolution-params", "hinas", "denoise_sigma50_cpu_resolution.json", (), "params"),
    Family("resolution-macs", "hinas", "denoise_sigma50_cpu_resolution.json", (), "macs"),
    Family("ffdnet-params", "ffdnet", None, (), "params"),
    Family("ffdnet-macs", "ffdnet", None, (), "macs"),
    Family("resolution-macs-map", "hinas", "denoise_sigma50_cpu_resolution.json", (), "macs",
           noise_map=True),
]}
CANDIDATES = [name for name, family in FAMILIES.items() if not family.noise_map]


def split_data(bsds: Path, work: Path) -> tuple[Path, Path]:
    """Folders of links `work/data/train` (BSDS500 train + the val photographs kept) and
    `work/data/heldout` (every HOLD_EVERY-th val photograph by sorted name), made once."""
    train, heldout = work / "data" / "train", work / "data" / "heldout"
    for folder in (train, heldout):
        folder.mkdir(parents=True, exist_ok=True)
    from_train, from_val, back = photographs(bsds)
    if not from_val and not back:
        raise SystemExit(f"families: {bsds / 'val'}: no BSDS500 val photographs")
    for path in back:
        _link(path, heldout / path.name)
    for path in [*from_val, *from_train]:
        _link(path, train / path.name)
    return train, heldout


def photographs(bsds: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """BSDS500's photographs (its JPEGs), sorted by name: those of `train`, those of `val` a
    training may see, and the val ones that no training of the project sees (every
    HOLD_EVERY-th)."""
    val = sorted((bsds / "val").glob("*.jpg"))
    back = {path for k, path in enumerate(val) if k % HOLD_EVERY == 0}
    return (sorted((bsds / "train").glob("*.jpg")), [p for p in val if p not in back],
            [p for p in val if p in back])


def _link(target: Path, link: Path) -> None:
    # another run of this benchmark may make the same link at the same moment
    with contextlib.suppress(FileExistsError):
        link.symlink_to(target.resolve())


def base_config(seed: int, noise_map: bool = False):
    """The recipe every run trains with (`noise_map`: told σ by a map)."""
    from hinas.config import resolve

    return resolve("denoise", "cpu", task={"sigma": [0.0, 55.0], "sigma_sampling": "uniform",
                                           "noise_map": noise_map},
                   seed=seed, overrides=["train.val_every=1000"])


def family_genotype(family: Family):
    """The family's genotype (None for an architecture without one), its space changed."""
    from hinas.space.genotype import Genotype

    if family.genotype is None:
        return None
    genotype = Genotype.load(GENOTYPES / family.genotype)
    space = dataclasses.replace(genotype.space, **dict(family.space))
    task = dataclasses.replace(genotype.task, sigma=[0.0, 55.0], sigma_sampling="uniform")
    return dataclasses.replace(genotype, space=space, task=task)


def cost(family: Family, size: float) -> tuple[int, float]:
    """Parameters and MACs per pixel of `family` at `size` (a width multiplier, or ffdnet's
    width), MACs counted on a 64×64 input (a multiple of every grid)."""
    from hinas.models.cost import model_cost

    net = build(family, size)
    measured = model_cost(net, net.built_for, (64, 64), repeats=0)
    return measured.params, measured.macs_per_pixel


def options(family: Family, size: float) -> dict:
    """The build options of `family` at `size`."""
    if family.arch == "ffdnet":
        return {"depth": 10, "width": int(size), "start_scale": 2}
    return {"width_multiplier": round(size, 3)}


def build(family: Family, size: float):
    """The untrained network of `family` at `size`."""
    from hinas.config import TaskConfig
    from hinas.models.folder import ModelSpec

    genotype = family_genotype(family)
    task = genotype.task if genotype else TaskConfig(sigma=[0.0, 55.0], sigma_sampling="uniform")
    return ModelSpec(family.arch, task, options(family, size), genotype).build()


def matched_size(family: Family) -> float:
    """The size (width multiplier in steps of 0.05, or ffdnet width) of `family` nearest the
    reference on the quantity it is matched on (a scan: rounded node widths make the cost a
    step function of the multiplier)."""
    if family.match is None:
        return 2.0
    key = 0 if family.match == "params" else 1
    target = cost(FAMILIES["width"], 2.0)[key]
    sizes = range(4, 129) if family.arch == "ffdnet" else [k / 20 for k in range(5, 161)]
    return min(sizes, key=lambda s: abs(cost(family, s)[key] - target))


def run_name(family: str, minutes: float, seed: int) -> str:
    """The run folder name of one training."""
    return f"{family}_{minutes:g}m_s{seed}"


def run_folder(work: Path, name: str, committed: Path | None = None) -> Path:
    """The folder of the training `name` under `work`, continued from its committed state
    under `committed` (default COMMITTED; what `--save` wrote) when this work folder has none."""
    out, committed = work / name, committed or COMMITTED
    if not out.exists() and (committed / name).exists():
        shutil.copytree(committed / name, out)
    return out


def train_run(family: Family, minutes: float, seed: int, train_dir: Path, work: Path) -> Path:
    """Train (or resume, or leave as it is when finished) one run; returns its folder."""
    import hinas
    from hinas.config import resolve

    out = run_folder(work, run_name(family.name, minutes, seed))
    if finished(out):
        return out
    resume = (out / "last.pt").exists()
    # a resumed run goes on under its own config.yaml, which holds the budget's iteration count
    cfg = (resolve("denoise", config_file=out / "config.yaml") if resume
           else base_config(seed, family.noise_map))
    hinas.train(cfg, [str(train_dir)], out, family_genotype(family), arch=family.arch,
                resume=resume, quiet=True, options=options(family, matched_size(family)),
                budget_seconds=None if resume else minutes * 60, budget_clock="cpu")
    return out


def save_state(work: Path, runs: Iterable[str] | None = None) -> None:
    """Copy the state of the runs `runs` (default every run under `work`) into COMMITTED: the
    files of KEPT, and last.pt while unfinished. Only this process's runs: another process may
    be writing others."""
    from benchmarks.harness import copy_state

    for out in (sorted(work.glob("*_*m_s*")) if runs is None else
                [work / run for run in runs if (work / run).is_dir()]):
        copy_state(out, COMMITTED / out.name, KEPT, {"last.pt": not finished(out)})
    if (work / "bm3d.json").exists():
        shutil.copy2(work / "bm3d.json", COMMITTED / "bm3d.json")


def finished(out: Path) -> bool:
    """Whether the run folder holds a finished training."""
    model = out / "model.json"
    return model.exists() and "iterations" in json.loads(model.read_text()).get("meta", {})


def stage_runs(stage: int, work: Path) -> list[tuple[str, float, int]]:
    """(family, minutes, seed) of the runs of a stage."""
    if stage == 30:
        return [(name, 30.0, 0) for name in FAMILIES]
    scores = {}
    for name in CANDIDATES:
        out = run_folder(work, run_name(name, 30.0, 0))
        if not finished(out):
            raise SystemExit(f"families: stage 120 needs every stage-30 run; {out} is not done")
        scores[name] = heldout_scores(out, work)[str(SIGMAS[-1])]
    best = sorted(scores, key=scores.get, reverse=True)[:2]
    long = [run_folder(work, run_name(name, 120.0, 0)) for name in best]
    if all(finished(out) for out in long):  # the second seed goes to the leader at 120 minutes
        first, second = (heldout_scores(out, work)[str(SIGMAS[-1])] for out in long)
        if second > first:
            best.reverse()
    # today's space at the same length: what the chosen family's gain is measured against
    reference = [] if "width" in best else [("width", 120.0, 0)]
    return [(best[0], 120.0, 0), (best[1], 120.0, 0), (best[0], 120.0, 1), *reference]


def heldout_images(work: Path):
    """The held-back photographs, gray."""
    from hinas.jobs.evaluate import load_test_images

    return load_test_images(work / "data" / "heldout", 1)[0]


def heldout_scores(out: Path, work: Path) -> dict[str, float]:
    """Held-back PSNR of a finished run at every σ of SIGMAS (cached in the run folder)."""
    import hinas
    from hinas.jobs.evaluate import evaluate_model

    cache = out / "heldout.json"
    if cache.exists():
        return json.loads(cache.read_text())
    model, images = hinas.load_model(out), heldout_images(work)
    task = model.built_for.at_evaluation()  # a noise-map model is told each σ
    scores = {str(s): evaluate_model(model, dataclasses.replace(task, sigma=[s]), images,
                                     quiet=True).mean["psnr"] for s in SIGMAS}
    cache.write_text(json.dumps(scores, indent=1) + "\n")
    return scores


def bm3d_scores(work: Path) -> dict[str, float]:
    """BM3D's held-back PSNR at every σ of SIGMAS, on the same noisy inputs (cached)."""
    from hinas.config import TaskConfig
    from hinas.jobs.evaluate import evaluate_model

    cache = work / "bm3d.json"
    if cache.exists():
        return json.loads(cache.read_text())
    images = heldout_images(work)
    scores = {str(s): evaluate_model("bm3d", TaskConfig(sigma=[s]), images, quiet=True)
              .mean["psnr"] for s in SIGMAS}
    cache.write_text(json.dumps(scores, indent=1) + "\n")
    return scores


def run_record(out: Path, work: Path) -> dict:
    """Everything the report says of one finished run."""
    import hinas
    from hinas.models.cost import model_cost

    spec = json.loads((out / "model.json").read_text())
    meta = spec["meta"]
    model = hinas.load_model(out)
    cost = model_cost(model, model.built_for, repeats=5, warmup=1)
    minutes_per_iter = meta["train_cpu_seconds"] / 60 / meta["iterations"]
    curve = [[round(r["iter"] * minutes_per_iter, 2), r["val_psnr"]]
             for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
             if "val_psnr" in r]
    family, minutes, seed = out.name.rsplit("_", 2)
    return {"family": family, "budget_minutes": float(minutes[:-1]), "seed": int(seed[1:]),
            "arch": spec["arch"], "options": spec.get("options", {}),
            "params": cost.params, "macs_per_pixel": cost.macs_per_pixel,
            "noise_map": model.built_for.needs_level,
            "latency_s": cost.latency_s, "cpu_minutes": meta["train_cpu_seconds"] / 60,
            "wall_minutes": meta["train_seconds"] / 60, "iterations": meta["iterations"],
            "budget_clock": meta.get("budget", {}).get("clock", "wall"),
            "best_val_psnr": meta["best_val_psnr"], "heldout": heldout_scores(out, work),
            "curve": curve}


def report(work: Path) -> dict:
    """The JSON summary of every finished run in `work`."""
    import torch

    from benchmarks.harness import load_1min
    from benchmarks.inference import bm3d_latency
    from hinas.config import TaskConfig

    names = {p.name for folder in (COMMITTED, work) for p in folder.glob("*_*m_s*")}
    runs = {name: run_record(out, work) for name in sorted(names)
            if name.split("_")[0] in FAMILIES and finished(out := run_folder(work, name))}
    w, h = TaskConfig().cost_size
    x = torch.rand(1, 1, h, w)
    bm3d, latency = bm3d_scores(work), bm3d_latency(x, 25.0, 2, 1)
    return {"benchmark": "families", "threads": torch.get_num_threads(),
            "load_1min": load_1min(),
            "heldout": sorted(p.name for p in (work / "data" / "heldout").iterdir()),
            "bm3d": bm3d, "bm3d_latency_s": latency, "runs": runs,
            "choice": choice(runs, bm3d, latency)}


def choice(runs: dict, bm3d: dict, bm3d_latency: float) -> dict:
    """The family of the 120-minute stage with the best held-back PSNR at σ=50 (mean over its
    seeds) and how it stands against the targets: at least 0.5 dB over `width` at σ=50, at or
    above BM3D at σ=25 and 50, at least 10× faster than BM3D (folded, one thread)."""
    import statistics

    seeds: dict[str, list[dict]] = {}
    for run in runs.values():
        if run["budget_minutes"] == STAGE_BUDGETS[120] and run["family"] in CANDIDATES:
            seeds.setdefault(run["family"], []).append(run)
    if not seeds:
        return {}

    def mean(family: str, sigma: float) -> float:
        return statistics.mean(r["heldout"][str(sigma)] for r in seeds[family])

    best = max(seeds, key=lambda f: mean(f, SIGMAS[-1]))
    out = {"family": best, "seeds": len(seeds[best]),
           "heldout": {str(s): round(mean(best, s), 3) for s in SIGMAS},
           "over_bm3d": {str(s): round(mean(best, s) - bm3d[str(s)], 3) for s in SIGMAS},
           "bm3d_speedup": round(bm3d_latency / statistics.mean(
               r["latency_s"] for r in seeds[best]), 1)}
    if "width" in seeds:
        out["over_width_sigma50"] = round(mean(best, SIGMAS[-1]) - mean("width", SIGMAS[-1]), 3)
    out["targets_met"] = (out.get("over_width_sigma50", 0.0) >= 0.5
                          and min(out["over_bm3d"][str(s)] for s in SIGMAS[1:]) >= 0.0
                          and out["bm3d_speedup"] >= 10)
    return out


def plot(summary: dict, path: str) -> None:
    """Validation PSNR against CPU minutes, one line per run, and the held-back PSNR at σ=50
    against CPU minutes with BM3D's level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, run in summary["runs"].items():
        minutes, psnr = zip(*run["curve"], strict=True)
        a.plot(minutes, psnr, marker=".", label=f"{name} ({run['params'] / 1e3:.0f}k, "
               f"{run['macs_per_pixel'] / 1e3:.1f}k MAC/px)")
        b.scatter(run["cpu_minutes"], run["heldout"]["50.0"], label=name)
    b.axhline(summary["bm3d"]["50.0"], color="k", linestyle="--", label="BM3D")
    a.set(xlabel="CPU minutes (one thread)", ylabel="validation PSNR (dB), σ=27.5",
          title="training curves")
    b.set(xlabel="CPU minutes (one thread)", ylabel="held-back PSNR (dB), σ=50",
          title="held-back photographs")
    a.legend(fontsize=7)
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bsds", type=Path, required=True, help="BSDS500 folder (train/, val/)")
    p.add_argument("--work", type=Path, default=Path("runs/families"), help="run folders")
    p.add_argument("--stage", type=int, choices=sorted(STAGE_BUDGETS))
    p.add_argument("--only", nargs="+", default=None, help="families of the stage to train")
    p.add_argument("--report", action="store_true")
    p.add_argument("--json", default=None)
    p.add_argument("--plot", default=None)
    p.add_argument("--save", action="store_true",
                   help="copy every run's state into benchmarks/results/families (to commit)")
    args = p.parse_args(argv)
    train_dir, _ = split_data(args.bsds, args.work)
    trained = []
    if args.stage:
        for name, minutes, seed in stage_runs(args.stage, args.work):
            if args.only is None or name in args.only:
                trained.append(train_run(FAMILIES[name], minutes, seed, train_dir,
                                         args.work).name)
    if args.report:
        from benchmarks.harness import command_line, emit

        summary = {**report(args.work), "command": command_line(__file__, argv)}
        emit(summary, args.json)
        if args.plot:
            plot(summary, args.plot)
    if args.save:  # what this process trained, else (nothing trained now) what --work holds
        save_state(args.work, trained if args.stage else None)


if __name__ == "__main__":
    main()
