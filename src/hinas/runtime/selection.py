"""Choosing a genotype from a trained supernet, and the signals that rank architectures
(docs/selection.md).

Signals, each a score of any genotype of the supernet's space (higher = better):

- `alpha`: the log-probability of the genotype under the searched α/β — Σ log softmax(α) over
  its kept (edge, op) terms plus Σ log(β / β₀) over its width moves (the paper's selection
  reads the arg-max of the same quantities);
- `oneshot`: the validation PSNR of the genotype run on the supernet's shared weights with one-hot
  α/β, after re-estimating the BatchNorm statistics for that genotype;
- `perturb`: perturbation-based importance (Wang et al., ICLR 2021): the drop in validation PSNR
  of the trained supernet when one operation is removed from one edge (or one width move from β),
  summed over the genotype's terms and moves.

Each signal is a registered :class:`Signal` (`SIGNALS`), which also says how `search.select`
builds the genotype from it: `alpha` is the DARTS arg-max with Viterbi on β; `perturb` keeps,
per node, the two edges whose best operation's removal hurts most; `oneshot` scores the `alpha`
genotype and `search.samples` random cells on the chosen width path and keeps the best. The
width path (`search.width`, `WIDTHS`) is `viterbi` (on β) or `oneshot` (every valid path scored
with one-hot β and the supernet's α).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from hinas.config import Config
from hinas.errors import HinasError
from hinas.registry import Registry
from hinas.runtime.scoring import EvalPair, score_model
from hinas.space.cells import cell_edges
from hinas.space.derive import beta_prior, derive_genotype, top2_cell, viterbi
from hinas.space.genotype import Genotype
from hinas.space.ops import usable_columns
from hinas.space.supernet import (
    SampledArch,
    Supernet,
    all_paths,
    genotype_arch,
    path_beta,
    sample_arch,
    sources,
)


class ArchBound(nn.Module):
    """A supernet evaluated at fixed α/β weights (for scoring with shared weights)."""

    def __init__(self, net: Supernet, arch: SampledArch):
        super().__init__()
        self.net, self.arch = net, arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The supernet's output at this architecture."""
        return self.net(x, self.arch)


