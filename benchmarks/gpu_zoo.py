"""Train the pretrained zoo on one CUDA GPU in one short batch job, and bring back one archive.

The job this is made for: 15 minutes of one GPU in all (its start-up included), at most 10
minutes a command, no package index, an upload of the source tree of tens of MiB, and a handful
of result files brought back. So:

- It runs from the source tree, `PYTHONPATH=src python benchmarks/gpu_zoo.py`: nothing is
  installed (pypng, the one package such a machine may lack, is needed only for 16-bit RGB PNG,
  which the zoo never reads or writes).
- The data travels inside the tree: `--stage SRC` copies the folders the models train and are
  scored on (BSDS500, T91; Set5, Set12, Set14 for the cards) from SRC into `data/`, which git
  ignores (carry it).
- One command of at most `--minutes` in all (8.5 by default, within a 10-minute command and a
  15-minute job). The models share the time left as they come. Each trains through `hinas train`
  in pieces (`train.schedule: constant`, whose loop stops on the wall clock): a constant-rate
  piece of `CONSTANT_SHARE` of its share, then the decay phase (`--resume --set
  train.decay_from=1`: it starts at once and lasts a fifth of the iterations before it), so
  that the model ends done within its share. `--campaign` trains one constant piece per model
  and job instead, and leaves the decay to the campaign's stop rule (docs/training-recipes.md).
- At the recipe `GPU_SETTINGS` and widths `ZooModel.width`, sized for the GPU: batch 128
  (tiny networks at batch 24 leave an H200 launch-bound, nearly idle), node widths × 4 (× 3 for
  SR, whose checkpoint then stays under 5 MB), 64 px crops, and the `cpu` preset's AdamW
  recipe, which beat the paper's SGD by 0.5 dB (docs/training-recipes.md). fp32, whose
  convolutions cuDNN runs in TF32 (its autotuner stays off: the cards score images of many
  sizes, each of which it would time anew); 12 loader workers.
- After every model: its card (`benchmarks/pretrained.py`, scored on the GPU; BM3D, too slow for
  the job, is left out beside the denoisers) in `RUN/card/`, then one archive
  `$OUT/gpu_zoo.tar.gz` of every run folder, card and `gpu_zoo.json` (the plan and results),
  and `$OUT/gpu_zoo.json` beside it. A finished run's `last.pt` stays out of the archive (it
  has nothing left to train); an unfinished one's goes in, so that another job continues it.
- A failing model is recorded (`error`) and the zoo goes on. Nothing is erased: a rerun
  continues every run folder under `--runs` (`--resume-from ARCHIVE` first unpacks an earlier
  job's archive there), skipping finished models.
- `--dry-run` checks all of it on the CPU, without a GPU, in about 40 s of one core: it reads
  every image of every data folder, runs every model's commands for one iteration a piece at a
  small batch, writes every card from one test image and packs the archive.

`--family F [--size S]` builds the models the family decides (the denoisers and JPEG) from one
family of `benchmarks/families.py` at its width multiplier S, as `benchmarks/zoo.py` does on the
CPU (e.g. `--family resolution-macs --size 2.2`, the CPU campaign's network); without it they
keep the shipped genotypes at the GPU widths below.

No model trains on the BSDS500/val photographs the project holds back (`families.photographs`):
the staged training folder `BSDS500-kept` leaves them out.

The zoo (`ZOO`), in training order: `denoise-gray-blind` (σ uniform in 0–55, BSDS500),
`denoise-color-blind` (its genotype on RGB images), `sr-x4` (T91 + BSDS500 train), `sr-x2` (the
×4 search's cells with a ×2 tail, started from this run's `sr-x4`), `jpeg-blind` (quality
uniform in 10–40, BSDS500). Bringing the models into the package: docs/pretrained-models.md.

Example (in the job): PYTHONPATH=src python benchmarks/gpu_zoo.py --out "$OUT"
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
from contextlib import redirect_stderr
from dataclasses import dataclass
from pathlib import Path

if not __package__:  # run as a file, `python benchmarks/NAME.py`: the package made importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
GENOTYPES = REPO / "benchmarks" / "results" / "genotypes"
SHIPPED = REPO / "src" / "hinas" / "weights"
DATA = REPO / "data"
RUNS = REPO / "runs" / "gpu-zoo"
ARCHIVE, SUMMARY = "gpu_zoo.tar.gz", "gpu_zoo.json"
ARCHIVE_LIMIT = 16 * 2**20
"""The largest file a job brings back."""
UPLOAD_LIMIT = 64 * 2**20
"""The most a job's upload holds: the source tree and the carried folders together."""
CONSTANT_SHARE = 0.7
"""Share of a model's time for its constant-rate piece; the rest runs the decay (a fifth of the
iterations of the constant piece), the two pieces' start-up and the end of each."""
MIN_PIECE_SECONDS = 15.0
"""A model left less time than this is skipped (recorded), not started."""
CARD_SECONDS = 25.0
"""Time kept for a model's card and the archive before the first card is timed."""
GPU_SETTINGS = {"train.schedule": "constant", "train.batch_size": 128, "train.crop": 64,
                "train.val_every": 1000}
