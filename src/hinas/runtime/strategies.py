"""Search strategies (paper §3.3, §4.1; docs/decisions.md §2): how a search trains the supernet and
chooses its genotype, one registered class each (`STRATEGIES`, by `search.strategy`).

- `hinas`: bilevel first-order HiNAS. The training images are split into Train W (weights),
  Train A (α, β) and Validation V. The first `warmup_epochs` epochs update weights only;
  afterwards every step is a W-step (SGD) followed by an A-step (Adam). From `eval_from_epoch`
  the supernet is scored on V every epoch and the best one (weights, α, β) is kept; the genotype
  is selected from it (`search.select`, `search.width`).
- `random`: random search with weight sharing (RSWS, Li & Talwalkar 2020), a baseline: each step
  trains the supernet on one uniformly sampled architecture; at the end `samples` architectures
  are scored on V with the shared weights and the best becomes the genotype.
- `params`: a zero-cost search under a cost budget: no supernet is trained; of `samples`
  architectures drawn uniformly among those within the budget, the one with the most parameters
  becomes the genotype: a zero-cost baseline (within a MACs budget the parameter count ranks
  random networks better than every supernet signal, yet its pick does not beat them:
  docs/selection.md).

The search run (:mod:`hinas.jobs.search`) owns the data, the weight optimizer, its schedule and
the run folder; a strategy owns the rest.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from hinas.config import Config, SearchConfig
from hinas.errors import HinasError, warn
from hinas.measures.complexity import count_params
from hinas.models.architectures import DerivedNet
from hinas.registry import Registry
from hinas.runtime.budget import Budget, search_budget
from hinas.runtime.distributed import Context
from hinas.runtime.engine import optimisation_step
from hinas.runtime.execution import FULL_PRECISION, Precision
from hinas.runtime.runs import load_checkpoint, progress
from hinas.runtime.selection import Scorer, select_genotype, selection_cost
from hinas.space.derive import collapse, decisiveness, derive_genotype, verdict
from hinas.space.genotype import Genotype
from hinas.space.supernet import Supernet, genotype_arch, sample_arch

Batch = tuple[torch.Tensor, torch.Tensor]

DECISIVENESS_KEYS = ("alpha_entropy", "beta_entropy", "path_margin", "edge_margin",
                     "choices_changed", "skip_kept", "none_weight", "none_weight_max",
                     "collapsed_layers")

MIN_LOGIT_BUDGET = 1.0
MIN_A_STEPS = 500
"""Below either, α/β barely leave their initial values: a warning names the numbers."""


def weight_optimizer(net: Supernet, s: SearchConfig) -> torch.optim.SGD:
    """SGD over the supernet's weights only (never α, β)."""
    return torch.optim.SGD(net.weight_parameters(), lr=s.w_lr, momentum=s.w_momentum,
                           weight_decay=s.w_weight_decay)


def arch_optimizer(net: Supernet, s: SearchConfig) -> torch.optim.AdamW:
    """Adam over α, β only. The architecture decay is decoupled (AdamW): a coupled L2 term pins
    α at −ḡ/λ (docs/decisions.md §2)."""
    return torch.optim.AdamW(net.arch_parameters(), lr=s.a_lr, weight_decay=s.a_weight_decay)


def search_step(net: Supernet, w_opt: torch.optim.Optimizer, a_opt: torch.optim.Optimizer | None,
                loss_fn: nn.Module, w_batch: Batch, a_batch: Batch | None,
                grad_clip: float, w_net: nn.Module | None = None,
                precision: Precision = FULL_PRECISION, budget: Budget | None = None
                ) -> tuple[float, float | None]:
    """One HiNAS step: the W-step on a Train-W batch (through `w_net`, e.g. the supernet under
    DDP, if given), then (after warm-up) the A-step on a Train-A batch (first-order alternation),
    with the cost `budget`'s penalty when there is one. Returns (W loss, A loss or None)."""
    w_loss = optimisation_step(w_net or net, w_opt, net.arch_parameters(), loss_fn, *w_batch,
                               grad_clip, precision=precision)
    a_loss = None
    if a_opt is not None and a_batch is not None:
        penalty = None if budget is None else \
            (lambda: budget.penalty(net.alpha_weights(), net.beta_weights()))
        a_loss = optimisation_step(net, a_opt, net.weight_parameters(), loss_fn, *a_batch,
                                   precision=precision, penalty=penalty)
    return w_loss, a_loss


def select(net: Supernet, cfg: Config, scorer: Scorer, meta: dict, quiet: bool) -> Genotype:
    """`select_genotype` with a progress bar (unless `quiet`) and the run's selection seed."""
    with progress(selection_cost(cfg), 0, quiet, "select") as bar:
        return select_genotype(net, cfg, scorer, meta, np.random.default_rng([cfg.seed, 13]),
                               lambda: bar.update(1))


