"""Architecture search (paper §3.3, §4.1; docs/decisions.md §2) in a run folder: the strategy of
`search.strategy` (:mod:`hinas.runtime.strategies`: HiNAS, or random search with weight sharing)
trains the supernet epoch by epoch on Train W (and Train A), then chooses the genotype.

A run folder holds config.yaml, metrics.jsonl, arch_history.jsonl, checkpoints `last.pt` (every
epoch) and `best.pt`, genotype.json and plots. `resume=True` continues exactly from `last.pt`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hinas.config import Config, TrainConfig, load_config, with_inputs
from hinas.data.datasets import PatchDataset
from hinas.data.degradations import task_degradation
from hinas.errors import HinasError
from hinas.measures.losses import build_loss
from hinas.runtime.budget import search_budget
from hinas.runtime.distributed import Context
from hinas.runtime.engine import frozen, load_training_images
from hinas.runtime.execution import check_device, make_loader, memory_format
from hinas.runtime.run_base import Run
from hinas.runtime.runs import (
    MetricsLog,
    RunFolder,
    Timer,
    load_checkpoint,
    peak_rss_mb,
    save_checkpoint,
    set_learning_rate,
)
from hinas.runtime.scoring import make_pairs
from hinas.runtime.selection import Scorer
from hinas.runtime.strategies import STRATEGIES, select, weight_optimizer
from hinas.runtime.viz import plot_arch_history, plot_curves, plot_genotype
from hinas.space.genotype import Genotype
from hinas.space.ops import check_space_ops
from hinas.space.supernet import Supernet


@dataclass
class SearchData:
    """Loaded images of the three splits and the patch datasets drawn from W and A."""

    train_w: PatchDataset
    train_a: PatchDataset
    val: dict[Path, np.ndarray]
    split: dict[str, list[str]]
    val_inputs: dict[Path, np.ndarray] | None = None

    def val_pairs(self, cfg: Config, crop: int | None = None) -> list:
        """The test pairs of Validation V (central `crop` px crops, default `search.val_crop`)."""
        crop = cfg.search.val_crop if crop is None else crop
        return make_pairs(self.val, cfg.task, cfg.seed, crop, self.val_inputs)


def prepare_data(cfg: Config, data_dir: str | Path | list) -> SearchData:
    """Split, load and wrap the training images of `data_dir` (one or several folders), paired
    with their degraded inputs in `data.lq` when it names folders."""
    s = cfg.search
    split = load_training_images(data_dir, cfg.task.channels, s.max_images, s.crop, cfg.seed,
                                 s.val_fraction, cfg.data.lq, cfg.task.out_scale)
    degradation = task_degradation(cfg.task)
    steps = steps_per_epoch(cfg, len(split.w))

    def dataset(paths: list[Path], batch: int, seed: int) -> PatchDataset:
        return PatchDataset(split.subset(paths), s.crop, degradation, augment=True,
                            length=steps * batch, seed=seed, inputs=split.inputs_of(paths),
                            noise_map=cfg.task.needs_level)

    return SearchData(dataset(split.w, s.batch_size, cfg.seed),
                      dataset(split.a, s.a_batch, cfg.seed + 1),
                      split.subset(split.v),
                      {"w": split.names(split.w), "a": split.names(split.a),
                       "v": split.names(split.v)}, split.inputs_of(split.v))


def steps_per_epoch(cfg: Config, n_w: int) -> int:
    """Steps of one epoch: `crops_per_image` crops of every Train-W image, in batches."""
    return max(1, math.ceil(n_w * cfg.search.crops_per_image / cfg.search.batch_size))


def arch_budget(cfg: Config, n_w: int) -> dict[str, float]:
    """The architecture-step budget of a search: how many A-steps it makes, of how many crops, and
    the logit budget a_lr × A-steps, which bounds how far Adam can move α and β (about lr per
    step); and the steps of an epoch."""
    s = cfg.search
    steps = steps_per_epoch(cfg, n_w)
    a_steps = STRATEGIES.get(s.strategy).arch_epochs(s, s.epochs) * steps
    return {"a_steps": a_steps, "a_batch": s.a_batch, "a_lr": s.a_lr,
            "logit_budget": round(s.a_lr * a_steps, 4), "steps_per_epoch": steps}


def _batches(dataset: PatchDataset, batch: int, epoch: int, cfg: Config, ctx: Context
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    dataset.set_epoch(epoch)
    fmt = memory_format(cfg.search.channels_last)
    loader = make_loader(ctx.shard(dataset, batch), ctx.rank_batch(batch), cfg.data.workers,
                         (cfg.seed, ctx.rank, epoch, dataset.seed))
    for lq, gt in loader:
        yield lq.to(ctx.device, memory_format=fmt), gt.to(ctx.device)


class SearchRun(Run):
    """A search in a run folder: build, resume, loop over epochs, choose the genotype, plot."""

    section, step, unit = "search", "epoch", "epoch"
    # a search reads one training setting, the width its cost budget is counted at
    not_compared = tuple(f"train.{f.name}" for f in dataclasses.fields(TrainConfig)
                         if f.name != "width_multiplier")

    def __init__(self, cfg: Config, data_dir: str | Path, out: str | Path, resume: bool = False,
                 quiet: bool = False):
        check_space_ops(cfg.space.ops)  # before the images load
        if not cfg.data.path:  # recorded, so that the run can be resumed or re-selected alone
            folders = data_dir if isinstance(data_dir, (list, tuple)) else [data_dir]
            cfg = dataclasses.replace(cfg, data=dataclasses.replace(
                cfg.data, path=[str(folder) for folder in folders]))
        super().__init__(cfg, out, resume, quiet, (cfg.search.a_batch,))
        cfg, self.epoch = self.cfg, 0
        self.data = prepare_data(cfg, data_dir)
        self.net = self._place(Supernet(cfg.space, cfg.task))
        self.w_opt = weight_optimizer(self.net, cfg.search)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.w_opt, T_max=cfg.search.epochs, eta_min=cfg.search.w_lr_min)
        self.val_pairs = self.data.val_pairs(cfg)
        self.budget = arch_budget(cfg, len(self.data.split["w"]))
        self.strategy = STRATEGIES.get(cfg.search.strategy)(cfg, self.net, self.dist, self.budget)
        self.history = MetricsLog(self.out / "arch_history.jsonl")
        self._open("search", data_dir, self.data.split, (self.history,),
                   self.net.arch_parameters(), self.strategy.partial_steps)

    @property
    def done(self) -> int:
        """Epochs completed."""
        return self.epoch

    def _own_state(self) -> dict:
        return {"w_opt": self.w_opt.state_dict(), **self.strategy.state(),
                "scheduler": self.scheduler.state_dict(), "epoch": self.epoch}

    def _load_own_state(self, state: dict) -> None:
        self.w_opt.load_state_dict(state["w_opt"])
        self.strategy.load_state(state)
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = state["epoch"]

    def _resume_with(self, changes: dict) -> dict:
        """A changed search setting: the cosine schedule recomputed for the new length and rates
        at the resumed epoch, the strategy's rates taken."""
        if any(key.startswith("search.") for key in changes):
            s = self.cfg.search
            self.scheduler.T_max, self.scheduler.eta_min = s.epochs, s.w_lr_min
            cosine = 0.5 * (1 + math.cos(math.pi * self.epoch / s.epochs))
            set_learning_rate(self.w_opt, self.scheduler, s.w_lr,
                              s.w_lr_min + (s.w_lr - s.w_lr_min) * cosine)
            self.strategy.resume_rates()
        return changes

    def _scorer(self) -> Scorer:
        return make_scorer(self.cfg, self.data, self.net, self.dist)

    def run(self) -> Genotype:
        """Run the remaining epochs (none for a strategy that trains no supernet), then choose,
        save and plot the genotype."""
        s = self.cfg.search
        if not self.strategy.trains:
            return self._finish()
        steps = steps_per_epoch(self.cfg, len(self.data.split["w"]))
        self.strategy.announce(self.quiet)
        bar = self._bar(s.epochs * steps, self.epoch * steps, "search")
        try:
            while self.epoch < s.epochs:
                self._epoch(self.epoch + 1, bar)
        finally:
            bar.close()
        return self._finish()

    def _epoch(self, epoch: int, bar) -> None:
        s, timer, strategy = self.cfg.search, Timer(), self.strategy
        strategy.start_epoch(epoch)
        a_batches = _batches(self.data.train_a, s.a_batch, epoch, self.cfg, self.dist)
        w_losses, a_losses = [], []
        self.net.train()
        for step, w_batch in enumerate(_batches(self.data.train_w, s.batch_size, epoch, self.cfg,
                                                   self.dist)):
            with self._guarded(f"epoch {epoch}, step {step + 1}", "loss became "):
                w_loss, a_loss = strategy.step(self.model, self.w_opt, self.loss_fn, w_batch,
                                               a_batches, self.precision)
            w_losses.append(w_loss)
            if a_loss is not None:
                a_losses.append(a_loss)
            bar.update(1)
            self._postfix(bar, epoch, w_loss)
        done_a = strategy.arch_epochs(s, epoch) * steps_per_epoch(self.cfg,
                                                                  len(self.data.split["w"]))
        record = {"epoch": epoch, "phase": strategy.phase(),
                  "w_loss": float(np.mean(w_losses)),
                  "a_loss": float(np.mean(a_losses)) if a_losses else None,
                  "w_lr": self.w_opt.param_groups[0]["lr"], "a_lr": strategy.a_lr(),
                  "a_steps": done_a, "a_steps_total": self.budget["a_steps"],
                  "logit_budget_used": round(s.a_lr * done_a, 4),
                  **self.dist.describe(s.batch_size), **strategy.end_epoch()}
        self.scheduler.step()
        self.epoch = epoch
        with self._guarded(f"the end of epoch {epoch}"):
            if strategy.validates(epoch):
                scores = self._score_validation()
                record.update(val_psnr=scores["psnr"], val_ssim=scores["ssim"])
                if scores["psnr"] > self.best["psnr"]:
                    self.best = {"psnr": scores["psnr"], "ssim": scores["ssim"], "epoch": epoch}
                    if self.dist.is_main:
                        save_checkpoint(self.out / "best.pt", self._state())
                self._postfix(bar, epoch, record["w_loss"])
            self.dist.check_same({"alpha/beta": self.net.arch_parameters(),
                                  "weights": self.net.weight_parameters()}, f"after epoch {epoch}")
            record.update(seconds=timer.seconds(), peak_rss_mb=peak_rss_mb())
            self._save_last()
        if self.dist.is_main:
            self._log(record, s.epochs)
            arch = strategy.arch_record(epoch)
            if arch is not None:
                self.history.append(arch)
        self.dist.barrier()

    def _diverged(self, problem: str, where: str) -> HinasError:
        if self.saved:
            return HinasError(f"{problem} at {where}; stopped (the last good checkpoint "
                              f"{self.last} (epoch {self.saved}) is kept); try a "
                              f"lower learning rate (--resume --set search.w_lr=...)")
        return HinasError(f"{problem} at {where}; stopped (no epoch had finished, so there is "
                          f"no checkpoint); run it again with a lower learning rate (--set "
                          f"search.w_lr=..., without --resume: the folder is reused)")

    def _postfix(self, bar, epoch: int, loss: float) -> None:
        best = self.best["psnr"]
        bar.set_postfix(epoch=epoch, loss=f"{loss:.4f}",
                        best_val_psnr=f"{best:.2f}" if math.isfinite(best) else "n/a")

    def _finish(self) -> Genotype:
        timer = Timer()
        s = self.cfg.search
        meta = {"strategy": s.strategy, "seed": self.cfg.seed,
                "epochs": s.epochs, "data_split": self.data.split}
        records = self.metrics.read()
        genotype = self.strategy.choose(meta, records, self.best, self.out / "best.pt",
                                        self.epoch, self._scorer, self.quiet)
        epochs_s = sum(record["seconds"] for record in records)
        genotype.meta["search_seconds"] = round(epochs_s + timer.seconds(), 2)
        if self.dist.is_main:
            genotype.save(self.out / "genotype.json")
            decided = genotype.meta.get("verdict", {}).get("message")
            best = genotype.meta["best_val_psnr"]
            self.log.write(f"genotype written to {self.out / 'genotype.json'}: width path "
                           f"{genotype.path}, best validation PSNR "
                           + (f"{best:.2f} dB" if best is not None else "none (no epoch validated)")
                           + (f"; search {decided}" if decided else ""))
            plot_genotype(genotype, self.out / "architecture.png")
            if records:
                plot_curves(records, self.out / "curves.png", "epoch")
            if self.strategy.learns_arch:
                plot_arch_history(self.history.read(), self.cfg.space,
                                  self.out / "arch_evolution.png", records)
        self.dist.barrier()
        return genotype