"""Overrides of the `cpu` preset (AdamW lr 1e-3, warm-up, no clipping, MSE + SSIM,
channels-last) for the GPU; the width is per model."""
GPU_OPTIONS = ("--preset", "cpu", "--device", "cuda", "--workers", "12")
SMOKE_OPTIONS = ("--preset", "cpu", "--device", "cpu", "--workers", "0")
SMOKE_SETTINGS = {"train.batch_size": 2, "train.max_images": 4, "train.val_crop": 48}
"""What the dry run changes to train on the CPU in seconds (one iteration a piece)."""


@dataclass(frozen=True)
class ZooModel:
    """A model of the zoo: the task options and genotype of its `hinas train` command, its
    training folders and the test sets of its card (benchmarks/pretrained.py; both under the
    data folder), node-width multiplier on the GPU, the run of this zoo it starts from
    (fine-tuning), and the words of its card."""

    name: str
    task: tuple[str, ...]
    genotype: Path
    data: tuple[str, ...]
    tests: tuple[str, ...]
    width: float
    description: str
    genotype_source: str
    train_data: str
    init_from: str | None = None


DENOISE_SEARCH = ("the σ=50 gray denoising search of `hinas search --preset cpu` "
                  "(benchmarks/results/genotypes/denoise_sigma50_cpu.json)")
SR_SEARCH = ("the ×4 SR search of `hinas search --preset cpu` "
             "(benchmarks/results/genotypes/sr_x4_cpu.json)")
KEPT_BSDS = "BSDS500-kept"
"""BSDS500 train + val without the photographs the project holds back (`families.photographs`), as
staged: what the zoo trains on."""
BSDS_GRAY = ("BSDS500 train + val without the 20 held-back photographs (280, converted to gray; 6 "
             "held back for validation)")
