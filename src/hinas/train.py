"""Training a network on a folder of images (paper §4.1 "Training settings"; docs/decisions.md §3).

- Optimiser: SGD (momentum `train.momentum`, weight decay `train.weight_decay`) from `train.lr`
  (paper: 0.05, batch 24), gradients clipped to norm `train.grad_clip`.
- Schedule, stepped every iteration: `cosine` (default) anneals the rate from `train.lr` to
  `train.lr_min` over `train.iters` iterations (half a cosine period); `step` multiplies it by 0.1
  at 50 % and again at 75 % of the iterations.
- Batches: `train.batch_size` random `train.crop`×`train.crop` crops (HR crops for SR) with
  rotations by k·90° and horizontal/vertical flips (:class:`hinas.data.PatchDataset`). The batch of
  iteration `t` is "epoch" `t` of the patch dataset, so every batch is a pure function of
  (seed, t) and a resumed run reproduces an uninterrupted one exactly.
- Validation: the images are split with :func:`hinas.data.split_images` (`train.val_fraction`);
  the Validation part is held back from training and scored (PSNR/SSIM under the task's
  convention, central `train.val_crop` crops; 0 = whole images) every `train.val_every`
  iterations and at the end. The weights with the best validation PSNR are the trained model.

Run folder: `config.yaml`, `model.json` + `genotype.json` (what is trained, see
:mod:`hinas.models`), `model.safetensors` (best weights so far), `last.pt` (model, optimizer,
scheduler, RNG states, iteration, best; written at every validation and at the end),
`metrics.jsonl` (every `train.log_every` iterations: iter, loss, lr, seconds; every validation:
val_psnr, val_ssim, peak_rss_mb) and `curves.png`. `resume=True` continues from `last.pt`;
a config whose `train.iters`, `train.lr` or `train.lr_min` differ from the checkpoint's changes
the rest of the run (the schedule is recomputed from the resumed iteration on; see
:func:`hinas.runs.resume_changes`), so raising `train.iters` extends a finished run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from hinas.complexity import count_params
from hinas.config import Config, TaskConfig, TrainConfig, save_config
from hinas.data import PatchDataset, collect_images, load_images, relative_name, split_images
from hinas.degradations import build_degradation
from hinas.distributed import launch
from hinas.errors import HinasError, warn
from hinas.evaluate import make_pairs, score_model
from hinas.execution import Precision, make_loader, memory_format
from hinas.genotype import Genotype
from hinas.losses import build_loss
from hinas.models import WEIGHTS_FILE, ModelSpec, save_weights
from hinas.runlog import RunLog, run_header
from hinas.runs import (
    MetricsLog,
    RunFolder,
    Timer,
    load_checkpoint,
    peak_rss_mb,
    progress,
    record_resume_changes,
    resume_changes,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_learning_rate,
    set_rng_state,
)
from hinas.scalars import ScalarLog
from hinas.search import optimisation_step
from hinas.viz import plot_curves

STEP_MILESTONES = (0.5, 0.75)
"""Fractions of `train.iters` at which the `step` schedule multiplies the rate by 0.1."""


def lr_factor(t: TrainConfig, done: int) -> float:
    """Factor of `train.lr` used for the iteration after `done` completed iterations."""
    if t.schedule == "step":
        return 0.1 ** sum(done >= round(m * t.iters) for m in STEP_MILESTONES)
    floor = t.lr_min / t.lr
    progress_ = min(done, t.iters) / t.iters
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress_))


class IterationBatches(Dataset):
    """Item `k` is the batch of iteration `first + k`: "epoch" `first + k` of `patches` (whose
    length is the batch size), or the `part` of it that this process takes."""

    def __init__(self, patches: PatchDataset, first: int, last: int, part: slice = slice(None)):
        self.patches, self.first, self.last, self.part = patches, first, last, part

    def __len__(self) -> int:
        return max(0, self.last - self.first + 1)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.patches.set_epoch(self.first + k)
        lq, gt = zip(*(self.patches[i] for i in range(len(self.patches))[self.part]),
                     strict=True)
        return torch.stack(lq), torch.stack(gt)


def task_degradation(task: TaskConfig):
    """The training degradation of `task` (noise at its σ, or bicubic ↓ by its scale)."""
    if task.name == "sr":
        return build_degradation("sr", scale=task.scale)
    return build_degradation(task.name, sigma=task.sigma)


@dataclass
class TrainData:
    """Training patches, the held-back validation images, and which file went where."""

    patches: PatchDataset
    val: dict[Path, np.ndarray]
    split: dict[str, list[str]]


def prepare_data(cfg: Config, data_dirs: list[str]) -> TrainData:
    """Load the images of `data_dirs` (at most `train.max_images`, a seeded choice) and split off
    the validation images."""
    t = cfg.train
    paths = collect_images(data_dirs, t.max_images, cfg.seed)
    images = load_images(paths, cfg.task.channels, min_size=t.crop, warn=warn)
    train_w, train_a, val = split_images(list(images), cfg.seed, t.val_fraction)
    train = sorted(train_w + train_a, key=str)
    patches = PatchDataset({p: images[p] for p in train}, t.crop, task_degradation(cfg.task),
                           augment=True, length=t.batch_size, seed=cfg.seed)
    return TrainData(patches, {p: images[p] for p in val},
                     {"train": [relative_name(p, data_dirs) for p in train],
                      "val": [relative_name(p, data_dirs) for p in val]})


class TrainRun:
    """A training run in a run folder: build, resume, iterate, validate, checkpoint, plot."""

    def __init__(self, cfg: Config, spec: ModelSpec, data_dirs: list[str], out: str | Path,
                 resume: bool = False, quiet: bool = False):
        if cfg.device.startswith("cuda") and not torch.cuda.is_available():
            raise HinasError("--device cuda requested but no CUDA device is available")
        cfg, self.dist = launch(cfg, cfg.train.batch_size, resume)
        self.cfg, self.spec, self.out = cfg, spec, Path(out)
        self.quiet, self.device = quiet or not self.dist.is_main, self.dist.device
        last = self.out / "last.pt"
        if resume and not last.exists():
            raise HinasError(f"{self.out}: nothing to resume (no last.pt)")
        t = cfg.train
        seed_everything(cfg.seed)
        self.data = prepare_data(cfg, data_dirs)
        spec.meta.update(data=data_dirs, data_split=self.data.split, seed=cfg.seed)
        self.net = spec.build().to(self.device,
                                   memory_format=memory_format(cfg.train.channels_last))
        self.precision = Precision(cfg.runtime.amp, self.device)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=t.lr, momentum=t.momentum,
                                         weight_decay=t.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda done: lr_factor(t, done))
        self.loss_fn = build_loss(t.loss, t.ssim_weight)
        self.val_pairs = make_pairs(self.data.val, cfg.task, cfg.seed, t.val_crop)
        self.iteration, self.saved_iteration = 0, 0
        self.best = {"psnr": -math.inf, "ssim": 0.0, "iter": 0}
        self.pending: list[float] = []  # losses since the last log record
        self.metrics = MetricsLog(self.out / "metrics.jsonl")
        self.log = RunLog(self.out / "run.log", resume or not self.dist.is_main)  # rank 0 writes
        self.scalars = ScalarLog(self.out / "tensorboard",
                                 cfg.runtime.tensorboard and self.dist.is_main)
        if resume:
            self._restore(load_checkpoint(last))
        elif self.dist.is_main:
            save_config(cfg, self.out / "config.yaml")
            spec.save(self.out)
            self.metrics.path.unlink(missing_ok=True)
        self.model = self.dist.wrap(self.net)
        if self.dist.is_main:
            self.log.write(run_header(f"train {spec.arch}", cfg, data_dirs, self.data.split,
                                      self.iteration, "iteration"))
        self.dist.barrier()

    def _state(self) -> dict:
        return {"model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "iteration": self.iteration,
                "best": dict(self.best), "pending_losses": list(self.pending),
                "rng": rng_state(), "config": self.cfg.to_dict(), "model_spec": self.spec.to_dict()}

    def _restore(self, state: dict) -> None:
        changes = resume_changes(state["config"], self.cfg.to_dict(), self.out / "last.pt")
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.iteration = self.saved_iteration = state["iteration"]
        self.best, self.pending = state["best"], list(state["pending_losses"])
        set_rng_state(state["rng"])
        if self.dist.is_main:
            self.metrics.truncate(self.iteration, "iter")
        if any(key.startswith("train.") for key in changes):
            t = self.cfg.train
            set_learning_rate(self.optimizer, self.scheduler, t.lr,
                              t.lr * lr_factor(t, self.iteration))
        if changes and self.dist.is_main:
            record_resume_changes(self.out, {"iter": self.iteration}, changes,
                                  self.cfg.to_dict())

    def run(self) -> ModelSpec:
        """Train the remaining iterations; return the model spec with the run's summary."""
        t = self.cfg.train
        part = self.dist.batch_slice(t.batch_size)
        batches = make_loader(
            IterationBatches(self.data.patches, self.iteration + 1, t.iters, part), None,
            self.cfg.data.workers, (self.cfg.seed, self.dist.rank, self.iteration))
        fmt = memory_format(self.cfg.train.channels_last)
        bar = progress(t.iters, min(self.iteration, t.iters), self.quiet,
                       f"train {self.spec.arch} {self.cfg.task.describe()}")
        timer = Timer()
        self.net.train()
        try:
            for lq, gt in batches:
                it = self.iteration + 1
                lr = self.optimizer.param_groups[0]["lr"]
                try:
                    loss = optimisation_step(
                        self.model, self.optimizer, [], self.loss_fn,
                        lq.to(self.device, memory_format=fmt),
                        gt.to(self.device, memory_format=fmt), t.grad_clip,
                        precision=self.precision)
                except FloatingPointError as err:
                    raise self._diverged(f"loss became {err.args[0]}", it) from None
                self.scheduler.step()
                self.iteration = it
                self.pending.append(loss)
                if it % t.log_every == 0 or it == t.iters:
                    if self.dist.is_main:
                        self._log({"iter": it, "loss": float(np.mean(self.pending)), "lr": lr,
                                   "seconds": timer.seconds(), **self.dist.describe(t.batch_size)})
                    self.pending, timer = [], Timer()
                if it % t.val_every == 0 or it == t.iters:
                    try:
                        self._validate_and_checkpoint()
                    except FloatingPointError as err:
                        raise self._diverged(str(err), it) from None
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2g}",
                                best_val_psnr=f"{self.best['psnr']:.2f}" if self.best["iter"]
                                else "n/a")
        finally:
            bar.close()
        return self._finish()

    def _diverged(self, problem: str, it: int) -> HinasError:
        kept = (f"the last good checkpoint {self.out / 'last.pt'} (iteration "
                f"{self.saved_iteration}) is kept" if self.saved_iteration
                else "no checkpoint had been written yet")
        return HinasError(f"{problem} at iteration {it}; stopped, {kept}; try a lower learning "
                          f"rate (--resume --set train.lr=...)")

    def _validate_and_checkpoint(self) -> None:
        """Score the validation images; save the weights if best (before last.pt, so that a
        resume never sees a best record without its weights); save last.pt."""
        timer = Timer()
        scores = self.dist.on_main(
            lambda: score_model(self.net, self.val_pairs, self.cfg.task, self.device)[1])
        self.dist.check_same({"weights": self.net.parameters()}, f"at iteration {self.iteration}")
        main = self.dist.is_main
        if scores["psnr"] > self.best["psnr"]:
            self.best = {"psnr": scores["psnr"], "ssim": scores["ssim"], "iter": self.iteration}
            if main:
                save_weights(self.net, self.out / WEIGHTS_FILE)
        if main:
            self._log({"iter": self.iteration, "val_psnr": scores["psnr"],
                       "val_ssim": scores["ssim"], "best_val_psnr": self.best["psnr"],
                       "val_seconds": timer.seconds(), "peak_rss_mb": peak_rss_mb()})
            save_checkpoint(self.out / "last.pt", self._state())
        self.dist.barrier()
        self.saved_iteration = self.iteration

    def _log(self, record: dict) -> None:
        self.metrics.append(record)
        self.log.record(record, "iter", self.cfg.train.iters)
        self.scalars.add(record, "iter")

    def _finish(self) -> ModelSpec:
        self.spec.meta.update(
            iterations=self.iteration, best_iter=self.best["iter"],
            best_val_psnr=self.best["psnr"], best_val_ssim=self.best["ssim"],
            params=count_params(self.net))
        if self.dist.is_main:
            self.spec.save(self.out)
            self.log.write(f"model written to {self.out}: {self.spec.meta['params']:,} "
                           f"parameters, best validation PSNR {self.best['psnr']:.2f} dB at "
                           f"iteration {self.best['iter']} of {self.iteration}")
            plot_curves(self.metrics.read(), self.out / "curves.png", "iter")
        self.dist.barrier()
        return self.spec