def make_scorer(cfg: Config, data: SearchData, net: Supernet, ctx: Context) -> Scorer:
    """One-shot scoring of `net` on central `search.select_crop` px crops of Validation V,
    BatchNorm re-estimated on `search.bn_calibration` fixed Train-W batches (the same for every
    architecture)."""
    s = cfg.search
    batches = _batches(data.train_w, s.batch_size, s.epochs + 1, cfg, ctx)
    calibration = [lq for lq, _ in itertools.islice(batches, s.bn_calibration)]
    return Scorer(net, data.val_pairs(cfg, s.select_crop or s.val_crop), cfg, ctx.device,
                  calibration)


def open_search(run: str | Path, overrides: list[str] | tuple[str, ...] = ()
                ) -> tuple[Config, Supernet, Scorer]:
    """A search run's config (with `overrides`), its supernet (best.pt, else last.pt: RSWS keeps
    no best) and a one-shot scorer on its Validation V, for selecting or scoring genotypes."""
    run = Path(run)
    if not (run / "config.yaml").exists():
        raise HinasError(f"{run}: not a search run folder (no config.yaml)")
    cfg = load_config(run / "config.yaml", overrides)
    checkpoint = run / "best.pt" if (run / "best.pt").exists() else run / "last.pt"
    if not checkpoint.exists():
        raise HinasError(f"{run}: no supernet checkpoint (best.pt or last.pt)")
    net = Supernet(cfg.space, cfg.task)
    net.load_state_dict(load_checkpoint(checkpoint)["model"])
    ctx = Context(device=torch.device(cfg.device))
    net.to(ctx.device)  # where the scorer sends its inputs
    return cfg, net, make_scorer(cfg, prepare_data(cfg, cfg.data.path), net, ctx)


