"""Training a network on a folder of images (paper §4.1 "Training settings"; docs/decisions.md §3).

- Optimiser: `train.optimizer` — SGD (momentum `train.momentum`, weight decay
  `train.weight_decay`; the paper's: lr 0.05, batch 24) or AdamW (decoupled weight decay) — from
  `train.lr`, gradients clipped to norm `train.grad_clip` (0: no clipping). An architecture's
  registration may train some of its submodules at a multiple of the rate
  (:attr:`hinas.models.folder.ModelEntry.lr_multipliers`, e.g. FSRCNN's deconvolution at 0.1×).
- Schedule, stepped every iteration: a linear warm-up over `train.warmup_iters`, then `cosine`
  (default) anneals the rate from `train.lr` to `train.lr_min` over the remaining iterations
  (half a cosine period); `step` multiplies it by 0.1 at 50 % and again at 75 % of the
  iterations; `constant` holds `train.lr`, with no end planned, until its decay phase (half a
  cosine to `train.lr_min` over `train.decay_iters`) starts at `train.decay_from`, or when the
  campaign's stop rule finds the held-back PSNR flat (:mod:`hinas.runtime.campaign`); the run
  is done when the decay ends.
- Time budget: with `budget_seconds`, under `cosine` or `step` a probe times a few training
  steps (and one validation) on a throw-away copy of the network and sets `train.iters` so
  that the whole schedule ends within the budget; the run's config.yaml records that count, so
  `--iters N` reproduces the run exactly. Under `constant` the budget is that of one piece: the
  loop stops when the next step and the end of the piece (validation, held-back scores,
  checkpoint) would overrun it, and `resume` continues the schedule, the data order and the RNG
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
- Weight average: with `train.ema` > 0 an exponential moving average of the weights (and BatchNorm
  buffers) follows every step (:class:`torch.optim.swa_utils.AveragedModel`); it is what is
  validated, scored on the held-back levels and saved, so a constant learning rate's noisy last
  iterate does not decide a ranking or the stop rule. A run resumed with `train.ema` newly set
  starts its average from the resumed weights (recorded as a change).

Run folder: `config.yaml`, `model.json` + `genotype.json` (what is trained, see
:mod:`hinas.models.folder`), `model.safetensors` (best weights so far), `last.pt` (model, optimizer,
scheduler, RNG states, iteration, best, config: all an exact resume needs, nothing the folder's
other files hold; written at every validation and at the end), `metrics.jsonl` (every
`train.log_every` iterations: iter, loss, lr, seconds; every validation: val_psnr, val_ssim,
peak_rss_mb), `curves.png`, `campaign.jsonl` (held-back PSNR per level at the start and at the
end of every piece, see :mod:`hinas.runtime.campaign`) and, for a run in pieces (or under
`constant`), `campaign.png`. `resume=True`
continues from `last.pt`; a config whose `train.iters`, `train.lr`, `train.lr_min`,
`train.decay_from` or `train.decay_iters` differ from the checkpoint's changes the rest of the run
(the schedule is recomputed from the resumed iteration on; see
:func:`hinas.runtime.runs.resume_changes`), so raising `train.iters` extends a finished run, and
a `train.decay_from` at or below the resumed iteration starts the decay at once. Resuming on
training images other than those the run started with is refused.
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
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import Dataset

from hinas.config import Config, TrainConfig, save_config, with_inputs
from hinas.data.datasets import PatchDataset
from hinas.data.degradations import task_degradation
from hinas.errors import HinasError
from hinas.measures.complexity import count_params
from hinas.measures.losses import build_loss
from hinas.models.architectures import MODELS
from hinas.models.folder import WEIGHTS_FILE, ModelSpec, save_weights
from hinas.runtime.campaign import FLAT_GAIN_DB, CampaignLog, HeldBack, flattened
from hinas.runtime.engine import load_training_images, optimisation_step
from hinas.runtime.execution import Precision, check_device, make_loader, memory_format
from hinas.runtime.run_base import Run
from hinas.runtime.runs import (
    RunFolder,
    Timer,
    check_resumable,
    peak_rss_mb,
    rng_state,
    seed_everything,
    set_learning_rate,
    set_rng_state,
)
from hinas.runtime.scoring import make_pairs, score_model
from hinas.runtime.viz import plot_campaign, plot_curves
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
FINISH_SECONDS = 2.0
"""Time a piece keeps for writing its checkpoint, model files and plots, beyond its measured
validation and held-back scoring."""
DECAY_SHARE = 0.2
"""`train.decay_iters: 0`: the decay phase lasts this share of the iterations before it."""
OPEN_END = 2**62
"""The last iteration of a budgeted piece whose schedule has no end yet (its clock stops it)."""


def decay_length(t: TrainConfig) -> int:
    """Iterations of the `constant` schedule's decay phase."""
    return t.decay_iters or max(1, round(DECAY_SHARE * t.decay_from))