class SearchStrategy:
    """How a search of `cfg` trains supernet `net` (on the processes of `dist`) and chooses its
    genotype; `budget` is the run's architecture-step budget
    (:func:`hinas.jobs.search.arch_budget`)."""

    summary: ClassVar[str]
    """What it is, in a few words (the command line's help)."""
    learns_arch: ClassVar[bool] = False
    """Whether it trains α, β: they then have a history (arch_history.jsonl and its plot) and a
    genotype can be selected from them again (`hinas reselect`)."""
    partial_steps: ClassVar[bool] = False
    """Whether a weight step leaves parts of the supernet unused (DDP must look for them)."""
    trains: ClassVar[bool] = True
    """Whether it trains the supernet at all (False: the search goes straight to `choose`)."""

    def __init__(self, cfg: Config, net: Supernet, dist: Context, budget: dict[str, float]):
        self.cfg, self.net, self.dist, self.budget = cfg, net, dist, budget
        self.cost = search_budget(cfg, quiet=not dist.is_main)

    def fitting(self, rng: np.random.Generator, wanted: int, what: str) -> list[Genotype]:
        """`wanted` architectures drawn uniformly from the space with `rng`, those over the cost
        budget (if any) skipped; HinasError after `MAX_DRAWS` draws per one wanted (`what` says
        which search gives up)."""
        kept, draws = [], 0
        while len(kept) < wanted:
            genotype, draws = sample_arch(self.cfg.space, self.cfg.task, rng).genotype, draws + 1
            if self.cost is None or self.cost.fits(genotype):
                kept.append(genotype)
            elif draws > MAX_DRAWS * wanted:
                raise HinasError(f"{what}: {len(kept)} of {draws} uniformly drawn architectures "
                                 f"fit {self.cost.describe()}; give a larger budget")
        return kept

    def within_budget(self, genotype: Genotype, quiet: bool) -> Genotype:
        """`genotype` fitted to the cost budget, if any (:meth:`Budget.settle`)."""
        return genotype if self.cost is None else self.cost.settle(
            genotype, self.cfg.search.path_prior, quiet)

    @staticmethod
    def arch_epochs(s: SearchConfig, epoch: int) -> int:
        """How many of the first `epoch` epochs make A-steps."""
        return 0

    def announce(self, quiet: bool) -> None:
        """Say, before the first epoch, what the search is set to do."""

    def state(self) -> dict:
        """Its part of the checkpoint."""
        return {}

    def load_state(self, state: dict) -> None:
        """Take back what `state` saved."""

    def resume_rates(self) -> None:
        """Take the learning rates of a config changed on resume."""

    def start_epoch(self, epoch: int) -> None:
        """Epoch `epoch` (1-based) begins."""

    def step(self, model: nn.Module, w_opt: torch.optim.Optimizer, loss_fn: nn.Module,
             w_batch: Batch, a_batches: Iterator[Batch], precision: Precision
             ) -> tuple[float, float | None]:
        """One training step on Train-W batch `w_batch` (through `model`, the supernet as the
        weight steps see it), drawing on `a_batches` if it trains α, β; returns (W loss, A loss
        or None)."""
        raise NotImplementedError

    def phase(self) -> str:
        """The phase of the current epoch, for its record."""
        raise NotImplementedError

    def a_lr(self) -> float | None:
        """The architecture learning rate of the current epoch (None: no A-steps)."""
        return None

    def end_epoch(self) -> dict:
        """What the current epoch's record adds (after its losses and rates)."""
        return {}

    def validates(self, epoch: int) -> bool:
        """Whether the supernet is scored on V after epoch `epoch` (and kept as best.pt if
        best)."""
        return False

    def arch_record(self, epoch: int) -> dict | None:
        """The line of arch_history.jsonl after epoch `epoch` (None: no α, β)."""
        return None

    def choose(self, meta: dict, records: list[dict], best: dict, best_pt: Path, epoch: int,
               scorer: Callable[[], Scorer], quiet: bool) -> Genotype:
        """The genotype of the search that ended after epoch `epoch` (metrics `records`, the
        best validation `best`, its supernet in `best_pt`), with `meta` and what it adds;
        `scorer` makes the one-shot scorer on V."""
        raise NotImplementedError


STRATEGIES: Registry[type[SearchStrategy]] = Registry("search strategy")
MAX_DRAWS = 200
"""A search under a budget draws at most this many architectures per one it keeps."""


