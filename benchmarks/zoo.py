"""Train the shipped zoo on the CPU as campaigns: each model in pieces of a stated number of CPU
minutes on one thread, continued in every session from its committed state, until the campaign's
stop rule finds its held-back curve flat, decays and ends (docs/training-recipes.md).

    python benchmarks/zoo.py --bsds DIR --t91 DIR --work runs/zoo --family resolution-macs \
        --size 2.2 --model denoise-gray-blind --piece 30 --save
    python benchmarks/zoo.py --work runs/zoo --status

- **The family** (`--family`, one of `benchmarks/families.py`'s) decides the networks of the
  tasks that keep the image size (gray and colour denoising, the noise-map denoiser, JPEG): its
  genotype, its space changes (e.g. the start part's pixel-unshuffle ×2) and its width, matched
  as in the family benchmark or set by `--size` for a new campaign (the campaigns use the chosen
  `resolution-macs` at ×2.2: 1.6× its matched MACs, for a campaign far longer than the
  benchmark's 120 minutes, still well over 10× faster than BM3D). Super-resolution keeps its own
  searched genotype and width, since the families were measured on denoising; `sr-x2` starts
  from this campaign's `sr-x4`.
- **A second campaign of a model** (`denoise-gray-blind-wide`, `sr-x4-crop72`) is a registry
  entry of its own, with the size and overrides it tries in its name's place; the one that
  scores higher on the held-back photographs ships under the model's name.
- **The data** leave out the photographs the family benchmark holds back (every fifth BSDS500/val
  photograph by name, `families.split_data`): no zoo model trains on them, so they stay a test
  no choice has seen. SR trains on T91 + BSDS500/train.
- **A piece** is `hinas train` under `train.schedule: constant`, with the weights' moving average
  (`train.ema`) validated and shipped, for `--piece` CPU-minutes, new or resumed; each appends a
  row to the run's `campaign.jsonl` (held-back PSNR per level) and the stop rule starts the decay
  phase when the curve is flat, after which the run is done.
- **The committed state** (`--save`) is `benchmarks/results/zoo/<model>/`: the run's records, its
  best weights and, while it trains, `last.pt` (under 5 MB): a run missing from `--work` starts
  from there, so a fresh clone continues every campaign.

Prints (and with `--json` writes) JSON: `{"benchmark": "zoo", "models": {name: {"phase",
"pieces", "iterations", "cpu_minutes", "held_back": {level: psnr}, "status"}}}`. With `--heldout`
(and `--bsds`), each denoiser is also scored on the family benchmark's held-back photographs
beside its classical anchor on the same noisy inputs, gray at σ 15, 25 and 50 beside BM3D (its
scores reused from the family benchmark's committed state), colour at σ 25 and 50 beside CBM3D
(`bm3d.bm3d_rgb`, measured once and committed as `cbm3d.json`): `"heldout": {σ: {"psnr",
"bm3d", "over_bm3d"}}`, where `bm3d` is the anchor's PSNR.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

if not __package__:  # run as a file, `python benchmarks/NAME.py`: the package made importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
GENOTYPES = REPO / "benchmarks" / "results" / "genotypes"
COMMITTED = REPO / "benchmarks" / "results" / "zoo"
KEPT = ("model.json", "model.safetensors", "genotype.json", "config.yaml", "metrics.jsonl",
        "campaign.jsonl", "campaign.png", "curves.png")
SIGMA_RANGE = {"sigma": [0.0, 55.0], "sigma_sampling": "uniform"}
ANCHOR_SIGMAS = {1: (15.0, 25.0, 50.0), 3: (25.0, 50.0)}
"""The noise levels of each denoiser's target against its classical anchor, by channels: BM3D
(gray), CBM3D (colour)."""
AVERAGE = "train.ema=0.999"
"""Every campaign validates, scores and ships the average of its weights (docs/training-recipes.md);
a campaign started without it takes it on its next piece."""


@dataclass(frozen=True)
class CampaignModel:
    """A campaign of the zoo: its task, whether the family decides its network (else its own
    genotype file and width multiplier), its data (`bsds`: BSDS500 without the held-back
    photographs; `sr`: T91 + BSDS500/train), the campaign run it starts from, and, for a second
    campaign of a shipped model, the family size and config overrides that make it differ (these
    win over `--size` and `--set`)."""

    name: str
    task: dict
    family: bool
    genotype: str | None = None
    width: float = 2.0
    data: str = "bsds"
    init_from: str | None = None
    size: float | None = None
    overrides: tuple[str, ...] = ()


MODELS = {m.name: m for m in (
    CampaignModel("denoise-gray-blind", {"name": "denoise", "channels": 1, **SIGMA_RANGE}, True),
    CampaignModel("denoise-gray-map", {"name": "denoise", "channels": 1, "noise_map": True,
                                       **SIGMA_RANGE}, True),
    CampaignModel("denoise-color-blind", {"name": "denoise", "channels": 3, **SIGMA_RANGE}, True),
    CampaignModel("jpeg-blind", {"name": "jpeg", "channels": 1, "quality": [10, 40]}, True),
    CampaignModel("sr-x4", {"name": "sr", "channels": 3, "scale": 4}, False, "sr_x4_cpu.json",
                  3.0, "sr"),
    CampaignModel("sr-x2", {"name": "sr", "channels": 3, "scale": 2}, False,
                  "sr_x2_cpu_from_x4.json", 3.0, "sr", init_from="sr-x4"),
    # the ×2.2 gray campaign flattened below BM3D by 0.1-0.3 dB: the colour campaign's width
    CampaignModel("denoise-gray-blind-wide", {"name": "denoise", "channels": 1, **SIGMA_RANGE},
                  True, size=3.0),
    # sr-x4's 48-pixel crops are 12 low-resolution pixels: 2.25 times the context (72 fits T91's
    # smallest image, 78 pixels), half the batch, from the finished campaign's weights (a quick
    # answer to whether context holds it back)
    CampaignModel("sr-x4-crop72", {"name": "sr", "channels": 3, "scale": 4}, False,
                  "sr_x4_cpu.json", 3.0, "sr", init_from="sr-x4",
                  overrides=("train.crop=72", "train.batch_size=8")),
)}


def network(model: CampaignModel, family: str | None, size: float | None = None):
    """(genotype or None, arch, build options) of `model`'s network; a family's network at
    `size` (its width multiplier, or an FFDNet-like network's width), else at the size the
    family benchmark matched."""
    from benchmarks.families import FAMILIES, family_genotype, matched_size, options
    from hinas.config import TaskConfig
    from hinas.space.genotype import Genotype

    task = TaskConfig(**model.task)
    if not model.family:
        genotype = Genotype.load(GENOTYPES / model.genotype)
        return (dataclasses.replace(genotype, task=task), "hinas",
                {"width_multiplier": model.width})
    if family is None:
        raise SystemExit(f"zoo: {model.name} is built from the chosen family: give --family")
    chosen = dataclasses.replace(FAMILIES[family], noise_map=False)
    genotype = family_genotype(chosen)
    if genotype is not None:  # the genotype's cells, for this task (the model adds a map)
        genotype = dataclasses.replace(genotype, task=TaskConfig(**{**model.task,
                                                                    "noise_map": False}))
    return genotype, chosen.arch, options(chosen, size or matched_size(chosen))


def data_folders(model: CampaignModel, args: argparse.Namespace) -> list[str]:
    """The training folders of `model`."""
    from benchmarks.families import split_data

    if model.data == "sr":
        if not args.t91:
            raise SystemExit(f"zoo: {model.name} trains on T91 + BSDS500/train: give --t91 DIR")
        return [str(args.t91), str(Path(args.bsds) / "train")]
    train, _ = split_data(Path(args.bsds), Path(args.work))
    return [str(train)]


def train_piece(model: CampaignModel, args: argparse.Namespace) -> Path:
    """One piece of `model`'s campaign (the first one starts it); its run folder."""
    import hinas
    from benchmarks.families import run_folder
    from hinas.config import resolve

    out = run_folder(Path(args.work), model.name, Path(args.committed))
    if phase(out) == "done":
        return out
    resume = (out / "last.pt").exists()
    if resume:
        cfg = resolve(model.task["name"], config_file=out / "config.yaml", overrides=[AVERAGE])
        hinas.train(cfg, data_folders(model, args), out, resume=True, quiet=True,
                    budget_seconds=args.piece * 60, budget_clock="cpu")
        return out
    genotype, arch, build = network(model, args.family, model.size or args.size)
    task = dict(model.task)
    cfg = resolve(task.pop("name"), "cpu", task=task, seed=args.seed,
                  overrides=["train.schedule=constant", "train.val_every=1000", AVERAGE,
                             *args.overrides, *model.overrides])
    init = (str(run_folder(Path(args.work), model.init_from, Path(args.committed)))
            if model.init_from else None)
    hinas.train(cfg, data_folders(model, args), out, genotype, arch=arch, quiet=True,
                options=build, budget_seconds=args.piece * 60, budget_clock="cpu",
                init_from=init)
    return out


def phase(out: Path) -> str | None:
    """Where a campaign stands: None (not started), else the phase of its last row."""
    from hinas.runtime.campaign import CampaignLog

    rows = CampaignLog(out).read()
    return rows[-1]["phase"] if rows else None


def save_state(work: Path, committed: Path, names: Iterable[str] = tuple(MODELS)) -> None:
    """Copy the state of the campaigns `names` into `committed`: the files of KEPT, and
    last.pt until done. Only the campaigns this process trains: another process may be
    writing the others."""
    from benchmarks.harness import copy_state

    for name in names:
        out = work / name
        if not out.is_dir():
            continue
        copy_state(out, committed / name, KEPT, {"last.pt": phase(out) != "done"})


def anchor_scores(work: Path, committed: Path, channels: int) -> dict[str, float]:
    """The classical anchor's held-back PSNR at every σ of ANCHOR_SIGMAS[channels], on the same
    noisy inputs as the networks' (the test noise is seeded by file name): BM3D for gray
    (reused from the family benchmark's committed state when it held back the same
    photographs), CBM3D (`bm3d.bm3d_rgb`) for colour, measured once and kept in `committed`
    with the photographs' names, since it takes about 20 s a photograph."""
    import json

    from benchmarks.families import COMMITTED as FAMILIES
    from benchmarks.families import bm3d_scores
    from hinas.config import TaskConfig
    from hinas.io import atomic_write_text
    from hinas.jobs.evaluate import evaluate_model, load_test_images

    names = sorted(p.name for p in (work / "data" / "heldout").iterdir())
    if channels == 1:
        report = FAMILIES.parent / "families_partial.json"
        if not (work / "bm3d.json").exists() and report.exists() and \
                json.loads(report.read_text()).get("heldout") == names:
            shutil.copy2(FAMILIES / "bm3d.json", work / "bm3d.json")
        return bm3d_scores(work)
    cache = committed / "cbm3d.json"
    if cache.exists() and json.loads(cache.read_text())["heldout"] == names:
        return json.loads(cache.read_text())["psnr"]
    images = load_test_images(work / "data" / "heldout", channels)[0]
    scores = {str(s): evaluate_model("bm3d", TaskConfig(sigma=[s], channels=channels), images,
                                     quiet=True).mean["psnr"] for s in ANCHOR_SIGMAS[channels]}
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cache, json.dumps({"heldout": names, "psnr": scores}, indent=1) + "\n")
    return scores


