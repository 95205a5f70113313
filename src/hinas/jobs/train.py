"""Training a network on a folder of images (paper §4.1 "Training settings"; docs/decisions.md §3).

- Optimiser: `train.optimizer` — SGD (momentum `train.momentum`, weight decay
  `train.weight_decay`; the paper's: lr 0.05, batch 24) or AdamW (decoupled weight decay) — from
  `train.lr`, gradients clipped to norm `train.grad_clip` (0: no clipping). An architecture's
  registration may train some of its submodules at a multiple of the rate
  (:attr:`hinas.models.folder.ModelEntry.lr_multipliers`, e.g. FSRCNN's deconvolution at 0.1×).
- Schedule, stepped every iteration: a linear warm-up over `train.warmup_iters`, then `cosine`
  (default) anneals the rate from `train.lr` to `train.lr_min` over the remaining iterations
  (half a cosine period); `step` multiplies it by 0.1 at 50 % and again at 75 % of the
  iterations.
- Time budget: with `budget_seconds`, a probe times a few training steps (and one validation)
  on a throw-away copy of the network and sets `train.iters` so that the whole schedule ends
  within the budget; the run's config.yaml records that count, so `--iters N` reproduces the run
  exactly. The budget is wall-clock time, or with `budget_clock="cpu"` this process's CPU time
  (fairer between runs on a machine whose load changes: one thread's CPU seconds are what the
  run would take on an idle core).
- Batches: `train.batch_size` random `train.crop`×`train.crop` crops (HR crops for SR) with
  rotations by k·90° and horizontal/vertical flips (:class:`hinas.data.datasets.PatchDataset`). The
  batch of iteration `t` is "epoch" `t` of the patch dataset, so every batch is a pure function of
  (seed, t) and a resumed run reproduces an uninterrupted one exactly.
- Validation: the images are split with :func:`hinas.data.datasets.split_images`
  (`train.val_fraction`); the Validation part is held back from training and scored (PSNR/SSIM under
  the task's convention, central `train.val_crop` crops; 0 = whole images) every `train.val_every`
  iterations and at the end. The weights with the best validation PSNR are the trained model.

Run folder: `config.yaml`, `model.json` + `genotype.json` (what is trained, see
:mod:`hinas.models.folder`), `model.safetensors` (best weights so far), `last.pt` (model, optimizer,
scheduler, RNG states, iteration, best; written at every validation and at the end),
`metrics.jsonl` (every `train.log_every` iterations: iter, loss, lr, seconds; every validation:
val_psnr, val_ssim, peak_rss_mb) and `curves.png`. `resume=True` continues from `last.pt`;
a config whose `train.iters`, `train.lr` or `train.lr_min` differ from the checkpoint's changes
the rest of the run (the schedule is recomputed from the resumed iteration on; see
:func:`hinas.runtime.runs.resume_changes`), so raising `train.iters` extends a finished run.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from hinas.config import Config, TrainConfig, save_config, with_inputs
from hinas.data.datasets import PatchDataset
from hinas.data.degradations import task_degradation
from hinas.errors import HinasError
from hinas.measures.complexity import count_params
from hinas.measures.losses import build_loss
from hinas.models.architectures import MODELS
from hinas.models.folder import WEIGHTS_FILE, ModelSpec, save_weights
from hinas.runtime.distributed import launch
from hinas.runtime.engine import load_training_images, optimisation_step
from hinas.runtime.execution import Precision, check_device, make_loader, memory_format
from hinas.runtime.runlog import RunLog, run_header
from hinas.runtime.runs import (
    MetricsLog,
    RunFolder,
    Timer,
    check_resumable,
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
from hinas.runtime.scalars import ScalarLog
from hinas.runtime.scoring import make_pairs, score_model
from hinas.runtime.viz import plot_curves
from hinas.space.genotype import Genotype

STEP_MILESTONES = (0.5, 0.75)
"""Fractions of `train.iters` at which the `step` schedule multiplies the rate by 0.1."""


PROBE_ITERS = 5
"""Fewest timed training steps of the throughput probe (after one untimed step)."""
PROBE_SHARE = 0.01
"""The probe keeps stepping until it has used this share of the budget (at most PROBE_ITERS·4
steps), so that its timing averages over a machine's load changes."""
BUDGET_CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
"""Clocks a training budget can be counted on."""
BUDGET_MARGIN = 0.93
"""Share of the remaining budget planned for training (the rest absorbs timing noise)."""