@STRATEGIES.register("hinas")
class HiNAS(SearchStrategy):
    """Bilevel first-order search of α, β (Adam on Train A after the warm-up); the best
    validated supernet's α, β select the genotype."""

    summary = "differentiable search of α, β, the paper's"
    learns_arch = True

    def __init__(self, cfg: Config, net: Supernet, dist: Context, budget: dict[str, float]):
        super().__init__(cfg, net, dist, budget)
        self.a_opt = arch_optimizer(net, cfg.search)
        self.searching, self.before, self.epoch = False, None, 0

    @staticmethod
    def arch_epochs(s: SearchConfig, epoch: int) -> int:
        """The epochs after the warm-up."""
        return max(0, epoch - s.warmup_epochs)

    def announce(self, quiet: bool) -> None:
        """The architecture-step budget, and a warning when it is too small to decide."""
        b, a_lr = self.budget, self.cfg.search.a_lr
        if not quiet:
            print(f"hinas: architecture-step budget: {b['a_steps']} A-steps of "
                  f"{b['a_batch']} crops × a_lr {a_lr:g} = logit budget "
                  f"{b['logit_budget']:g}", file=sys.stderr, flush=True)
        if b["logit_budget"] < MIN_LOGIT_BUDGET or b["a_steps"] < MIN_A_STEPS:
            warn(f"{b['a_steps']} A-steps at a_lr {a_lr:g} (logit budget "
                 f"{b['logit_budget']:g}) may not decide: α/β need a logit budget ≥ "
                 f"{MIN_LOGIT_BUDGET:g} over ≥ {MIN_A_STEPS} A-steps")

    def state(self) -> dict:
        """The architecture optimizer."""
        return {"a_opt": self.a_opt.state_dict()}

    def load_state(self, state: dict) -> None:
        """The architecture optimizer."""
        self.a_opt.load_state_dict(state["a_opt"])

    def resume_rates(self) -> None:
        """`search.a_lr`."""
        for group in self.a_opt.param_groups:
            group["lr"] = self.cfg.search.a_lr

    def start_epoch(self, epoch: int) -> None:
        """Note whether α, β move in this epoch and the genotype they give before it."""
        s = self.cfg.search
        self.searching, self.epoch = epoch > s.warmup_epochs, epoch
        self.before = derive_genotype(self.net, prior=s.path_prior)

    def step(self, model: nn.Module, w_opt: torch.optim.Optimizer, loss_fn: nn.Module,
             w_batch: Batch, a_batches: Iterator[Batch], precision: Precision
             ) -> tuple[float, float | None]:
        """The W-step, then (after the warm-up) the A-step."""
        a_batch = next(a_batches) if self.searching else None
        return search_step(self.net, w_opt, self.a_opt if self.searching else None, loss_fn,
                           w_batch, a_batch, self.cfg.search.grad_clip, model, precision,
                           self.cost)

    def phase(self) -> str:
        """`warmup`, then `search`."""
        return "search" if self.searching else "warmup"

    def a_lr(self) -> float | None:
        """Adam's rate once α, β move."""
        return self.a_opt.param_groups[0]["lr"] if self.searching else None

    def end_epoch(self) -> dict:
        """Decisiveness of the current α/β, with the choices changed since the epoch began,
        and, once α moves, the collapse guard (a warning when a layer collapses)."""
        prior = self.cfg.search.path_prior
        current = derive_genotype(self.net, prior=prior)
        record = decisiveness(current, self.before, prior)
        if not self.searching:
            return record
        guard = collapse(current)
        if guard["collapsed_layers"] and self.dist.is_main:
            warn(f"layer(s) {guard['collapsed_layers']} collapsed after epoch {self.epoch}: "
                 f"skip_connect holds {guard['skip_kept_moved']} kept edges per layer on edges "
                 f"that moved from uniform, none weighs up to {guard['none_weight_max']}; the "
                 f"best-supernet rule keeps an earlier epoch if it validated better")
        return {**record, **guard}

    def validates(self, epoch: int) -> bool:
        """From `search.eval_from_epoch` on."""
        return epoch >= self.cfg.search.eval_from_epoch

    def arch_record(self, epoch: int) -> dict | None:
        """softmax(α) and β."""
        net = self.net
        return {"epoch": epoch,
                "alpha": net.alpha_weights().detach().cpu().numpy().round(5).tolist(),
                "beta": net.beta_weights().detach().cpu().numpy().round(5).tolist()}

    def choose(self, meta: dict, records: list[dict], best: dict, best_pt: Path, epoch: int,
               scorer: Callable[[], Scorer], quiet: bool) -> Genotype:
        """Selected from the best validated supernet (else the last), with its verdict."""
        s = self.cfg.search
        validated = best["epoch"] > 0
        if validated:
            self.net.load_state_dict(load_checkpoint(best_pt)["model"])
        upto = best["epoch"] or epoch
        decision = verdict(records, upto)
        meta.update(best_epoch=best["epoch"],
                    best_val_psnr=best["psnr"] if validated else None,
                    best_val_ssim=best["ssim"] if validated else None,
                    path_prior=s.path_prior, arch_budget=self.budget, verdict=decision,
                    decisiveness={k: v for r in records if r["epoch"] == upto
                                  for k, v in r.items() if k in DECISIVENESS_KEYS})
        genotype = self.dist.on_main(lambda: self.within_budget(
            select(self.net, self.cfg, scorer(), meta, quiet), quiet))
        if not quiet:
            print(f"hinas: search {decision['message']}", file=sys.stderr, flush=True)
        return genotype