def heldout(out: Path, work: Path, committed: Path) -> dict:
    """The held-back photographs' PSNR of the denoiser campaign in `out` at every σ of its
    target, beside the classical anchor's on the same noisy inputs (`anchor_scores`)."""
    import hinas
    from hinas.jobs.evaluate import evaluate_model, load_test_images

    model = hinas.load_model(out)
    task = model.built_for.at_evaluation()
    anchor = anchor_scores(work, committed, task.channels)
    images = load_test_images(work / "data" / "heldout", task.channels)[0]
    rows = {}
    for sigma in ANCHOR_SIGMAS[task.channels]:
        psnr = evaluate_model(model, dataclasses.replace(task, sigma=[sigma]), images,
                              quiet=True).mean["psnr"]
        rows[str(sigma)] = {"psnr": round(psnr, 4), "bm3d": round(anchor[str(sigma)], 4),
                            "over_bm3d": round(psnr - anchor[str(sigma)], 4)}
    return rows


def status(work: Path, committed: Path) -> dict:
    """The JSON summary of every campaign in `work` (else in `committed`)."""
    from hinas.runtime.campaign import CampaignLog

    models = {}
    for name in MODELS:
        out = work / name if (work / name).is_dir() else committed / name
        rows = CampaignLog(out).read()
        if not rows:
            continue
        last = rows[-1]
        models[name] = {"phase": last["phase"], "pieces": len(rows) - 1,
                        "iterations": last.get("iter"), "cpu_minutes": last.get("cpu_minutes"),
                        "held_back": last.get("psnr"), "status": last.get("status")}
    return {"benchmark": "zoo", "models": models}


