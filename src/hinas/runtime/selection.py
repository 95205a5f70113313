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

Selections (`search.select`) build the genotype from a signal: `alpha` is the DARTS arg-max with
Viterbi on β; `perturb` keeps, per node, the two edges whose best operation's removal hurts
most; `oneshot` scores the `alpha` genotype and `search.samples` random cells on the chosen
width path and keeps the best. The width path (`search.width`) is `viterbi` (on β) or `oneshot`
(every valid path scored with one-hot β and the supernet's α).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from hinas.config import Config
from hinas.errors import HinasError
from hinas.runtime.scoring import EvalPair, score_model
from hinas.space.cells import cell_edges
from hinas.space.derive import beta_prior, derive_genotype, top2_cell
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
    supernet keeps its own BatchNorm statistics, as in Wang et al."""
    net = scorer.net
    alphas, betas = _soft_weights(net)

    def score(a: torch.Tensor, b: torch.Tensor) -> float:
        return scorer(SampledArch(a, b, None, None), calibrate=False)

    base = score(alphas, betas)
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


def select_genotype(net: Supernet, cfg: Config, scorer: Scorer, meta: dict,
                    rng: np.random.Generator, progress: Callable[[], None] | None = None
                    ) -> Genotype:
    """The genotype of a trained supernet under `cfg.search.select` and `cfg.search.width`,
    with what each decision measured in `meta['selection']`."""
    s = cfg.search
    genotype = derive_genotype(net, meta, s.path_prior)
    record: dict = {"select": s.select, "width": s.width, "viterbi_path": list(genotype.path)}
    path = genotype.path
    if s.width == "oneshot":
        ranked = path_oneshot_scores(scorer, progress)
        path = ranked[0][1]
        record["path_psnr"] = [{"path": p, "psnr": round(v, 4)} for v, p in ranked]
    cells = genotype.cells
    if s.select == "perturb":
        base, op_drop, move_drop = perturbation_importance(scorer, progress)
        cells = perturbation_cells(op_drop, genotype)
        record.update(supernet_psnr=round(base, 4),
                      op_importance=op_drop.round(5).tolist(),
                      move_importance=move_drop.round(5).tolist())
    elif s.select == "oneshot":
        candidates = [cells] + [sample_arch(cfg.space, cfg.task, rng).genotype.cells
                                for _ in range(s.samples)]
        scored = []
        for cand in candidates:
            trial = copy.deepcopy(genotype)
            trial.cells, trial.path = cand, list(path)
            scored.append((oneshot_score(scorer, trial), cand))
            if progress is not None:
                progress()
        best = max(range(len(scored)), key=lambda i: scored[i][0])
        cells = scored[best][1]
        record.update(candidates=len(scored), oneshot_psnr=round(scored[best][0], 4),
                      alpha_cells_psnr=round(scored[0][0], 4), picked_alpha_cells=best == 0)
    out = copy.deepcopy(genotype)
    out.cells, out.path = [[list(node) for node in cell] for cell in cells], list(path)
    out.meta["selection"] = record
    out.validate()
    return out


def selection_cost(cfg: Config) -> int:
    """How many supernet evaluations on V the selection of `cfg` makes (for a progress bar)."""
    s = cfg.search
    n = 0
    if s.width == "oneshot":
        n += len(all_paths(cfg.space.layers))
    if s.select == "perturb":
        rows = cfg.space.layers
        n += 1 + rows * len(cell_edges(cfg.space.nodes)) * len(usable_columns(cfg.space.ops))
    elif s.select == "oneshot":
        n += 1 + s.samples
    return n
