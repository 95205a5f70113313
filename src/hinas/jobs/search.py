"""Architecture search (paper §3.3, §4.1; docs/decisions.md §2): bilevel first-order HiNAS, and
random search with weight sharing (RSWS, Li & Talwalkar 2020) as a baseline.

HiNAS: the training images are split into Train W (weights), Train A (α, β) and Validation V. The
first `warmup_epochs` epochs update weights only; afterwards every step is a W-step (SGD) followed
by an A-step (Adam). From `eval_from_epoch` the supernet is scored on V every epoch and the best one
(weights, α, β) is kept; the genotype is derived from it.

RSWS: each step trains the supernet on one uniformly sampled architecture; at the end `samples`
architectures are scored on V with the shared weights and the best becomes the genotype.

A run folder holds config.yaml, metrics.jsonl, arch_history.jsonl, checkpoints `last.pt` (every
epoch) and `best.pt`, genotype.json and plots. `resume=True` continues exactly from `last.pt`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hinas.config import Config, load_config, save_config, with_inputs
from hinas.data.datasets import PatchDataset
from hinas.data.degradations import task_degradation
from hinas.errors import HinasError, warn
from hinas.measures.losses import build_loss
from hinas.runtime.distributed import Context, launch
from hinas.runtime.engine import load_training_images, optimisation_step
from hinas.runtime.execution import (
    FULL_PRECISION,
    Precision,
    check_device,
    make_loader,
    memory_format,
)
from hinas.runtime.runlog import RunLog, run_header
from hinas.runtime.runs import (
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
from hinas.runtime.scalars import ScalarLog
from hinas.runtime.scoring import make_pairs, score_model
from hinas.runtime.selection import Scorer, select_genotype, selection_cost
from hinas.runtime.viz import plot_arch_history, plot_curves, plot_genotype
from hinas.space.derive import collapse, decisiveness, derive_genotype, verdict
from hinas.space.genotype import Genotype
from hinas.space.ops import check_space_ops
from hinas.space.supernet import Supernet, sample_arch


def make_optimizers(net: Supernet, cfg: Config) -> tuple[torch.optim.SGD, torch.optim.AdamW]:
    """SGD over the weights only and Adam over α, β only (never mixed). The architecture decay
    is decoupled (AdamW): a coupled L2 term pins α at −ḡ/λ (docs/decisions.md §2)."""
    s = cfg.search
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=s.w_lr, momentum=s.w_momentum,
                            weight_decay=s.w_weight_decay)
    a_opt = torch.optim.AdamW(net.arch_parameters(), lr=s.a_lr, weight_decay=s.a_weight_decay)
    return w_opt, a_opt


def search_step(net: Supernet, w_opt: torch.optim.Optimizer, a_opt: torch.optim.Optimizer | None,
                loss_fn: nn.Module, w_batch: tuple[torch.Tensor, torch.Tensor],
                a_batch: tuple[torch.Tensor, torch.Tensor] | None,
                grad_clip: float, w_net: nn.Module | None = None,
                precision: Precision = FULL_PRECISION) -> tuple[float, float | None]:
    """One HiNAS step: the W-step on a Train-W batch (through `w_net`, e.g. the supernet under
    DDP, if given), then (after warm-up) the A-step on a Train-A batch (first-order alternation).
    Returns (W loss, A loss or None)."""
    w_loss = optimisation_step(w_net or net, w_opt, net.arch_parameters(), loss_fn, *w_batch,
                               grad_clip, precision=precision)
    a_loss = None
    if a_opt is not None and a_batch is not None:
        a_loss = optimisation_step(net, a_opt, net.weight_parameters(), loss_fn, *a_batch,
                                   precision=precision)
    return w_loss, a_loss


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
    step)."""
    s = cfg.search
    searching = s.epochs - s.warmup_epochs if s.strategy == "hinas" else 0
    a_steps = searching * steps_per_epoch(cfg, n_w)
    return {"a_steps": a_steps, "a_batch": s.a_batch, "a_lr": s.a_lr,
            "logit_budget": round(s.a_lr * a_steps, 4)}


DECISIVENESS_KEYS = ("alpha_entropy", "beta_entropy", "path_margin", "edge_margin",
                     "choices_changed", "skip_kept", "none_weight", "none_weight_max",
                     "collapsed_layers")

MIN_LOGIT_BUDGET = 1.0
MIN_A_STEPS = 500
"""Below either, α/β barely leave their initial values: a warning names the numbers."""