ZOO = {m.name: m for m in (
    ZooModel("denoise-gray-blind", ("--sigma", "0:55", "--channels", "1"),
             SHIPPED / "denoise-gray-blind" / "genotype.json", (KEPT_BSDS,), ("Set12",), 4.0,
             "Blind gray denoiser: one network for any Gaussian noise level σ in 0–55.",
             DENOISE_SEARCH, BSDS_GRAY + ", σ uniform in 0–55 per crop"),
    ZooModel("denoise-color-blind", ("--sigma", "0:55", "--channels", "3"),
             GENOTYPES / "denoise_color_blind_from_gray.json", (KEPT_BSDS,), ("Set5",), 4.0,
             "Blind colour denoiser: one network for any Gaussian noise level σ in 0–55, on "
             "RGB images.", DENOISE_SEARCH + ", its stem and tail set to 3 channels",
             "BSDS500 train + val without the 20 held-back photographs (280 RGB; 6 held back "
             "for validation), σ uniform in 0–55 per "
             "crop"),
    ZooModel("sr-x4", ("--scale", "4"), SHIPPED / "sr-x4" / "genotype.json",
             ("T91", f"{KEPT_BSDS}/train"), ("Set5", "Set14"), 3.0,
             "×4 super-resolution (bicubic degradation).", SR_SEARCH,
             "T91 + BSDS500 train (291 RGB images), 64 px HR crops"),
    ZooModel("sr-x2", ("--scale", "2"), SHIPPED / "sr-x2" / "genotype.json",
             ("T91", f"{KEPT_BSDS}/train"), ("Set5", "Set14"), 3.0,
             "×2 super-resolution (bicubic degradation), fine-tuned from this zoo's sr-x4.",
             SR_SEARCH + " with a ×2 tail (sr_x2_cpu_from_x4.json)",
             "T91 + BSDS500 train (291 RGB images), 64 px HR crops", init_from="sr-x4"),
    ZooModel("jpeg-blind", ("--task", "jpeg", "--quality", "10:40", "--channels", "1"),
             SHIPPED / "jpeg-blind" / "genotype.json", (KEPT_BSDS,), ("Set12",), 4.0,
             "Blind JPEG artefact removal: one network for any quality in 10–40.",
             DENOISE_SEARCH + ", task set to JPEG artefact removal "
             "(jpeg_q10-40_cpu_from_denoise.json)",
             BSDS_GRAY + ", each crop JPEG-encoded at a quality drawn uniformly from 10–40"),
)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    from benchmarks.families import FAMILIES

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(DATA), metavar="DIR",
                   help="folder holding BSDS500, T91, Set5, Set12, Set14 (default: data/)")
    p.add_argument("--runs", default=str(RUNS), metavar="DIR",
                   help="run folders (default: runs/gpu-zoo; continued by a rerun)")
    p.add_argument("--out", metavar="DIR",
                   help="the archive goes here (default: $OUT; a dry run's: a temporary one)")
    p.add_argument("--minutes", type=float, default=8.5, help="the whole command's time")
    p.add_argument("--models", default=",".join(ZOO), help=f"of {', '.join(ZOO)}")
    p.add_argument("--campaign", action="store_true",
                   help="one constant piece per model; the stop rule starts the decay")
    p.add_argument("--resume-from", metavar="ARCHIVE",
                   help="unpack an earlier job's archive into --runs first")
    p.add_argument("--stage", metavar="SRC",
                   help="copy the data folders of --models from SRC into --data, and stop")
    p.add_argument("--dry-run", action="store_true",
                   help="check everything on the CPU in seconds; train nothing")
    p.add_argument("--family", choices=[name for name, f in FAMILIES.items()
                                        if f.arch == "hinas" and not f.noise_map],
                   help="build the models the family decides (denoising, JPEG) from this "
                        "family of benchmarks/families.py, as benchmarks/zoo.py does (default: "
                        "the shipped genotypes)")
    p.add_argument("--size", type=float,
                   help="with --family: its width multiplier (default: the size the family "
                        "benchmark matched)")
    args = p.parse_args(argv)
    asked = args.models.split(",")
    unknown = [m for m in asked if m not in ZOO]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(ZOO)}")
    args.models = [ZOO[m] for m in ZOO if m in asked]  # the zoo's order: sr-x4 before sr-x2
    if args.family:
        args.models = [with_family(m, args.family, args.size, Path(args.data))
                       for m in args.models]
    names = [m.name for m in args.models]
    if "sr-x2" in names and "sr-x4" not in names and not (Path(args.runs) / "sr-x4").is_dir():
        p.error("sr-x2 starts from this zoo's sr-x4: train both")
    if not (args.stage or args.dry_run):
        args.out = args.out or os.environ.get("OUT")
        if not args.out:
            p.error("give --out DIR (or set $OUT): where the archive goes")
    return args


def with_family(model: ZooModel, family: str, size: float | None, data: Path) -> ZooModel:
    """`model` built from `family` where the family decides its network (the network
    `benchmarks/zoo.py` trains for it, its genotype written into `data/genotypes/`, which
    travels with the data); else `model` itself."""
    from benchmarks.families import FAMILIES
    from benchmarks.zoo import MODELS, network

    if model.name not in MODELS or not MODELS[model.name].family:
        return model
    genotype, _, build = network(MODELS[model.name], family, size)
    path = data / "genotypes" / f"{model.name}-{family}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    genotype.save(path)
    return dataclasses.replace(
        model, genotype=path, width=build["width_multiplier"],
        genotype_source=f"the `{family}` family of benchmarks/families.py "
                        f"(benchmarks/results/genotypes/{FAMILIES[family].genotype})")


