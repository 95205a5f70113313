"""The supernet (paper §3.2, Fig. 2): start part, L layers × 3 width levels of supercells, end part.

Levels and transitions: layer 0 has levels 0 and 1, later layers 0, 1, 2. Cell `(l, i)`
receives the outputs of levels `i-1, i, i+1` of layer `l-1` (the stem counts as layer -1 with
level 0 only), each projected by its own 1×1 conv + BN to the cell's node width. β is stored
per source `(l, k)` over its three moves down / same / up (`beta[l, k, m]`, target level
`k + m - 1`), soft-maxed over the moves that exist (Auto-DeepLab convention).

Second input of a cell (`f_{l-2}^i`): the output of level `i` of layer `l-2` when that cell exists;
otherwise a stem output — `h_{-2}` (first stem conv) for layer 0, `h_{-1}` (second stem conv) for
layer 1 and for level 2 of layer 2 (layer 0 has no level 2). It is projected to the cell's width.

With resolution levels (`space.levels: resolution`, docs/decisions.md §1.2b) level k runs at 1/2^k
of the start part's grid: every projection into a cell resamples from its source's level
(:func:`hinas.space.blocks.resample`), and the last layer's levels return to level 0, summed with
the start part's last feature, before the end part (:class:`~hinas.space.blocks.FullResolution`);
with width levels the end part takes their concatenation, as in the paper.

Two ways to merge the incoming paths, selected by `cell_sharing`:
- Eq. 5 (sharing): `h_l^i = C_l^i(Σ_k β_k^i f_{l-1}^k, f_{l-2}^i)` — one cell evaluation;
- Eq. 6 (Auto-DeepLab): `h_l^i = Σ_k β_k^i C_l^i(f_{l-1}^k, f_{l-2}^i)` — one per incoming path.

The choices the paper leaves open (β normalisation, `f_{l-2}^i`) are argued in docs/decisions.md
§1.2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hinas.config import SpaceConfig, TaskConfig
from hinas.space.blocks import FullResolution, Stem, Tail, padded_call, resample
from hinas.space.cells import cell_edges, num_edges, supercell
from hinas.space.genotype import Genotype, layer_levels
from hinas.space.ops import check_space_ops, usable_columns

MOVES = 3


def sources(layer: int, level: int) -> list[tuple[int, int]]:
    """(source level in layer-1, move index) pairs feeding cell (layer, level)."""
    out = []
    for k in layer_levels(layer - 1):
        move = level - k + 1
        if 0 <= move < MOVES:
            out.append((k, move))
    return out


def beta_mask(layers: int) -> torch.Tensor:
    """Boolean [layers, 3, 3]: True where source (l-1, k) has move m to an existing level."""
    mask = torch.zeros(layers, 3, MOVES, dtype=torch.bool)
    for layer in range(layers):
        for level in layer_levels(layer):
            for k, move in sources(layer, level):
                mask[layer, k, move] = True
    return mask


def second_input(layer: int, level: int) -> tuple[int, int]:
    """(layer, level) of `f_{l-2}^i` per the module docstring's rule (stem layers are -2, -1)."""
    if layer < 2:
        return (layer - 2, 0)
    if level in layer_levels(layer - 2):
        return (layer - 2, level)
    return (-1, 0)


@dataclass(frozen=True)
class SampledArch:
    """α/β weights that replace softmax(α)/softmax(β) in a supernet forward pass.

    For one architecture of the space (random search, one-shot scoring) `alpha` [layers, edges,
    ops] and `beta` [layers, 3, 3] are one-hot, `active[layer]` lists the (edge, op) entries set to
    1 (only those ops run) and `genotype` is the same architecture as a genotype. Soft weights
    (perturbed or path-fixed supernets) have `active` None: every op runs.
    """

    alpha: torch.Tensor
    beta: torch.Tensor
    active: tuple[frozenset[tuple[int, int]], ...] | None
    genotype: Genotype | None


def path_beta(path: list[int], layers: int) -> torch.Tensor:
    """One-hot β [layers, 3, 3] of a width path (each layer's move from the level before it)."""
    beta = torch.zeros(layers, 3, MOVES)
    for layer, (before, level) in enumerate(zip([0, *path[:-1]], path, strict=True)):
        beta[layer, before, level - before + 1] = 1.0
    return beta