class Scorer:
    """Validation PSNR of a supernet at given α/β weights, on fixed validation pairs; with
    calibration inputs, BatchNorm statistics are re-estimated for each architecture first and
    the supernet's own statistics restored afterwards."""

    def __init__(self, net: Supernet, pairs: list[EvalPair], cfg: Config,
                 device: str | torch.device, calibration: Sequence[torch.Tensor] = ()):
        if not pairs:
            raise HinasError("architecture selection needs validation images (Validation V is "
                             "empty: use more training images or a larger val_fraction)")
        self.net, self.pairs, self.cfg, self.device = net, pairs, cfg, device
        self.calibration = list(calibration)
        self.evaluations = 0

    def __call__(self, arch: SampledArch | None, calibrate: bool = True) -> float:
        """Mean validation PSNR (dB) at `arch` (None: the supernet's own α/β); `calibrate`
        False keeps the supernet's own BatchNorm statistics."""
        model = self.net if arch is None else ArchBound(self.net, arch)
        saved = self._bn_state() if self.calibration and calibrate else None
        try:
            if saved is not None:
                self._recalibrate(model)
            self.evaluations += 1
            return score_model(model, self.pairs, self.cfg.task, self.device)[1]["psnr"]
        finally:
            if saved is not None:
                self.net.load_state_dict(saved, strict=False)

    def _bn_state(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in self.net.state_dict().items()
                if "running_" in k or "num_batches_tracked" in k}

    @torch.no_grad()
    def _recalibrate(self, model: nn.Module) -> None:
        norms = [m for m in self.net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the calibration batches
        was_training = self.net.training
        model.train()
        try:
            for x in self.calibration:
                model(x.to(self.device))
        finally:
            self.net.train(was_training)
            for m, momentum in zip(norms, momenta, strict=True):
                m.momentum = momentum


def _soft_weights(net: Supernet) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(α) with one row per layer, and β's move probabilities (detached copies, on the
    supernet's device)."""
    alphas = net.alpha_weights().detach().clone()
    if alphas.shape[0] != net.space.layers:
        alphas = alphas.expand(net.space.layers, -1, -1).clone()
    return alphas, net.beta_weights().detach().clone()


def alpha_logprob(genotype: Genotype, alpha: np.ndarray, beta: np.ndarray) -> float:
    """Signal `alpha`: Σ log softmax(α) of the genotype's (edge, op) terms + Σ log(β/β₀) of its
    width moves (`alpha` [layers or 1, edges, ops], `beta` [layers, 3, 3] as probabilities)."""
    arch = genotype_arch(genotype)
    rows = np.arange(genotype.space.layers) if alpha.shape[0] > 1 else np.zeros(
        genotype.space.layers, dtype=int)
    total = 0.0
    for layer, on in enumerate(arch.active):
        total += sum(float(np.log(alpha[rows[layer], row, col])) for row, col in on)
    moves = arch.beta.cpu().numpy() > 0
    total += float(np.sum(np.log(beta[moves]) - np.log(beta_prior(beta)[moves])))
    return total


def oneshot_score(scorer: Scorer, genotype: Genotype, source: str = "genotype") -> float:
    """Signal `oneshot`: validation PSNR of `genotype` (read from `source`) on the supernet's
    shared weights; HinasError naming `source` for a genotype of another level mode."""
    genotype.check_space(scorer.net.space, source)
    return scorer(genotype_arch(genotype))


def path_oneshot_scores(scorer: Scorer, progress: Callable[[], None] | None = None
                        ) -> list[tuple[float, list[int]]]:
    """Validation PSNR of every valid width path with one-hot β and the supernet's softmax(α),
    best first."""
    alphas, _ = _soft_weights(scorer.net)
    layers = scorer.net.space.layers
    scored = []
    for path in all_paths(layers):
        scored.append((scorer(SampledArch(alphas, path_beta(path, layers), None, None)), path))
        if progress is not None:
            progress()
    return sorted(scored, key=lambda t: -t[0])


def perturbation_importance(scorer: Scorer, progress: Callable[[], None] | None = None
                            ) -> tuple[float, np.ndarray, np.ndarray]:
    """Perturbation-based importance: the supernet's validation PSNR, and the drop in it (dB)
    when one (layer, edge, op) weight of softmax(α) is set to 0 ([layers, edges, ops], 0 for
    `none`) or one width move of β is set to 0 ([layers, 3, 3], 0 where no move exists). The
    supernet keeps its own BatchNorm statistics, as in Wang et al. `progress` is called after
    the supernet's own score and each (layer, edge, op) one (the width moves' are uncounted)."""
    net = scorer.net
    alphas, betas = _soft_weights(net)

    def score(a: torch.Tensor, b: torch.Tensor) -> float:
        return scorer(SampledArch(a, b, None, None), calibrate=False)

    base = score(alphas, betas)
    if progress is not None:
        progress()
    op_drop = np.zeros(tuple(alphas.shape))
    move_drop = np.zeros(tuple(betas.shape))
    usable = usable_columns(net.space.ops)
    for layer in range(alphas.shape[0]):
        for row in range(alphas.shape[1]):
            for col in usable:
                a = alphas.clone()
                a[layer, row, col] = 0.0
                op_drop[layer, row, col] = base - score(a, betas)
                if progress is not None:
                    progress()
    for layer, k, move in zip(*np.nonzero(betas.cpu().numpy() > 0), strict=True):
        if len(sources_of_target(layer, k, move)) < 2:
            continue  # the only input of its cell: removing it tests nothing about the path
        b = betas.clone()
        b[layer, k, move] = 0.0
        move_drop[layer, k, move] = base - score(alphas, b)
    return base, op_drop, move_drop


def sources_of_target(layer: int, k: int, move: int) -> list[tuple[int, int]]:
    """The (source level, move) pairs feeding the cell that move `move` from level `k` of layer
    `layer - 1` reaches."""
    return sources(layer, k + move - 1)


def perturb_score(genotype: Genotype, op_drop: np.ndarray, move_drop: np.ndarray) -> float:
    """Signal `perturb`: the summed importance of the genotype's (edge, op) terms and moves."""
    arch = genotype_arch(genotype)
    total = sum(float(op_drop[layer, row, col]) for layer, on in enumerate(arch.active)
                for row, col in on)
    return total + float(np.sum(move_drop[arch.beta.cpu().numpy() > 0]))


def perturbation_cells(op_drop: np.ndarray, genotype: Genotype) -> list:
    """Per layer, the cell that keeps for each node the two edges whose best operation's
    removal hurts most, each with that operation (Wang et al.'s selection)."""
    space = genotype.space
    return [top2_cell(op_drop[layer], space.nodes, space.ops) for layer in range(space.layers)]


Progress = Callable[[], None] | None
"""Called once per supernet evaluation (a progress bar), or None."""


@dataclass(frozen=True)
class Choice:
    """What a selection decides from: the config, the scorer on V, the genotype derived from
    α/β (:func:`hinas.space.derive.derive_genotype`), the width path already chosen, a seeded
    generator and the progress callback."""

    cfg: Config
    scorer: Scorer
    genotype: Genotype
    path: list[int]
    rng: np.random.Generator
    progress: Progress = None


@dataclass(frozen=True)
class Signal:
    """A selection signal (`search.select`): a score of any genotype of a trained supernet's
    space (higher = better) and the cells a search selects by it.

    `measure(scorer, progress)` is what the signal needs from the supernet, measured once;
    `score(genotype, measured, scorer)` scores one genotype; `cells(choice, measured)` gives the
    selected cells and what they were chosen on (for `meta['selection']`); `cost(cfg)` counts
    the supernet evaluations on V of `measure` and `cells`. `searched`: it reads the searched
    α/β (meaningless on a random-search supernet, whose α/β never train). `describe(measured)`:
    a few numbers on what was measured, for reports."""

    name: str
    summary: str
    measure: Callable[[Scorer, Progress], Any]
    score: Callable[[Genotype, Any, Scorer], float]
    cells: Callable[[Choice, Any], tuple[list, dict]]
    cost: Callable[[Config], int]
    searched: bool = True
    describe: Callable[[Any], dict] = lambda measured: {}


@dataclass(frozen=True)
class WidthSelection:
    """A way of choosing the width path (`search.width`): `choose(scorer, progress)` gives the
    path of the scorer's supernet and what it was chosen on; `cost(cfg)` its supernet
    evaluations on V."""

    name: str
    summary: str
    choose: Callable[[Scorer, Progress], tuple[list[int], dict]]
    cost: Callable[[Config], int]


SIGNALS: Registry[Signal] = Registry("selection signal")
WIDTHS: Registry[WidthSelection] = Registry("width selection")


def _alpha_weights(scorer: Scorer, progress: Progress) -> tuple[np.ndarray, np.ndarray]:
    return (scorer.net.alpha_weights().detach().numpy(),
            scorer.net.beta_weights().detach().numpy())


SIGNALS.add("alpha", Signal(
    "alpha", "the arg-max of α with Viterbi on β, the paper's", _alpha_weights,
    lambda genotype, weights, scorer: alpha_logprob(genotype, *weights),
    lambda choice, weights: (choice.genotype.cells, {}), lambda cfg: 0))


def _oneshot_cells(choice: Choice, measured: None) -> tuple[list, dict]:
    """The best by one-shot PSNR on the chosen path of the α cells and `search.samples` random
    ones."""
    cfg, genotype = choice.cfg, choice.genotype
    candidates = [genotype.cells] + [sample_arch(cfg.space, cfg.task, choice.rng).genotype.cells
                                     for _ in range(cfg.search.samples)]
    scored = []
    for cand in candidates:
        trial = copy.deepcopy(genotype)
        trial.cells, trial.path = cand, list(choice.path)
        scored.append((oneshot_score(choice.scorer, trial), cand))
        if choice.progress is not None:
            choice.progress()
    best = max(range(len(scored)), key=lambda i: scored[i][0])
    return scored[best][1], {"candidates": len(scored), "oneshot_psnr": round(scored[best][0], 4),
                             "alpha_cells_psnr": round(scored[0][0], 4),
                             "picked_alpha_cells": best == 0}


SIGNALS.add("oneshot", Signal(
    "oneshot", "the best of the α cells and search.samples random ones by one-shot PSNR",
    lambda scorer, progress: None, lambda genotype, measured, scorer: oneshot_score(scorer,
                                                                                    genotype),
    _oneshot_cells, lambda cfg: 1 + cfg.search.samples, searched=False))


def _perturb_cells(choice: Choice, measured: tuple) -> tuple[list, dict]:
    base, op_drop, move_drop = measured
    return perturbation_cells(op_drop, choice.genotype), {
        "supernet_psnr": round(base, 4), "op_importance": op_drop.round(5).tolist(),
        "move_importance": move_drop.round(5).tolist()}


def _describe_importance(measured: tuple) -> dict:
    """The supernet's PSNR, the largest operation importance and the share of negative ones
    (removing the op helps)."""
    base, op_drop, _ = measured
    return {"supernet_psnr": round(base, 4), "op_importance_top": float(np.max(op_drop)),
            "op_importance_negative_share": round(float(np.mean(op_drop[op_drop != 0] < 0)), 4)}


SIGNALS.add("perturb", Signal(
    "perturb", "per node the two edges whose best operation's removal hurts most",
    perturbation_importance,
    lambda genotype, measured, scorer: perturb_score(genotype, *measured[1:]), _perturb_cells,
    lambda cfg: 1 + cfg.space.layers * len(cell_edges(cfg.space.nodes))
    * len(usable_columns(cfg.space.ops)), describe=_describe_importance))


def _viterbi_path(scorer: Scorer, progress: Progress) -> tuple[list[int], dict]:
    beta = scorer.net.beta_weights().detach().cpu().numpy()
    return viterbi(beta, scorer.cfg.search.path_prior), {}


def _oneshot_path(scorer: Scorer, progress: Progress) -> tuple[list[int], dict]:
    ranked = path_oneshot_scores(scorer, progress)
    return ranked[0][1], {"path_psnr": [{"path": p, "psnr": round(v, 4)} for v, p in ranked]}


WIDTHS.add("viterbi", WidthSelection("viterbi", "Viterbi on β", _viterbi_path, lambda cfg: 0))
WIDTHS.add("oneshot", WidthSelection(
    "oneshot", "every valid path scored with one-hot β", _oneshot_path,
    lambda cfg: len(all_paths(cfg.space.layers))))


def select_genotype(net: Supernet, cfg: Config, scorer: Scorer, meta: dict,
                    rng: np.random.Generator, progress: Progress = None) -> Genotype:
    """The genotype of a trained supernet under `cfg.search.select` (a signal of `SIGNALS`) and
    `cfg.search.width` (of `WIDTHS`), with what each decision measured in `meta['selection']`."""
    s = cfg.search
    genotype = derive_genotype(net, meta, s.path_prior)
    record: dict = {"select": s.select, "width": s.width, "viterbi_path": list(genotype.path)}
    path, found = WIDTHS.get(s.width).choose(scorer, progress)
    record.update(found)
    signal = SIGNALS.get(s.select)
    cells, found = signal.cells(Choice(cfg, scorer, genotype, list(path), rng, progress),
                                signal.measure(scorer, progress))
    record.update(found)
    out = copy.deepcopy(genotype)
    out.cells, out.path = [[list(node) for node in cell] for cell in cells], list(path)
    out.meta["selection"] = record
    out.validate()
    return out


def selection_cost(cfg: Config) -> int:
    """How many supernet evaluations on V the selection of `cfg` makes (for a progress bar)."""
    return WIDTHS.get(cfg.search.width).cost(cfg) + SIGNALS.get(cfg.search.select).cost(cfg)