def data_folders(models: list[ZooModel]) -> list[str]:
    """The top folders of the data folder that `models` train and are scored on."""
    return sorted({d.split("/")[0] for m in models for d in (*m.data, *m.tests)})


def source_name(folder: str) -> str:
    """The folder of the shared data a staged folder comes from."""
    return "BSDS500" if folder == KEPT_BSDS else folder


def keep_bsds(bsds: Path, kept: Path) -> None:
    """Copy BSDS500's train and val photographs into `kept`, leaving out the held-back ones."""
    from benchmarks.families import photographs

    train, val, _ = photographs(bsds)
    for split, paths in (("train", train), ("val", val)):
        (kept / split).mkdir(parents=True, exist_ok=True)
        for path in paths:
            shutil.copy2(path, kept / split / path.name)


def stage(source: str | Path, data: str | Path, models: list[ZooModel]) -> int:
    """Copy the data folders of `models` from `source` into `data` (BSDS500 without its
    held-back photographs); returns the bytes copied."""
    source, data = Path(source), Path(data)
    folders = data_folders(models)
    missing = sorted({source_name(n) for n in folders if not (source / source_name(n)).is_dir()})
    if missing:
        raise SystemExit(f"gpu_zoo: {source} lacks {', '.join(missing)}")
    total = 0
    for name in folders:
        if name == KEPT_BSDS:
            keep_bsds(source / "BSDS500", data / name)
        else:
            shutil.copytree(source / name, data / name, dirs_exist_ok=True)
        size = sum(f.stat().st_size for f in (data / name).rglob("*") if f.is_file())
        total += size
        print(f"staged {name}: {size / 2**20:.1f} MiB")
    print(f"{data}: {total / 2**20:.1f} MiB of the job's {UPLOAD_LIMIT // 2**20} MiB upload "
          f"(with the source tree); git ignores it, so name it among the carried folders")
    return total


def train_argv(model: ZooModel, args: argparse.Namespace, piece: str, length: str,
               smoke: bool) -> list[str]:
    """The `hinas train` arguments of a piece: `new` (the whole recipe), `constant` (a resumed
    constant-rate piece) or `decay` (a resumed piece that starts the decay at once); `length`
    is `--budget Ns` or `--iters N`."""
    out = Path(args.runs) / model.name
    if piece == "new":
        settings = {**GPU_SETTINGS, "train.width_multiplier": model.width,
                    **(SMOKE_SETTINGS if smoke else {})}
        argv = ["train", *model.task, "--genotype", str(model.genotype),
                *(SMOKE_OPTIONS if smoke else GPU_OPTIONS),
                *(a for k, v in settings.items() for a in ("--set", f"{k}={v}")),
                "--data", *(str(Path(args.data) / d) for d in model.data), "--out", str(out)]
        if model.init_from:
            argv += ["--init-from", str(Path(args.runs) / model.init_from)]
    else:
        argv = ["train", "--out", str(out), "--resume"]
        if piece == "decay":
            argv += ["--set", "train.decay_from=1"]
    return [*argv, *length.split(), "--quiet"]


def portable_command(argv: list[str]) -> str:
    """The shell command of `argv`, paths relative to the repository root."""
    from benchmarks.harness import portable

    return "hinas " + " ".join(portable(a) for a in argv)


class Tee(io.TextIOBase):
    """A text stream that writes to `stream` and keeps a copy."""

    def __init__(self, stream):
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.stream.write(text)


def run_hinas(argv: list[str]) -> str | None:
    """Run `hinas` with `argv` in this process; None on success, else its error in one line."""
    from hinas.cli import main

    tee = Tee(sys.stderr)
    try:
        with redirect_stderr(tee):
            status = main(argv)
    except SystemExit as stop:  # argparse
        status = stop.code
    except Exception as err:  # a CUDA error, out of memory, ...: this model fails, not the zoo
        return f"{type(err).__name__}: {err}".splitlines()[0]
    if status:
        said = [ln for ln in tee.copy.getvalue().splitlines() if ln.startswith("hinas: ")]
        return said[-1] if said else f"hinas exited with status {status}"
    return None