def genotype_arch(genotype: Genotype) -> SampledArch:
    """The one-hot α/β of a genotype in its space's supernet (one row of α per layer)."""
    space = genotype.space
    edges = cell_edges(space.nodes)
    alpha = torch.zeros(space.layers, len(edges), len(space.ops))
    active = []
    for layer, cell in enumerate(genotype.cells):
        on = set()
        for j, node in enumerate(cell):
            for inp, op in node:
                row, col = edges.index((j, inp)), space.ops.index(op)
                alpha[layer, row, col] = 1.0
                on.add((row, col))
        active.append(frozenset(on))
    return SampledArch(alpha, path_beta(genotype.path, space.layers), tuple(active), genotype)


def count_paths(layers: int) -> list[dict[int, int]]:
    """`counts[l][prev]`: how many valid level sequences for layers l .. layers-1 follow level
    `prev` at layer l-1 (`counts[layers]` is 1 for every level); used to draw paths uniformly."""
    counts: list[dict[int, int]] = [dict() for _ in range(layers + 1)]
    counts[layers] = {level: 1 for level in (0, 1, 2)}
    for layer in range(layers - 1, -1, -1):
        for prev in layer_levels(layer - 1):
            counts[layer][prev] = sum(counts[layer + 1][nxt] for nxt in layer_levels(layer)
                                      if abs(nxt - prev) <= 1)
    return counts


def sample_path(layers: int, rng: np.random.Generator) -> list[int]:
    """A width path drawn uniformly from all valid paths (start at level 0 before layer 0, one
    level step at most per layer), not a random walk, which would favour some paths."""
    counts = count_paths(layers)
    path, prev = [], 0
    for layer in range(layers):
        nexts = [nxt for nxt in layer_levels(layer) if abs(nxt - prev) <= 1]
        weights = np.array([counts[layer + 1][nxt] for nxt in nexts], dtype=float)
        prev = int(nexts[rng.choice(len(nexts), p=weights / weights.sum())])
        path.append(prev)
    return path


def all_paths(layers: int) -> list[list[int]]:
    """Every valid width path of `layers` layers (12 for 3 layers), in lexicographic order."""
    paths: list[list[int]] = [[]]
    for layer in range(layers):
        paths = [p + [level] for p in paths for level in layer_levels(layer)
                 if abs(level - (p[-1] if p else 0)) <= 1]
    return paths


def sample_arch(space: SpaceConfig, task: TaskConfig, rng: np.random.Generator) -> SampledArch:
    """Draw an architecture uniformly: per node two distinct inputs, each with a random non-`none`
    op; a width path uniformly among the valid paths (`sample_path`)."""
    usable = usable_columns(space.ops)
    cells = []
    for _ in range(space.layers):
        cell = []
        for j in range(space.nodes):
            inputs = sorted(rng.choice(j + 2, size=2, replace=False).tolist())
            cell.append([(inp, space.ops[int(rng.choice(usable))]) for inp in inputs])
        cells.append(cell)
    genotype = Genotype(task=task, space=space, path=sample_path(space.layers, rng), cells=cells,
                        meta={"strategy": "random"})
    return genotype_arch(genotype)