def schedule_end(t: TrainConfig) -> int | None:
    """The iteration at which the schedule ends: `train.iters`, or under `constant` the end of
    the decay phase (None until it has a start)."""
    if t.schedule != "constant":
        return t.iters
    return t.decay_from + decay_length(t) if t.decay_from else None


def _half_cosine(floor: float, progress_: float) -> float:
    """From 1 (progress 0) to `floor` (progress ≥ 1) along half a cosine period."""
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(progress_, 1.0)))


def lr_factor(t: TrainConfig, done: int) -> float:
    """Factor of `train.lr` used for the iteration after `done` completed iterations."""
    if done < t.warmup_iters:
        return (done + 1) / (t.warmup_iters + 1)
    if t.schedule == "step":
        return 0.1 ** sum(done >= round(m * t.iters) for m in STEP_MILESTONES)
    floor = t.lr_min / t.lr
    if t.schedule == "constant":
        if not t.decay_from or done < t.decay_from:
            return 1.0
        return _half_cosine(floor, (done - t.decay_from) / decay_length(t))
    return _half_cosine(floor, (done - t.warmup_iters) / (t.iters - t.warmup_iters))


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
                           inputs=split.inputs_of(train), noise_map=cfg.task.needs_level)
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


class TrainRun(Run):
    """A training run (or one piece of it) in a run folder: build, resume, iterate, validate,
    score the held-back levels, checkpoint, plot."""

    section, step, unit = "train", "iter", "iteration"
    not_compared = ("search.",)

    def __init__(self, cfg: Config, spec: ModelSpec, data_dirs: list[str], out: str | Path,
                 resume: bool = False, quiet: bool = False, budget_seconds: float | None = None,
                 budget_clock: str = "wall", init_from: str | Path | None = None):
        self.clock = BUDGET_CLOCKS[budget_clock]
        self.started = self.clock()
        super().__init__(cfg, out, resume, quiet)
        self.spec, cfg, t = spec, self.cfg, self.cfg.train
        if budget_seconds is not None and self.dist.enabled:
            raise HinasError("--budget needs one process (each would measure its own "
                             "throughput); give --iters instead")
        # a changed seed splits differently too: the checkpoint's check names the seed instead
        same_seed = spec.meta.get("seed", cfg.seed) == cfg.seed
        recorded = spec.meta.get("data_split") if resume and same_seed else None
        self.data = prepare_data(cfg, data_dirs)
        if recorded and recorded != self.data.split:
            raise data_changed(data_dirs, recorded, self.data.split)
        spec.meta.update(data=data_dirs, data_split=self.data.split, seed=cfg.seed,
                         **({"lq": cfg.data.lq} if cfg.data.lq else {}))
        self.net = self._place(spec.build())
        if init_from is not None and not resume:
            spec.meta["init_from"] = init_weights(self.net, init_from)
        self.average = weight_average(self.net, t.ema)
        self.average_started = False  # by this resume, from the resumed weights
        self.val_pairs = make_pairs(self.data.val, cfg.task, cfg.seed, t.val_crop,
                                    self.data.val_inputs)
        self.held_back = HeldBack(self.data.val, cfg.task, cfg.seed, t.val_crop,
                                  self.data.val_inputs)
        self.budget = budget_seconds if t.schedule == "constant" else None
        if budget_seconds is not None and self.budget is None and not resume:
            t = self._fit_budget(budget_seconds, budget_seconds - (self.clock() - self.started),
                                 self.clock)
            self.spec.meta["budget"]["clock"] = budget_clock
        self.optimizer = build_optimizer(self.net, t, spec.arch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda done: lr_factor(self.cfg.train, done))
        self.seconds = self.cpu_seconds = 0.0  # wall / CPU time of earlier sessions of this run
        self.iteration = 0
        self.pending: list[float] = []  # losses since the last log record
        self.campaign = CampaignLog(self.out)
        self._open(f"train {spec.arch}", data_dirs, self.data.split, (self.campaign,))

    @property
    def done(self) -> int:
        """Iterations completed."""
        return self.iteration

    def _record_start(self) -> None:
        """model.json and genotype.json: what is trained."""
        self.spec.save(self.out)

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
        t = self._set_train(iters=iters)
        self.spec.meta["budget"] = {"seconds": budget, "iters": iters, "step_seconds": step,
                                    "validation_seconds": validation}
        return t

    def _set_train(self, **changes: Any) -> TrainConfig:
        """Change training settings of the run (the config it records and checkpoints)."""
        self.cfg = dataclasses.replace(self.cfg,
                                       train=dataclasses.replace(self.cfg.train, **changes))
        return self.cfg.train

    @property
    def evaluated(self) -> nn.Module:
        """The network validated, scored and saved: the weight average if there is one."""
        return self.net if self.average is None else self.average.module

    def _own_state(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "iteration": self.iteration,
                "pending_losses": list(self.pending),
                "seconds": self._wall_seconds(), "cpu_seconds": self._cpu_seconds(),
                **({} if self.average is None else {"average": self.average.state_dict()})}

    def _load_own_state(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.iteration, self.pending = state["iteration"], list(state["pending_losses"])
        self.seconds = state.get("seconds", 0.0)
        self.cpu_seconds = state.get("cpu_seconds", 0.0)
        self.average_started = self.average is not None and "average" not in state
        if self.average is not None and not self.average_started:
            self.average.load_state_dict(state["average"])

    def _wall_seconds(self) -> float:
        """Wall-clock seconds of training in every session of the run so far."""
        return self.seconds + self.session.seconds()

    def _cpu_seconds(self) -> float:
        """CPU seconds of this process's training in every session of the run so far."""
        return self.cpu_seconds + time.process_time() - self.session_cpu

    def _resume_with(self, changes: dict) -> dict:
        """A changed training setting: a `decay_from` already passed starts the decay now, and
        the rate is recomputed for the new schedule at the resumed iteration."""
        decay_from = self.cfg.train.decay_from
        if self.average_started:  # also a checkpoint from before `train.ema` existed
            changes.setdefault("train.ema", (0.0, self.cfg.train.ema))
        if "train.decay_from" in changes and 0 < decay_from < self.iteration:
            self._set_train(decay_from=self.iteration)  # asked to start it: now
            changes["train.decay_from"] = (changes["train.decay_from"][0], self.iteration)
        if any(key.startswith("train.") for key in changes):
            t = self.cfg.train
            set_learning_rate(self.optimizer, self.scheduler, t.lr,
                              t.lr * lr_factor(t, self.iteration))
        return changes

    def _last_iteration(self) -> int:
        """Where this session stops at the latest: the end of the schedule; without a piece
        budget, `train.iters` if sooner."""
        t = self.cfg.train
        end = schedule_end(t)
        if self.budget is not None:
            return OPEN_END if end is None else end
        return t.iters if end is None else min(t.iters, end)

    def run(self) -> ModelSpec:
        """Train this session's iterations; return the model spec with the run's summary."""
        t = self.cfg.train
        self.session, self.session_cpu = Timer(), time.process_time()
        self.first_iteration = self.iteration
        self.score_seconds = self._score_at_start()
        last = self._last_iteration()
        part = self.dist.batch_slice(t.batch_size)
        batches = make_loader(
            IterationBatches(self.data.patches, self.iteration + 1, last, part), None,
            self.cfg.data.workers, (self.cfg.seed, self.dist.rank, self.iteration))
        fmt = memory_format(self.cfg.train.channels_last)
        bar = self._bar(self._total(), min(self.iteration, last), f"train {self.spec.arch}")
        timer, steps = Timer(), StepTimes(self.clock)
        self.net.train()
        try:
            for lq, gt in batches:
                it = self.iteration + 1
                lr = self.optimizer.param_groups[0]["lr"]
                with self._guarded(f"iteration {it}", "loss became "):
                    loss = optimisation_step(
                        self.model, self.optimizer, [], self.loss_fn,
                        lq.to(self.device, memory_format=fmt),
                        gt.to(self.device, memory_format=fmt), t.grad_clip,
                        precision=self.precision)
                self.scheduler.step()
                if self.average is not None:
                    self.average.update_parameters(self.net)
                self.iteration = it
                self.pending.append(loss)
                steps.tick()
                ending = it >= last or self._out_of_time(steps.mean(), it + 1)
                if it % t.log_every == 0 or ending:
                    if self.dist.is_main:
                        self._log({"iter": it, "loss": float(np.mean(self.pending)), "lr": lr,
                                   "seconds": timer.seconds(), **self.dist.describe(t.batch_size)},
                                  self._total())
                    self.pending, timer = [], Timer()
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2g}",
                                best_val_psnr=f"{self.best['psnr']:.2f}" if self.best["iter"]
                                else "n/a")
                if ending:
                    break
                if it % t.val_every == 0:
                    self._validate_and_checkpoint()
                    steps.skip()
        finally:
            bar.close()
        if self.iteration > self.first_iteration:
            self._end_piece()
        return self._finish()

    def _score_at_start(self) -> float:
        """Score the held-back levels when the run starts (the campaign's first row) or when a
        budgeted piece starts (to know what the end of the piece costs); the seconds (on the
        budget's clock) that one level's scoring takes."""
        if self.iteration and self.budget is None:
            return 0.0
        start = self.clock()
        scores = self.dist.on_main(lambda: self.held_back.score(self.evaluated, self.device))
        seconds = (self.clock() - start) / len(scores)
        if not self.iteration and self.dist.is_main:
            row = self.campaign.row(0, 0.0, 0.0, scores, self.optimizer.param_groups[0]["lr"],
                                    self.cfg.train.ema)
            self.campaign.append({**row, "phase": "start", "status": "untrained"})
        return seconds

    def _out_of_time(self, step: float, following: int) -> bool:
        """Whether the piece's budget leaves no time for iteration `following` (taking `step`
        seconds, plus a validation when one is due after it) and the end of the piece."""
        if self.budget is None:
            return False
        levels = len(self.held_back.levels)
        due = following % self.cfg.train.val_every == 0
        end = (levels + 1) * self.score_seconds + FINISH_SECONDS
        cost = step + (self.score_seconds if due else 0.0)
        return self.clock() - self.started + cost + end >= self.budget

    def _diverged(self, problem: str, where: str) -> HinasError:
        kept = (f"the last good checkpoint {self.last} (iteration {self.saved}) is kept"
                if self.saved else "no checkpoint had been written yet")
        again = "--resume " if self.saved else ""
        remedy = (f"full precision ({again}--amp off) or a lower learning rate "
                  f"({again}--set train.lr=...)" if self.precision.dtype is not None
                  else f"a lower learning rate ({again}--set train.lr=...)")
        if not self.saved:
            remedy += " in a new run (without --resume: the folder is reused)"
        return HinasError(f"{problem} at {where}; stopped, {kept}; try {remedy}")

    def _validate_and_checkpoint(self) -> None:
        """Validate, then save last.pt."""
        self._validate()
        self._checkpoint()

    def _validate(self) -> None:
        """Score the validation images; save the weights if best (before last.pt, so that a
        resume never sees a best record without its weights)."""
        timer = Timer()
        with self._guarded(f"iteration {self.iteration}"):
            scores = self._score_validation()
        self.dist.check_same({"weights": self.net.parameters()}, f"at iteration {self.iteration}")
        if scores["psnr"] > self.best["psnr"]:
            self.best = {"psnr": scores["psnr"], "ssim": scores["ssim"], "iter": self.iteration}
            if self.dist.is_main:
                save_weights(self.evaluated, self.out / WEIGHTS_FILE)
        if self.dist.is_main:
            self._log({"iter": self.iteration, "val_psnr": scores["psnr"],
                       "val_ssim": scores["ssim"], "best_val_psnr": self.best["psnr"],
                       "val_seconds": timer.seconds(), "peak_rss_mb": peak_rss_mb()},
                      self._total())

    def _checkpoint(self) -> None:
        """Save last.pt (rank 0)."""
        self._save_last()
        self.dist.barrier()

    def _end_piece(self) -> None:
        """The end of this session's iterations: validate, score the held-back levels, apply the
        stop rule (under `constant`, a flat campaign starts the decay phase), save last.pt
        (with that decision), then add the campaign row."""
        self._validate()
        if self.dist.is_main:
            t = self.cfg.train
            row = self.campaign.row(self.iteration, self._cpu_seconds(), self._wall_seconds(),
                                    self.held_back.score(self.evaluated, self.device),
                                    self.optimizer.param_groups[0]["lr"], t.ema)
            started_decay = (t.schedule == "constant" and not t.decay_from
                             and flattened(row["gain_db"]))
            if started_decay:
                t = self._set_train(decay_from=self.iteration)
                save_config(self.cfg, self.out / "config.yaml")
            phase, status = campaign_status(t, self.iteration, row["gain_db"], started_decay)
            row.update(decay_from=t.decay_from or None, phase=phase, status=status,
                       **({"budget_minutes": round(self.budget / 60, 3)} if self.budget else {}))
        self._checkpoint()
        if self.dist.is_main:
            self.campaign.append(row)
            self.log.write(f"piece {row['piece']}: {status}")

    def _total(self) -> int | None:
        """The iterations this session plans to reach (None: no end planned yet)."""
        last = self._last_iteration()
        return None if last == OPEN_END else last

    def _finish(self) -> ModelSpec:
        rows = self.campaign.read()
        self.spec.meta.update(
            iterations=self.iteration, best_iter=self.best["iter"],
            best_val_psnr=self.best["psnr"], best_val_ssim=self.best["ssim"],
            params=count_params(self.net), train_seconds=self._wall_seconds(),
            train_cpu_seconds=self._cpu_seconds(),
            campaign={"phase": rows[-1]["phase"], "status": rows[-1]["status"]} if rows else {})
        if self.dist.is_main:
            self.spec.save(self.out)
            self.log.write(f"model written to {self.out}: {self.spec.meta['params']:,} "
                           f"parameters, best validation PSNR {self.best['psnr']:.2f} dB at "
                           f"iteration {self.best['iter']} of {self.iteration}")
            plot_curves(self.metrics.read(), self.out / "curves.png", "iter")
            if len(rows) > 2 or self.cfg.train.schedule == "constant":  # trained in pieces
                plot_campaign(rows, self.out / "campaign.png",
                              f"{self.spec.arch} {self.cfg.task.describe()}: {rows[-1]['status']}")
        self.dist.barrier()
        return self.spec