def iterations_done(run: Path) -> int:
    """The iterations of the run in `run` at the end of its last piece (0 if none)."""
    from hinas.runtime.campaign import CampaignLog

    rows = CampaignLog(run).read()
    return rows[-1]["iter"] if rows else 0


def campaign_phase(run: Path) -> str | None:
    """Where the run in `run` stands: None (not started), `start`, `train`, `decay`, `done`."""
    from hinas.runtime.campaign import CampaignLog

    if not (run / "last.pt").exists():
        return None
    rows = CampaignLog(run).read()
    return rows[-1]["phase"] if rows else "start"


def pieces_to_train(phase: str | None, campaign: bool) -> list[str]:
    """The pieces a model trains in this job, given its run's phase."""
    if phase == "done":
        return []
    first = "new" if phase is None else "constant"
    if campaign:
        return [first]
    return ["decay"] if phase in ("train", "decay") else [first, "decay"]


def write_card(model: ZooModel, args: argparse.Namespace, commands: list[str],
               smoke: bool) -> dict:
    """Score the trained model of `model` and write its card (pretrained.json, card.md and the
    files of a shipped model) into `RUN/card`; the card's headline numbers."""
    from benchmarks import pretrained
    from benchmarks.harness import device

    run = Path(args.runs) / model.name
    card = run / "card"
    where = "cpu" if smoke else "cuda"
    argv = ["--run", str(run), "--name", model.name, "--data", str(args.data), "--dest",
            str(card), "--device", where, "--description", model.description,
            "--genotype-source", model.genotype_source, "--command", " && ".join(commands),
            "--train-data", model.train_data, "--recipe", recipe_words(model),
            "--machine", device(where), "--limits", LIMITS,
            "--threads", "1" if smoke else str(os.cpu_count() or 1),
            "--repeats", "1" if smoke else "5"]
    if smoke:
        argv += ["--test-count", "1"]
    if model.name.startswith("denoise"):
        argv.append("--no-baseline")  # BM3D: minutes on the CPU
    shutil.rmtree(card, ignore_errors=True)  # its files may be links into the run folder
    info = pretrained.package(pretrained.parse_args(argv))
    for name in ("model.safetensors", info.get("curve_plot")):  # the same bytes: hard links,
        if name and (card / name).exists() and (run / name).exists():  # stored once in the archive
            (card / name).unlink()
            os.link(run / name, card / name)
    return {"results": [{k: r[k] for k in r if k in ("test", "sigma", "quality", "scale",
                                                      "psnr", "ssim", "baseline_psnr")}
                        for r in info["results"]]}


LIMITS = ("Trained for minutes on one GPU in one short batch job, far from the paper's hours; "
          "the learning rate is the CPU recipe's, not tuned for batch 128.")


def recipe_words(model: ZooModel) -> str:
    """The card's recipe line."""
    return (f"the cpu preset's (AdamW lr 1e-3, 50 warm-up iterations, loss MSE + "
            f"0.6·log10(1/SSIM), no gradient clipping), constant rate then a cosine decay to "
            f"1e-5 over a fifth of the iterations before it, batch 128, 64 px crops, node widths "
            f"× {model.width:g}, fp32 (TF32 convolutions), channels-last")