def reselect(run: str | Path, overrides: list[str] | tuple[str, ...] = (), quiet: bool = False
             ) -> Genotype:
    """The genotype a finished HiNAS search gives under other selection settings
    (`search.select`, `search.width`, ... in `overrides`), without searching again."""
    cfg, net, scorer = open_search(run, overrides)
    if not STRATEGIES.get(cfg.search.strategy).learns_arch:
        raise HinasError(f"{run}: a {cfg.search.strategy} search has no α/β to select from")
    meta = Genotype.load(Path(run) / "genotype.json").meta if (
        Path(run) / "genotype.json").exists() else {}
    genotype = select(net, cfg, scorer, {k: v for k, v in meta.items()
                                         if k not in ("selection", "cost")}, quiet)
    budget = search_budget(cfg, quiet)
    return genotype if budget is None else budget.settle(genotype, cfg.search.path_prior, quiet)


def search(cfg: Config, data_dir: str | Path, out: str | Path, resume: bool = False,
           quiet: bool = False, lq: str | Path | list | None = None) -> Genotype:
    """Run (or resume) a search in run folder `out` (new or empty unless `resume`; held by this
    run alone, see :class:`hinas.runtime.runs.RunFolder`) on the images of `data_dir`; `lq`
    (one or several folders; else `cfg.data.lq`) holds their degraded inputs for a paired or
    SR task, matched by file-name stem."""
    check_device(cfg.device)
    cfg = with_inputs(cfg, lq)
    with RunFolder(out, resume, "search"):
        return SearchRun(cfg, data_dir, out, resume, quiet).run()