def lr_factor(t: TrainConfig, done: int) -> float:
    """Factor of `train.lr` used for the iteration after `done` completed iterations."""
    if done < t.warmup_iters:
        return (done + 1) / (t.warmup_iters + 1)
    if t.schedule == "step":
        return 0.1 ** sum(done >= round(m * t.iters) for m in STEP_MILESTONES)
    floor = t.lr_min / t.lr
    length = t.iters - t.warmup_iters
    progress_ = min(done - t.warmup_iters, length) / length
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress_))


def build_optimizer(net: nn.Module, t: TrainConfig, arch: str) -> torch.optim.Optimizer:
    """The optimizer of `train.optimizer` over `net`'s parameters, one parameter group per
    learning-rate multiplier that architecture `arch` registers."""
    entry = MODELS.get(arch)
    groups: dict[float, list[nn.Parameter]] = {}
    for name, param in net.named_parameters():
        groups.setdefault(entry.lr_multiplier(name), []).append(param)
    params = [{"params": p, "lr": t.lr * factor} for factor, p in groups.items()]
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)


def parse_budget(text: str) -> float:
    """Seconds of a wall-clock budget written `90s`, `45m`, `1.5h` (or plain seconds)."""
    units = {"s": 1, "m": 60, "h": 3600}
    raw = text.strip().lower()
    number, unit = (raw[:-1], raw[-1]) if raw[-1:] in units else (raw, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise HinasError(f"--budget {text!r}: give a positive duration such as 90s, 45m or 1.5h")
    return seconds


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


@dataclass
class TrainData:
    """Training patches, the held-back validation images, and which file went where."""

    patches: PatchDataset
    val: dict[Path, np.ndarray]
    split: dict[str, list[str]]
    val_inputs: dict[Path, np.ndarray] | None = None


def prepare_data(cfg: Config, data_dirs: list[str]) -> TrainData:
    """Load the images of `data_dirs` (at most `train.max_images`, a seeded choice; paired with
    their degraded inputs in `data.lq` when it names folders) and split off the validation
    images."""
    t = cfg.train
    split = load_training_images(data_dirs, cfg.task.channels, t.max_images, t.crop, cfg.seed,
                                 t.val_fraction, cfg.data.lq, cfg.task.out_scale)
    train = sorted(split.w + split.a, key=str)
    patches = PatchDataset(split.subset(train), t.crop, task_degradation(cfg.task),
                           augment=True, length=t.batch_size, seed=cfg.seed,
                           inputs=split.inputs_of(train))
    return TrainData(patches, split.subset(split.v),
                     {"train": split.names(train), "val": split.names(split.v)},
                     split.inputs_of(split.v))


def init_weights(net: nn.Module, folder: str | Path) -> dict[str, Any]:
    """Start `net` from the weights of the trained model in `folder` (fine-tuning, e.g. ×2 from
    a ×4 model of the same genotype): every tensor whose name and shape match is copied, the
    rest keep their fresh initialisation. Returns what was copied, for the run's record."""
    from safetensors.torch import load_file

    path = Path(folder) / WEIGHTS_FILE
    if not path.is_file():
        raise HinasError(f"{folder}: no {WEIGHTS_FILE} to start from")
    source = load_file(str(path))
    own = net.state_dict()
    copied = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    if not copied:
        raise HinasError(f"{folder}: none of its weights fit this network")
    net.load_state_dict(copied, strict=False)
    return {"folder": str(folder), "tensors_copied": len(copied), "tensors": len(own)}


class TrainRun:
    """A training run in a run folder: build, resume, iterate, validate, checkpoint, plot."""

    def __init__(self, cfg: Config, spec: ModelSpec, data_dirs: list[str], out: str | Path,
                 resume: bool = False, quiet: bool = False, budget_seconds: float | None = None,
                 budget_clock: str = "wall", init_from: str | Path | None = None):
        clock = BUDGET_CLOCKS[budget_clock]
        started = clock()
        cfg, self.dist = launch(cfg, cfg.train.batch_size, resume)
        self.cfg, self.spec, self.out = cfg, spec, Path(out)
        self.quiet, self.device = quiet or not self.dist.is_main, self.dist.device
        last = self.out / "last.pt"
        if resume and not last.exists():
            raise HinasError(f"{self.out}: nothing to resume (no last.pt)")
        t = cfg.train
        seed_everything(cfg.seed)
        self.data = prepare_data(cfg, data_dirs)
        spec.meta.update(data=data_dirs, data_split=self.data.split, seed=cfg.seed,
                         **({"lq": cfg.data.lq} if cfg.data.lq else {}))
        self.net = spec.build().to(self.device,
                                   memory_format=memory_format(cfg.train.channels_last))
        if init_from is not None and not resume:
            spec.meta["init_from"] = init_weights(self.net, init_from)
        self.precision = Precision(cfg.train.amp, self.device)
        self.loss_fn = build_loss(t.loss, t.ssim_weight)
        self.val_pairs = make_pairs(self.data.val, cfg.task, cfg.seed, t.val_crop,
                                    self.data.val_inputs)
        if budget_seconds is not None and not resume:
            if self.dist.enabled:
                raise HinasError("--budget needs one process (each would measure its own "
                                 "throughput); give --iters instead")
            t = self._fit_budget(budget_seconds, budget_seconds - (clock() - started), clock)
            self.spec.meta["budget"]["clock"] = budget_clock
        self.optimizer = build_optimizer(self.net, t, spec.arch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda done: lr_factor(t, done))
        self.seconds = self.cpu_seconds = 0.0  # wall / CPU time of earlier sessions of this run
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
            save_config(self.cfg, self.out / "config.yaml")
            spec.save(self.out)
            self.metrics.path.unlink(missing_ok=True)
        self.model = self.dist.wrap(self.net)
        if self.dist.is_main:
            self.log.write(run_header(f"train {spec.arch}", self.cfg, data_dirs, self.data.split,
                                      self.iteration, "iteration"))
        self.dist.barrier()

    def _fit_budget(self, budget: float, remaining: float, clock) -> TrainConfig:
        """Time (on `clock`) training steps and one validation on a throw-away copy of the
        network, set `train.iters` so that the schedule ends within `remaining` seconds, and
        return the new training config (recorded in the run's config and model meta)."""
        t = self.cfg.train
        saved_rng = rng_state()
        net = copy.deepcopy(self.net)
        optimizer = build_optimizer(net, t, self.spec.arch)
        batches = IterationBatches(self.data.patches, 1, 4 * PROBE_ITERS + 1)
        start, steps = None, 0
        for k in range(len(batches)):
            lq, gt = batches[k]
            fmt = memory_format(t.channels_last)
            optimisation_step(net, optimizer, [], self.loss_fn,
                              lq.to(self.device, memory_format=fmt),
                              gt.to(self.device, memory_format=fmt), t.grad_clip,
                              precision=self.precision)
            if start is None:  # the first step (allocations) is not timed
                start = clock()
                continue
            steps += 1
            if steps >= PROBE_ITERS and clock() - start >= PROBE_SHARE * budget:
                break
        step = (clock() - start) / steps
        start = clock()
        score_model(net, self.val_pairs, self.cfg.task, self.device)
        validation = clock() - start
        set_rng_state(saved_rng)
        left = BUDGET_MARGIN * remaining - validation  # the final validation
        iters = math.floor(left / (step + validation / t.val_every))
        if iters <= t.warmup_iters:
            raise HinasError(f"--budget {budget:g}s leaves time for {max(iters, 0)} iterations "
                             f"({step:.3f} s each, {validation:.1f} s per validation), not more "
                             f"than train.warmup_iters={t.warmup_iters}; give a longer budget")
        t = dataclasses.replace(t, iters=iters)
        self.cfg = dataclasses.replace(self.cfg, train=t)
        self.spec.meta["budget"] = {"seconds": budget, "iters": iters, "step_seconds": step,
                                    "validation_seconds": validation}
        return t

    def _state(self) -> dict:
        return {"model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "iteration": self.iteration,
                "best": dict(self.best), "pending_losses": list(self.pending),
                "seconds": self.seconds + self.session.seconds(),
                "cpu_seconds": self.cpu_seconds + time.process_time() - self.session_cpu,
                "rng": rng_state(), "config": self.cfg.to_dict(), "model_spec": self.spec.to_dict()}

    def _restore(self, state: dict) -> None:
        changes = resume_changes(state["config"], self.cfg.to_dict(), self.out / "last.pt",
                                 irrelevant=("search.",))
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.iteration = self.saved_iteration = state["iteration"]
        self.best, self.pending = state["best"], list(state["pending_losses"])
        self.seconds = state.get("seconds", 0.0)
        self.cpu_seconds = state.get("cpu_seconds", 0.0)
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
        self.session, self.session_cpu = Timer(), time.process_time()
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
        again = "--resume " if self.saved_iteration else ""
        remedy = (f"full precision ({again}--amp off) or a lower learning rate "
                  f"({again}--set train.lr=...)" if self.precision.dtype is not None
                  else f"a lower learning rate ({again}--set train.lr=...)")
        if not self.saved_iteration:
            remedy += " in a new run (without --resume: the folder is reused)"
        return HinasError(f"{problem} at iteration {it}; stopped, {kept}; try {remedy}")

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
            params=count_params(self.net), train_seconds=self.seconds + self.session.seconds(),
            train_cpu_seconds=self.cpu_seconds + time.process_time() - self.session_cpu)
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
          options: dict[str, Any] | None = None,
          budget_seconds: float | None = None, budget_clock: str = "wall",
          init_from: str | Path | None = None,
          lq: str | Path | list[str | Path] | None = None) -> ModelSpec:
    """Train (or resume) architecture `arch` (from `genotype`, a Genotype or a genotype.json path,
    for searched nets; build `options` such as DnCNN's `depth` override the defaults) on the
    images of `data` (one or several folders) in run folder `out`; returns the model spec with
    the run's summary in `meta`. On resume the run folder's model.json is used, and `data=None`
    means the folders it records. With `budget_seconds` the iteration count is chosen so that
    the run ends within that time on `budget_clock` (`wall` or this process's `cpu` time; a
    resumed run keeps its recorded count). `init_from` (a trained-model folder) starts the
    network from that model's weights where names and shapes match. `lq` (one or several
    folders; else `cfg.data.lq`) holds the degraded inputs of a paired or SR task, matched to the
    images by file-name stem. `out` must be new or empty unless `resume`, and is held by this
    run alone (see :class:`hinas.runtime.runs.RunFolder`)."""
    check_device(cfg.device)
    out = Path(out)
    if resume:
        check_resumable(out, "train")
        spec = ModelSpec.load(out)
    else:
        source = str(genotype) if isinstance(genotype, (str, Path)) else "genotype"
        if isinstance(genotype, (str, Path)):
            genotype = Genotype.load(genotype)
        spec = ModelSpec.from_config(arch, cfg, genotype, source, options)
    cfg = with_inputs(cfg, lq or (spec.meta.get("lq") if resume else None))
    if data is None or data == []:
        data = spec.meta.get("data") if resume else None
        if not data:
            raise HinasError("no training images: give --data DIR")
    folders = [str(d) for d in ([data] if isinstance(data, (str, Path)) else data)]
    with RunFolder(out, resume, "train"):
        return TrainRun(cfg, spec, folders, out, resume, quiet, budget_seconds, budget_clock,
                        init_from).run()