def weight_average(net: nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of `net`'s weights and buffers at `decay` per update
    (None: decay 0, no average); its first update copies the weights."""
    if not decay:
        return None
    return AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


class StepTimes:
    """Seconds per training step on a clock, from the ticks after each step (the first step,
    with its allocations, and the ticks after a validation are not counted)."""

    def __init__(self, clock):
        self.clock, self.last, self.total, self.steps = clock, None, 0.0, 0

    def tick(self) -> None:
        """A step has ended."""
        now = self.clock()
        if self.last is not None:
            self.total, self.steps = self.total + now - self.last, self.steps + 1
        self.last = now

    def skip(self) -> None:
        """Something other than a step ran since the last tick."""
        self.last = self.clock()

    def mean(self) -> float:
        """Mean seconds per step so far (0 before two ticks)."""
        return self.total / self.steps if self.steps else 0.0


def campaign_status(t: TrainConfig, iteration: int, gain_db: float | None,
                    started_decay: bool) -> tuple[str, str]:
    """The phase (`train`, `decay`, `done`) of a run at the end of a piece, and what the
    campaign stands at, in words."""
    gain = ("no earlier score of the same weights at half the iterations yet" if gain_db is None
            else
            f"{gain_db:+.2f} dB held-back PSNR over the last doubling of iterations")
    end = schedule_end(t)
    if end is not None and iteration >= end:
        return "done", f"done at iteration {iteration:,} ({gain})"
    if t.schedule != "constant":
        return "train", f"iteration {iteration:,} of {t.iters:,} ({gain})"
    if started_decay:
        return "decay", (f"flattened ({gain}, under {FLAT_GAIN_DB} dB): the decay to "
                         f"train.lr_min runs from iteration {t.decay_from:,} to {end:,}; "
                         f"resume to run it")
    if t.decay_from and iteration >= t.decay_from:
        return "decay", (f"decaying: iteration {iteration:,} of the decay from "
                         f"{t.decay_from:,} to {end:,}; resume to finish it")
    return "train", f"rising ({gain}); resume for another piece"


def data_changed(folders: list[str], recorded: dict[str, list[str]],
                 found: dict[str, list[str]]) -> HinasError:
    """The one-line error of a resume whose training folders no longer hold the images (or the
    split) the run started with."""
    before = set(recorded.get("train", [])) | set(recorded.get("val", []))
    now = set(found["train"]) | set(found["val"])
    added, gone = sorted(now - before), sorted(before - now)
    what = ", ".join(f"{len(names)} {kind} (e.g. {names[0]})"
                     for kind, names in (("added", added), ("gone", gone)) if names)
    return HinasError(f"data.path {' '.join(folders)}: the training images differ from those "
                      f"this run started with ({what or 'split differently'}); resume with "
                      f"the same images, or start a new run in another --out")


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
    resumed run keeps its recorded count); under `train.schedule: constant` it is the length of
    this piece of the run instead, new or resumed. `init_from` (a trained-model folder) starts the
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


def time_training(cfg: Config, data: str | Path | list[str | Path], spec: ModelSpec,
                  skip: int = 5, compile_network: bool = False) -> dict[str, float]:
    """Train a fresh network of `spec` for `train.iters` iterations of `cfg`'s recipe, through
    this job's own pieces (data, optimiser, schedule, batches, step) but without a run folder,
    validation or checkpoints, on the CPU (`compile_network`: under `torch.compile`). Returns
    the training iterations per second after the first `skip` (allocation, compilation), the
    seconds of the whole loop, and the validation PSNR at the end (held-back images, central
    `train.val_crop` crops, fp32): what an execution setting changes in speed and in what is
    learnt, at equal iterations."""
    t, device = cfg.train, torch.device("cpu")
    if not 0 <= skip < t.iters:
        raise HinasError(f"skip {skip}: give at least 0 and fewer than train.iters ({t.iters})")
    seed_everything(cfg.seed)
    folders = [str(d) for d in ([data] if isinstance(data, (str, Path)) else data)]
    prepared = prepare_data(cfg, folders)
    network = ModelSpec(spec.arch, cfg.task, spec.options, spec.genotype).build()
    fmt = memory_format(t.channels_last)
    network = network.to(memory_format=fmt).train()
    model = torch.compile(network) if compile_network else network
    optimizer = build_optimizer(network, t, spec.arch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda done: lr_factor(t, done))
    precision, loss_fn = Precision(t.amp, device), build_loss(t.loss, t.ssim_weight)
    batches = make_loader(IterationBatches(prepared.patches, 1, t.iters), None, cfg.data.workers,
                          (cfg.seed, 0, 0))
    start = timed_from = time.perf_counter()
    for k, (lq, gt) in enumerate(batches):
        if k == skip:
            timed_from = time.perf_counter()
        optimisation_step(model, optimizer, [], loss_fn, lq.to(memory_format=fmt),
                          gt.to(memory_format=fmt), t.grad_clip, precision=precision)
        scheduler.step()
    end = time.perf_counter()
    pairs = make_pairs(prepared.val, cfg.task, cfg.seed, t.val_crop, prepared.val_inputs)
    scores = score_model(network, pairs, cfg.task, device)[1]
    return {"iters_per_s": (t.iters - skip) / (end - timed_from), "seconds": end - start,
            "val_psnr": float(scores["psnr"])}