@STRATEGIES.register("random")
class RandomSearch(SearchStrategy):
    """Random search with weight sharing (RSWS): a uniformly sampled architecture per step; the
    best of `search.samples` sampled architectures, scored one-shot, is the genotype."""

    summary = "RSWS: random search with weight sharing, a baseline"
    partial_steps = True

    def __init__(self, cfg: Config, net: Supernet, dist: Context, budget: dict[str, float]):
        super().__init__(cfg, net, dist, budget)
        self.sample_rng = np.random.default_rng([cfg.seed, 7])

    def state(self) -> dict:
        """The sampler's generator."""
        return {"sample_rng": self.sample_rng.bit_generator.state}

    def load_state(self, state: dict) -> None:
        """The sampler's generator."""
        self.sample_rng.bit_generator.state = state["sample_rng"]

    def step(self, model: nn.Module, w_opt: torch.optim.Optimizer, loss_fn: nn.Module,
             w_batch: Batch, a_batches: Iterator[Batch], precision: Precision
             ) -> tuple[float, float | None]:
        """A W-step at a sampled architecture."""
        arch = sample_arch(self.cfg.space, self.cfg.task, self.sample_rng)
        return optimisation_step(model, w_opt, self.net.arch_parameters(), loss_fn, *w_batch,
                                 self.cfg.search.grad_clip, arch, precision), None

    def phase(self) -> str:
        """Always `random`."""
        return "random"

    def choose(self, meta: dict, records: list[dict], best: dict, best_pt: Path, epoch: int,
               scorer: Callable[[], Scorer], quiet: bool) -> Genotype:
        """The best of `search.samples` sampled architectures on the shared weights (with a
        cost budget: sampled among those within it)."""
        rng = np.random.default_rng([self.cfg.seed, 11])
        score = scorer() if self.dist.is_main else None
        scored = [(self.dist.on_main(lambda g=g: score(genotype_arch(g))), g)
                  for g in self.fitting(rng, self.cfg.search.samples, "random search")]
        best_psnr, genotype = max(scored, key=lambda t: t[0])
        genotype.meta = {**meta, "samples": len(scored), "best_val_psnr": best_psnr,
                         "bn_calibration": self.cfg.search.bn_calibration}
        return self.dist.on_main(lambda: self.within_budget(genotype, quiet))


@STRATEGIES.register("params")
class ParamsSearch(SearchStrategy):
    """Zero-cost search under a cost budget: of `search.samples` architectures drawn uniformly
    among those within it, the one with the most parameters (at `train.width_multiplier`) is
    the genotype; the supernet is never trained."""

    summary = ("zero-cost: the most parameters among search.samples random networks within a "
               "cost budget (needs --max-macs or --max-latency)")
    trains = False

    def __init__(self, cfg: Config, net: Supernet, dist: Context, budget: dict[str, float]):
        super().__init__(cfg, net, dist, budget)
        if self.cost is None:
            raise HinasError("search.strategy params needs a cost budget (--max-macs or "
                             "--max-latency): without one the most parameters is the largest "
                             "network of the space")

    def choose(self, meta: dict, records: list[dict], best: dict, best_pt: Path, epoch: int,
               scorer: Callable[[], Scorer], quiet: bool) -> Genotype:
        """The most parameters among `search.samples` fitting architectures."""
        rng = np.random.default_rng([self.cfg.seed, 17])
        multiplier = self.cfg.train.width_multiplier
        counted = [(count_params(DerivedNet(g, multiplier)), g)
                   for g in self.fitting(rng, self.cfg.search.samples, "params search")]
        params, genotype = max(counted, key=lambda t: t[0])
        genotype.meta = {**meta, "epochs": 0, "samples": len(counted), "draw_params": params,
                         "draw_params_median": int(np.median([c for c, _ in counted])),
                         "best_val_psnr": None}
        return self.dist.on_main(lambda: self.within_budget(genotype, quiet))