def _batches(dataset: PatchDataset, batch: int, epoch: int, cfg: Config, ctx: Context
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    dataset.set_epoch(epoch)
    fmt = memory_format(cfg.search.channels_last)
    loader = make_loader(ctx.shard(dataset, batch), ctx.rank_batch(batch), cfg.data.workers,
                         (cfg.seed, ctx.rank, epoch, dataset.seed))
    for lq, gt in loader:
        yield lq.to(ctx.device, memory_format=fmt), gt.to(ctx.device)


def _arch_record(net: Supernet, epoch: int) -> dict:
    return {"epoch": epoch, "alpha": net.alpha_weights().detach().cpu().numpy().round(5).tolist(),
            "beta": net.beta_weights().detach().cpu().numpy().round(5).tolist()}


class SearchRun:
    """A search in a run folder: build, resume, loop over epochs, derive, plot."""

    def __init__(self, cfg: Config, data_dir: str | Path, out: str | Path, resume: bool = False,
                 quiet: bool = False):
        check_space_ops(cfg.space.ops)  # before the images load
        if not cfg.data.path:  # recorded, so that the run can be resumed or re-selected alone
            folders = data_dir if isinstance(data_dir, (list, tuple)) else [data_dir]
            cfg = dataclasses.replace(cfg, data=dataclasses.replace(
                cfg.data, path=[str(folder) for folder in folders]))
        cfg, self.dist = launch(cfg, cfg.search.batch_size, resume, (cfg.search.a_batch,))
        self.cfg, self.out, self.quiet = cfg, Path(out), quiet or not self.dist.is_main
        self.device = self.dist.device
        seed_everything(cfg.seed)
        self.data = prepare_data(cfg, data_dir)
        self.net = Supernet(cfg.space, cfg.task).to(
            self.device, memory_format=memory_format(cfg.search.channels_last))
        self.precision = Precision(cfg.search.amp, self.device)
        self.w_opt, self.a_opt = make_optimizers(self.net, cfg)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.w_opt, T_max=cfg.search.epochs, eta_min=cfg.search.w_lr_min)
        self.loss_fn = build_loss(cfg.search.loss, cfg.search.ssim_weight)
        self.val_pairs = self.data.val_pairs(cfg)
        self.sample_rng = np.random.default_rng([cfg.seed, 7])
        self.epoch, self.best = 0, {"psnr": -math.inf, "ssim": 0.0, "epoch": 0}
        self.metrics = MetricsLog(self.out / "metrics.jsonl")
        self.history = MetricsLog(self.out / "arch_history.jsonl")
        self.budget = arch_budget(cfg, len(self.data.split["w"]))
        self.log = RunLog(self.out / "run.log", resume or not self.dist.is_main)  # rank 0 writes
        self.scalars = ScalarLog(self.out / "tensorboard",
                                 cfg.runtime.tensorboard and self.dist.is_main)
        if resume and (self.out / "last.pt").exists():
            self._restore(load_checkpoint(self.out / "last.pt"))
        elif resume:
            raise HinasError(f"{self.out}: nothing to resume (no last.pt)")
        elif self.dist.is_main:
            save_config(cfg, self.out / "config.yaml")
            for log in (self.metrics, self.history):
                log.path.unlink(missing_ok=True)
        self.model = self.dist.wrap(self.net, self.net.arch_parameters(),
                                    find_unused=cfg.search.strategy == "random")
        if self.dist.is_main:
            self.log.write(run_header("search", cfg, data_dir, self.data.split, self.epoch,
                                      "epoch"))
        self.dist.barrier()

    def _state(self) -> dict:
        return {"model": self.net.state_dict(), "w_opt": self.w_opt.state_dict(),
                "a_opt": self.a_opt.state_dict(), "scheduler": self.scheduler.state_dict(),
                "epoch": self.epoch, "best": dict(self.best), "rng": rng_state(),
                "sample_rng": self.sample_rng.bit_generator.state,
                "config": self.cfg.to_dict()}

    def _restore(self, state: dict) -> None:
        changes = resume_changes(state["config"], self.cfg.to_dict(), self.out / "last.pt")
        self.net.load_state_dict(state["model"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.best = state["epoch"], state["best"]
        set_rng_state(state["rng"])
        self.sample_rng.bit_generator.state = state["sample_rng"]
        for log in (self.metrics, self.history) if self.dist.is_main else ():
            log.truncate(self.epoch, "epoch")
        if any(key.startswith("search.") for key in changes):
            s = self.cfg.search
            self.scheduler.T_max, self.scheduler.eta_min = s.epochs, s.w_lr_min
            cosine = 0.5 * (1 + math.cos(math.pi * self.epoch / s.epochs))
            set_learning_rate(self.w_opt, self.scheduler, s.w_lr,
                              s.w_lr_min + (s.w_lr - s.w_lr_min) * cosine)
            for group in self.a_opt.param_groups:
                group["lr"] = s.a_lr
        if changes and self.dist.is_main:
            record_resume_changes(self.out, {"epoch": self.epoch}, changes, self.cfg.to_dict())

    def _validate(self) -> dict[str, float]:
        return self.dist.on_main(
            lambda: score_model(self.net, self.val_pairs, self.cfg.task, self.device)[1])

    def _scorer(self) -> Scorer:
        return make_scorer(self.cfg, self.data, self.net, self.dist)

    def run(self) -> Genotype:
        """Run the remaining epochs, then derive, save and plot the genotype."""
        s = self.cfg.search
        steps = steps_per_epoch(self.cfg, len(self.data.split["w"]))
        if s.strategy == "hinas":
            b = self.budget
            if not self.quiet:
                print(f"hinas: architecture-step budget: {b['a_steps']} A-steps of "
                      f"{b['a_batch']} crops × a_lr {s.a_lr:g} = logit budget "
                      f"{b['logit_budget']:g}", file=sys.stderr, flush=True)
            if b["logit_budget"] < MIN_LOGIT_BUDGET or b["a_steps"] < MIN_A_STEPS:
                warn(f"{b['a_steps']} A-steps at a_lr {s.a_lr:g} (logit budget "
                     f"{b['logit_budget']:g}) may not decide: α/β need a logit budget ≥ "
                     f"{MIN_LOGIT_BUDGET:g} over ≥ {MIN_A_STEPS} A-steps")
        bar = progress(s.epochs * steps, self.epoch * steps, self.quiet,
                       f"search {self.cfg.task.describe()}")
        try:
            while self.epoch < s.epochs:
                self._epoch(self.epoch + 1, bar)
        finally:
            bar.close()
        return self._finish()

    def _epoch(self, epoch: int, bar) -> None:
        s, timer = self.cfg.search, Timer()
        searching = s.strategy == "hinas" and epoch > s.warmup_epochs
        before = (derive_genotype(self.net, prior=s.path_prior) if s.strategy == "hinas"
                  else None)
        a_batches = _batches(self.data.train_a, s.a_batch, epoch, self.cfg, self.dist)
        w_losses, a_losses = [], []
        self.net.train()
        for step, w_batch in enumerate(_batches(self.data.train_w, s.batch_size, epoch, self.cfg,
                                                   self.dist)):
            try:
                if s.strategy == "random":
                    arch = sample_arch(self.cfg.space, self.cfg.task, self.sample_rng)
                    w_losses.append(optimisation_step(
                        self.model, self.w_opt, self.net.arch_parameters(), self.loss_fn, *w_batch,
                        s.grad_clip, arch, self.precision))
                else:
                    a_batch = next(a_batches) if searching else None
                    w_loss, a_loss = search_step(self.net, self.w_opt,
                                                 self.a_opt if searching else None, self.loss_fn,
                                                 w_batch, a_batch, s.grad_clip, self.model,
                                                 self.precision)
                    w_losses.append(w_loss)
                    if a_loss is not None:
                        a_losses.append(a_loss)
            except FloatingPointError as err:
                raise self._diverged(f"loss became {err.args[0]}", f"epoch {epoch}, step "
                                     f"{step + 1}") from None
            bar.update(1)
            self._postfix(bar, epoch, w_losses[-1])
        phase = "random" if s.strategy == "random" else "search" if searching else "warmup"
        per_epoch = steps_per_epoch(self.cfg, len(self.data.split["w"]))
        done_a = max(0, epoch - s.warmup_epochs) * per_epoch if s.strategy == "hinas" else 0
        record = {"epoch": epoch, "phase": phase,
                  "w_loss": float(np.mean(w_losses)),
                  "a_loss": float(np.mean(a_losses)) if a_losses else None,
                  "w_lr": self.w_opt.param_groups[0]["lr"],
                  "a_lr": self.a_opt.param_groups[0]["lr"] if searching else None,
                  "a_steps": done_a, "a_steps_total": self.budget["a_steps"],
                  "logit_budget_used": round(s.a_lr * done_a, 4),
                  **self.dist.describe(s.batch_size)}
        if before is not None:
            record.update(self._decisiveness(before, searching))
        self.scheduler.step()
        done = self.epoch
        self.epoch = epoch
        try:
            if s.strategy == "hinas" and epoch >= s.eval_from_epoch:
                scores = self._validate()
                record.update(val_psnr=scores["psnr"], val_ssim=scores["ssim"])
                if scores["psnr"] > self.best["psnr"]:
                    self.best = {"psnr": scores["psnr"], "ssim": scores["ssim"], "epoch": epoch}
                    if self.dist.is_main:
                        save_checkpoint(self.out / "best.pt", self._state())
                self._postfix(bar, epoch, record["w_loss"])
            self.dist.check_same({"alpha/beta": self.net.arch_parameters(),
                                  "weights": self.net.weight_parameters()}, f"after epoch {epoch}")
            record.update(seconds=timer.seconds(), peak_rss_mb=peak_rss_mb())
            if self.dist.is_main:
                save_checkpoint(self.out / "last.pt", self._state())
        except FloatingPointError as err:
            self.epoch = done
            raise self._diverged(str(err), f"the end of epoch {epoch}") from None
        if self.dist.is_main:
            self.metrics.append(record)
            self.log.record(record, "epoch", s.epochs)
            self.scalars.add(record, "epoch")
            if s.strategy == "hinas":
                self.history.append(_arch_record(self.net, epoch))
        self.dist.barrier()

    def _decisiveness(self, before: Genotype, searching: bool) -> dict:
        """Decisiveness of the current α/β, with the choices changed since `before`, and, once α
        moves (`searching`), the collapse guard (a warning when a layer collapses)."""
        current = derive_genotype(self.net, prior=self.cfg.search.path_prior)
        record = decisiveness(current, before, self.cfg.search.path_prior)
        if not searching:
            return record
        guard = collapse(current)
        if guard["collapsed_layers"] and self.dist.is_main:
            warn(f"layer(s) {guard['collapsed_layers']} collapsed after epoch {self.epoch + 1}: "
                 f"skip_connect holds {guard['skip_kept']} kept edges per layer, none weighs up "
                 f"to {guard['none_weight_max']}; the best-supernet rule keeps an earlier epoch "
                 f"if it validated better")
        return {**record, **guard}

    def _diverged(self, problem: str, where: str) -> HinasError:
        if self.epoch:
            return HinasError(f"{problem} at {where}; stopped (the last good checkpoint "
                              f"{self.out / 'last.pt'} (epoch {self.epoch}) is kept); try a "
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
        if s.strategy == "random":
            genotype = self._random_best(meta)
        else:
            validated = self.best["epoch"] > 0
            if validated:
                self.net.load_state_dict(load_checkpoint(self.out / "best.pt")["model"])
            upto = self.best["epoch"] or self.epoch
            decision = verdict(records, upto)
            meta.update(best_epoch=self.best["epoch"],
                        best_val_psnr=self.best["psnr"] if validated else None,
                        best_val_ssim=self.best["ssim"] if validated else None,
                        path_prior=s.path_prior, arch_budget=self.budget, verdict=decision,
                        decisiveness={k: v for r in records if r["epoch"] == upto
                                      for k, v in r.items() if k in DECISIVENESS_KEYS})
            genotype = self.dist.on_main(lambda: self._select(meta))
            if not self.quiet:
                print(f"hinas: search {decision['message']}", file=sys.stderr, flush=True)
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
            plot_curves(records, self.out / "curves.png", "epoch")
            if s.strategy == "hinas":
                plot_arch_history(self.history.read(), self.cfg.space,
                                  self.out / "arch_evolution.png", records)
        self.dist.barrier()
        return genotype

    def _select(self, meta: dict) -> Genotype:
        """The genotype of the best supernet under `search.select` / `search.width`."""
        return select(self.net, self.cfg, self._scorer(), meta, self.quiet)

    def _random_best(self, meta: dict) -> Genotype:
        rng = np.random.default_rng([self.cfg.seed, 11])
        scorer = self._scorer() if self.dist.is_main else None
        scored = []
        for _ in range(self.cfg.search.samples):
            arch = sample_arch(self.cfg.space, self.cfg.task, rng)
            scored.append((self.dist.on_main(lambda arch=arch: scorer(arch)), arch))
        best_psnr, best = max(scored, key=lambda t: t[0])
        genotype = best.genotype
        genotype.meta = {**meta, "samples": len(scored), "best_val_psnr": best_psnr,
                         "bn_calibration": self.cfg.search.bn_calibration}
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
    if cfg.search.strategy != "hinas":
        raise HinasError(f"{run}: a {cfg.search.strategy} search has no α/β to select from")
    meta = Genotype.load(Path(run) / "genotype.json").meta if (
        Path(run) / "genotype.json").exists() else {}
    return select(net, cfg, scorer, {k: v for k, v in meta.items() if k != "selection"}, quiet)


def select(net: Supernet, cfg: Config, scorer: Scorer, meta: dict, quiet: bool) -> Genotype:
    """`select_genotype` with a progress bar (unless `quiet`) and the run's selection seed."""
    with progress(selection_cost(cfg), 0, quiet, "select") as bar:
        return select_genotype(net, cfg, scorer, meta, np.random.default_rng([cfg.seed, 13]),
                               lambda: bar.update(1))


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