class Supernet(nn.Module):
    """Continuous relaxation of the hierarchical space; α and β exposed by `arch_parameters()`."""

    def __init__(self, space: SpaceConfig, task: TaskConfig):
        super().__init__()
        check_space_ops(space.ops)
        self.space, self.task = space, task
        n, widths = space.nodes, [space.level_width(i) for i in range(3)]
        self.widths = widths
        self.stem = Stem(task.input_channels, n * widths[0], space.start_scale)
        last_levels = layer_levels(space.layers - 1)
        self.size_multiple = space.size_multiple(
            [level for layer in range(space.layers) for level in layer_levels(layer)])

        def out_ch(layer: int, level: int) -> int:
            return n * widths[0] if layer < 0 else n * widths[level]

        def project(source: tuple[int, int], level: int) -> nn.Module:
            steps = space.resolution(level) - space.resolution(source[1])
            return resample(out_ch(*source), widths[level], steps, False)

        self.cells = nn.ModuleDict()
        self.proj = nn.ModuleDict()
        for layer in range(space.layers):
            for level in layer_levels(layer):
                w = widths[level]
                cell = supercell(n, w, tuple(space.ops))
                cell.checkpoint = space.checkpoint
                self.cells[f"{layer}_{level}"] = cell
                for k, _ in sources(layer, level):
                    self.proj[f"{layer}_{k}_{level}"] = project((layer - 1, k), level)
                self.proj[f"{layer}_s0_{level}"] = project(second_input(layer, level), level)
        if space.levels == "resolution":
            self.full = FullResolution(
                [(out_ch(space.layers - 1, i), space.resolution(i)) for i in last_levels],
                n * widths[0], False)
            last = n * widths[0]
        else:
            last = sum(out_ch(space.layers - 1, i) for i in last_levels)
        self.tail = Tail(last, n * widths[0], task, space.residual, space.start_scale)

        rows = space.layers if space.lwas else 1
        shape_a, shape_b = (rows, num_edges(n), len(space.ops)), (space.layers, 3, MOVES)
        if space.arch_init == "ones":
            self.alpha = nn.Parameter(torch.ones(shape_a))
            self.beta = nn.Parameter(torch.ones(shape_b))
        else:
            self.alpha = nn.Parameter(1e-3 * torch.randn(shape_a))
            self.beta = nn.Parameter(1e-3 * torch.randn(shape_b))
        self.register_buffer("beta_mask", beta_mask(space.layers), persistent=False)

    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters α and β (their own optimizer group)."""
        return [self.alpha, self.beta]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter except α and β."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def alpha_weights(self) -> torch.Tensor:
        """softmax(α) over operations, shape [layers or 1, edges, ops]."""
        return F.softmax(self.alpha, dim=-1)

    def beta_weights(self) -> torch.Tensor:
        """softmax(β) over each source's existing moves, 0 where a move does not exist."""
        logits = self.beta.masked_fill(~self.beta_mask, float("-inf"))
        probs = F.softmax(logits, dim=-1)
        return torch.nan_to_num(probs, nan=0.0)

    def features(self, x: torch.Tensor, arch: SampledArch | None = None
                 ) -> dict[tuple[int, int], torch.Tensor]:
        """Outputs of every cell (and of the stem at layers -2, -1), keyed by (layer, level).

        With `arch` (random search), its one-hot α/β replace softmax(α)/softmax(β) and only its
        operations are evaluated.
        """
        if arch is None:
            alphas, betas, active = self.alpha_weights(), self.beta_weights(), None
        else:
            alphas, betas, active = arch.alpha.to(x), arch.beta.to(x), arch.active
        h: dict[tuple[int, int], torch.Tensor] = {}
        h[(-2, 0)], h[(-1, 0)] = self.stem(x)
        for layer in range(self.space.layers):
            row = layer if self.space.lwas or arch is not None else 0
            weights, layer_active = alphas[row], None if active is None else active[row]
            for level in layer_levels(layer):
                cell = self.cells[f"{layer}_{level}"]
                s0 = self.proj[f"{layer}_s0_{level}"](h[second_input(layer, level)])
                inputs = [(betas[layer, k, m],
                           self.proj[f"{layer}_{k}_{level}"](h[(layer - 1, k)]))
                          for k, m in sources(layer, level)]
                if self.space.cell_sharing:
                    s1 = sum(b * f for b, f in inputs)
                    h[(layer, level)] = cell(s0, s1, weights, layer_active)
                else:
                    h[(layer, level)] = sum(b * cell(s0, f, weights, layer_active)
                                            for b, f in inputs)
        return h

    def forward(self, x: torch.Tensor, arch: SampledArch | None = None) -> torch.Tensor:
        """Restored image from degraded input `x` (N, C, H, W) in [0, 1] (see `features`)."""
        return padded_call(lambda xp: self._restore(xp, arch), x, self.size_multiple,
                           self.task.out_scale)

    def _restore(self, x: torch.Tensor, arch: SampledArch | None) -> torch.Tensor:
        h = self.features(x, arch)
        last = [h[(self.space.layers - 1, i)] for i in layer_levels(self.space.layers - 1)]
        if self.space.levels == "resolution":
            return self.tail(self.full(last, h[(-1, 0)]), x)
        return self.tail(torch.cat(last, dim=1), x)