def arch_gradients(run: str | Path, data: str | Path | list, count: int
                   ) -> tuple[Config, np.ndarray, np.ndarray]:
    """∂L/∂α and ∂L/∂β of the search loss on each of the first `count` Train-A batches of search
    run `run` (its supernet as saved, its images read from `data`), weights frozen as in an
    A-step: the run's config and two arrays [batches, entries] (β: the entries its mask
    keeps)."""
    cfg, net, _ = open_search(run, [f"data.path={json.dumps(data)}"])
    train_a = prepare_data(cfg, data).train_a
    net.train()
    train_a.set_epoch(10_000)  # crops no epoch of the search drew
    batches = torch.utils.data.DataLoader(train_a, batch_size=cfg.search.batch_size)
    loss_fn = build_loss(cfg.search.loss, cfg.search.ssim_weight)
    alpha, beta = [], []
    mask = net.beta_mask.numpy()
    for lq, gt in itertools.islice(batches, count):
        net.zero_grad(set_to_none=True)
        with frozen(net.weight_parameters()):
            loss_fn(net(lq), gt).backward()
        alpha.append(net.alpha.grad.numpy().ravel().copy())
        beta.append(net.beta.grad.numpy()[mask].copy())
    return cfg, np.array(alpha), np.array(beta)