def train_model(model: ZooModel, args: argparse.Namespace, entry: dict, share: float,
                smoke: bool) -> bool:
    """Train the pieces of `model` for this job within `share` seconds (smoke: one iteration a
    piece), recording commands, pieces and any error in `entry`; whether any piece ran."""
    run = Path(args.runs) / model.name
    pieces = pieces_to_train(campaign_phase(run), args.campaign)
    if not pieces:
        entry["note"] = "done in an earlier job"
        return False
    if model.init_from and "new" in pieces and not (
            Path(args.runs) / model.init_from / "model.safetensors").exists():
        entry["error"] = f"not started: {model.init_from}, which it starts from, has no model"
        return False
    ends, done = time.monotonic() + share, iterations_done(run)
    for k, piece in enumerate(pieces):
        if smoke:
            length = f"--iters {done + k + 1}"
        else:
            left = ends - time.monotonic()
            seconds = left * CONSTANT_SHARE if k < len(pieces) - 1 else left
            if seconds < MIN_PIECE_SECONDS:
                entry["error"] = f"{piece} piece not started: {seconds:.0f} s left"
                return k > 0
            length = f"--budget {seconds:.0f}s"
        argv = train_argv(model, args, piece, length, smoke)
        started = time.monotonic()
        error = run_hinas(argv)
        entry.setdefault("pieces", []).append(
            {"piece": piece, "command": portable_command(argv),
             "seconds": round(time.monotonic() - started, 1), **({"error": error} if error
                                                                    else {})})
        if error:
            entry["error"] = error
            break
    return True


def pieces_done(entry: dict) -> list[dict]:
    """The pieces of `entry` that ended without an error."""
    return [p for p in entry.get("pieces", []) if "error" not in p]


def summarise_run(model: ZooModel, args: argparse.Namespace, entry: dict) -> None:
    """Add the run's iterations, best validation PSNR, time and campaign to `entry`."""
    path = Path(args.runs) / model.name / "model.json"
    if not path.exists():
        return
    meta = json.loads(path.read_text())["meta"]
    if "iterations" in meta:
        entry.update(iterations=meta["iterations"], best_val_psnr=meta["best_val_psnr"],
                     train_minutes=round(meta["train_seconds"] / 60, 2),
                     campaign=meta.get("campaign", {}).get("status"))


def pack(runs: Path, out: Path) -> dict:
    """Write `out/ARCHIVE` (atomically): every run folder and card under `runs` and the summary,
    without the `last.pt` of finished runs; if that is over `ARCHIVE_LIMIT`, without any
    `last.pt` (named in `left_out`)."""
    finished = {p.name for p in runs.iterdir() if p.is_dir() and campaign_phase(p) == "done"}
    for drop_all in (False, True):
        left_out = []

        def keep(info: tarfile.TarInfo, drop_all=drop_all, left_out=left_out):
            parts = Path(info.name).parts
            if parts[-1] == "last.pt" and (drop_all or parts[1] in finished):
                left_out.append(info.name)
                return None
            return None if parts[-1] == ".hinas.lock" else info

        tmp = out / f".{ARCHIVE}.tmp"
        with tarfile.open(tmp, "w:gz") as tar:
            tar.add(runs, arcname=runs.name, filter=keep)
        size = tmp.stat().st_size
        if size <= ARCHIVE_LIMIT:
            break
    tmp.replace(out / ARCHIVE)
    unfinished = [n for n in left_out if Path(n).parts[1] not in finished]
    return {"file": ARCHIVE, "bytes": size, "last_pt_left_out": unfinished,
            **({"warning": f"over {ARCHIVE_LIMIT // 2**20} MiB with every checkpoint: "
                           f"unfinished runs cannot be continued"} if unfinished else {})}


def check_data(models: list[ZooModel], data: Path) -> dict[str, int]:
    """Decode every image of every folder the models train on or are scored on; images per
    folder. SystemExit naming what is missing or unreadable."""
    from hinas.errors import HinasError
    from hinas.jobs.evaluate import load_test_images

    folders = data_folders(models)
    missing = [f for f in folders if not (data / f).is_dir()]
    if missing:
        raise SystemExit(f"gpu_zoo: {data} lacks {', '.join(missing)}; stage them with "
                         f"--stage SRC")
    counts = {}
    for folder in folders:
        try:  # an unreadable image is an error naming it
            counts[folder] = len(load_test_images(data / folder, 3)[0])
        except HinasError as err:
            raise SystemExit(f"gpu_zoo: {err}") from None
    return counts


