"""From continuous α/β to a discrete genotype (SPEC §1.4): top-2 edges per node, Viterbi widths."""

from __future__ import annotations

import math

import numpy as np
import torch

from hinas.cells import cell_edges
from hinas.genotype import Genotype
from hinas.ops import OPS
from hinas.supernet import Supernet, layer_levels, sources


def top2_cell(weights: np.ndarray, nodes: int, ops: list[str]) -> list[list[tuple[int, str]]]:
    """Per node, the 2 incoming edges whose strongest non-`none` op weight is largest, with that op.

    `weights` is softmax(α) of one layer, shape [edges, len(ops)] (DARTS discretisation).
    """
    usable = [c for c, op in enumerate(ops) if OPS[op].build is not None]
    edges = cell_edges(nodes)
    cell = []
    for j in range(nodes):
        rows = [(row, inp) for row, (node, inp) in enumerate(edges) if node == j]
        scored = []
        for row, inp in rows:
            col = max(usable, key=lambda c: weights[row, c])
            scored.append((weights[row, col], inp, ops[col]))
        best = sorted(scored, key=lambda t: -t[0])[:2]
        cell.append(sorted(((inp, op) for _, inp, op in best), key=lambda e: e[0]))
    return cell


def viterbi(beta: np.ndarray) -> list[int]:
    """Most probable width path (one level per layer) from per-source move probabilities.

    `beta[l, k, m]` is the probability of moving from level k of layer l-1 by m-1 levels into layer
    l; the path starts at level 0 before layer 0 (the stem) and may end at any level.
    """
    layers = beta.shape[0]
    score = {0: 0.0}
    back: list[dict[int, int]] = []
    for layer in range(layers):
        new_score, pointers = {}, {}
        for level in layer_levels(layer):
            best = None
            for k, move in sources(layer, level):
                if k not in score or beta[layer, k, move] <= 0:
                    continue
                value = score[k] + math.log(beta[layer, k, move])
                if best is None or value > best[0]:
                    best = (value, k)
            if best is not None:
                new_score[level], pointers[level] = best
        score = new_score
        back.append(pointers)
    level = max(score, key=score.get)
    path = [level]
    for pointers in reversed(back[1:]):
        level = pointers[level]
        path.append(level)
    return path[::-1]


@torch.no_grad()
def derive_genotype(supernet: Supernet, meta: dict | None = None) -> Genotype:
    """The genotype of a supernet: top-2 cell per layer (LWAS) and the Viterbi width path."""
    space = supernet.space
    alphas = supernet.alpha_weights().cpu().numpy()
    betas = supernet.beta_weights().cpu().numpy()
    cells = [top2_cell(alphas[layer if space.lwas else 0], space.nodes, space.ops)
             for layer in range(space.layers)]
    return Genotype(
        task=supernet.task, space=space, path=viterbi(betas), cells=cells,
        alpha=alphas.round(6).tolist(), beta=betas.round(6).tolist(), meta=dict(meta or {}),
    )