def train(cfg: Config, data: str | Path | list[str | Path] | None, out: str | Path,
          genotype: Genotype | str | Path | None = None, arch: str = "hinas",
          resume: bool = False, quiet: bool = False,
          options: dict[str, Any] | None = None) -> ModelSpec:
    """Train (or resume) architecture `arch` (from `genotype`, a Genotype or a genotype.json path,
    for searched nets; build `options` such as DnCNN's `depth` override the defaults) on the
    images of `data` (one or several folders) in run folder `out`; returns the model spec with
    the run's summary in `meta`. On resume the run folder's model.json is used, and `data=None`
    means the folders it records. `out` must be new or empty unless `resume`, and is held by
    this run alone (see :class:`hinas.runs.RunFolder`)."""
    out = Path(out)
    if resume and (out / "model.json").exists():
        spec = ModelSpec.load(out)
    else:
        source = str(genotype) if isinstance(genotype, (str, Path)) else "genotype"
        if isinstance(genotype, (str, Path)):
            genotype = Genotype.load(genotype)
        spec = ModelSpec.from_config(arch, cfg, genotype, source, options)
    if data is None or data == []:
        data = spec.meta.get("data") if resume else None
        if not data:
            raise HinasError("no training images: give --data DIR")
    folders = [str(d) for d in ([data] if isinstance(data, (str, Path)) else data)]
    with RunFolder(out, resume, "a training run"):
        return TrainRun(cfg, spec, folders, out, resume, quiet).run()