def run_zoo(args: argparse.Namespace, smoke: bool) -> dict:
    """Train (smoke: check) every model of `args.models`, card and pack after each; returns the
    summary (also written as `SUMMARY` into the runs folder and `args.out`)."""
    from benchmarks.harness import device

    started = time.monotonic()
    deadline = started + args.minutes * 60
    runs, out = Path(args.runs), Path(args.out)
    runs.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    if args.resume_from:
        with tarfile.open(args.resume_from) as tar:
            tar.extractall(runs.parent, filter="data")
    path = runs / SUMMARY
    summary = json.loads(path.read_text()) if path.exists() else {"models": {}}
    if not (Path(args.data) / KEPT_BSDS).is_dir() and (Path(args.data) / "BSDS500").is_dir():
        keep_bsds(Path(args.data) / "BSDS500", Path(args.data) / KEPT_BSDS)
    summary.update(benchmark="gpu_zoo", minutes=args.minutes, campaign=args.campaign,
                   settings=GPU_SETTINGS, options=list(GPU_OPTIONS), smoke=smoke,
                   device=device("cpu" if smoke else "cuda"),
                   data=check_data(args.models, Path(args.data)))
    card_seconds = CARD_SECONDS
    for k, model in enumerate(args.models):
        entry = summary["models"].setdefault(model.name, {})
        entry.pop("error", None)
        share = (deadline - time.monotonic()) / (len(args.models) - k) - card_seconds
        trained = train_model(model, args, entry, share, smoke)
        summarise_run(model, args, entry)
        started_card = time.monotonic()
        if (runs / model.name / "model.safetensors").exists() and (
                trained or not (runs / model.name / "card").exists()):
            commands = [p["command"] for p in pieces_done(entry)]
            try:
                entry["card"] = write_card(model, args, commands, smoke)
            except Exception as err:  # noqa: BLE001 - recorded; the zoo goes on
                entry["card_error"] = f"{type(err).__name__}: {err}".splitlines()[0]
        path.write_text(json.dumps(summary, indent=1) + "\n")
        summary["archive"] = pack(runs, out)
        card_seconds = time.monotonic() - started_card
        print(f"gpu_zoo: {model.name}: " + describe(entry), flush=True)
    summary["seconds"] = round(time.monotonic() - started, 1)
    text = json.dumps(summary, indent=1) + "\n"
    path.write_text(text)
    summary["archive"] = pack(runs, out)
    (out / SUMMARY).write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def describe(entry: dict) -> str:
    """One line on a model's entry."""
    parts = []
    if "iterations" in entry:
        parts.append(f"{entry['iterations']:,} iterations, best validation PSNR "
                     f"{entry['best_val_psnr']:.2f} dB; {entry.get('campaign')}")
    for key in ("note", "error", "card_error"):
        if key in entry:
            parts.append(f"{key}: {entry[key]}")
    return "; ".join(parts) or "nothing trained"


def main(argv: list[str] | None = None) -> dict:
    """Stage the data, check the zoo (`--dry-run`, on the CPU) or train it on CUDA."""
    args = parse_args(argv)
    if args.stage:
        return {"staged_bytes": stage(args.stage, args.data, args.models)}
    import torch

    if args.dry_run:
        for model in args.models:  # what the job will run (each budget set as it goes)
            print(f"{model.name}: " + " && ".join(
                portable_command(train_argv(model, args, piece, "--budget Ns", False))
                for piece in pieces_to_train(None, args.campaign)))
        with tempfile.TemporaryDirectory() as tmp:
            args.runs = str(Path(tmp) / "gpu-zoo")
            args.out = args.out or str(Path(tmp) / "out")
            summary = run_zoo(args, smoke=True)
        failed = {n: e for n, e in summary["models"].items() if "error" in e or "card_error" in e}
        if failed:
            raise SystemExit("gpu_zoo: dry run failed: " + "; ".join(
                f"{n}: {describe(e)}" for n, e in failed.items()))
        print(f"gpu_zoo: dry run passed: {len(summary['models'])} models, data "
              f"{summary['data']}, archive of {summary['archive']['bytes']:,} bytes")
        return summary
    if not torch.cuda.is_available():
        raise SystemExit("gpu_zoo: no CUDA device here; this script trains the zoo on a GPU "
                         "only (--dry-run checks it on the CPU)")
    return run_zoo(args, smoke=False)


if __name__ == "__main__":
    main(sys.argv[1:])