def main(argv: list[str] | None = None) -> dict:
    """Train the asked pieces, save, and print the campaigns' state."""
    from benchmarks.families import run_folder, split_data
    from benchmarks.harness import emit
    from hinas.errors import HinasError

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bsds", help="BSDS500 folder (train/, val/)")
    p.add_argument("--t91", help="T91 folder (the SR models)")
    p.add_argument("--work", default="runs/zoo", help="campaign run folders")
    p.add_argument("--family", help="the family the same-size models are built from")
    p.add_argument("--size", type=float, default=None,
                   help="the family's width multiplier (FFDNet-like: width) for new campaigns "
                        "(default: the size the family benchmark matched)")
    p.add_argument("--model", nargs="+", choices=sorted(MODELS), default=[],
                   help="models to train a piece of, in this order")
    p.add_argument("--piece", type=float, default=30.0, help="CPU-minutes per piece")
    p.add_argument("--pieces", type=int, default=1, help="pieces per model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override of new campaigns (e.g. the tiny preset's sizes)")
    p.add_argument("--committed", default=str(COMMITTED), help="the committed campaign states")
    p.add_argument("--save", action="store_true", help="write the state there (commit it)")
    p.add_argument("--status", action="store_true", help="print the campaigns' state only")
    p.add_argument("--heldout", action="store_true",
                   help="score the gray denoisers on the held-back photographs beside BM3D")
    p.add_argument("--json")
    args = p.parse_args(argv)
    work = Path(args.work)
    if args.model and not args.bsds:
        raise SystemExit("zoo: give --bsds DIR")
    for name in args.model:
        for _ in range(args.pieces):
            try:
                train_piece(MODELS[name], args)
            except HinasError as err:  # bad input: one line, naming the file and the problem
                raise SystemExit(f"zoo: {name}: {err}") from None
            if args.save:  # after every piece: a stopped session keeps what it trained
                save_state(work, Path(args.committed), [name])
    if args.save and not args.model:  # nothing trained now: save what --work holds
        save_state(work, Path(args.committed))
    summary = status(work, Path(args.committed))
    if args.heldout:
        if not args.bsds:
            raise SystemExit("zoo: --heldout needs --bsds DIR (the held-back photographs)")
        split_data(Path(args.bsds), work)
        for name in summary["models"]:
            if MODELS[name].task["name"] == "denoise":
                summary["models"][name]["heldout"] = heldout(
                    run_folder(work, name, Path(args.committed)), work, Path(args.committed))
    emit(summary, args.json)
    return summary


if __name__ == "__main__":
    main()
