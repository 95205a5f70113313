"""Derivation: top-2 edges per node (never `none`), Viterbi width path, genotype of a supernet."""

import numpy as np
import pytest

from hinas.cells import cell_edges
from hinas.config import SpaceConfig, TaskConfig
from hinas.derive import derive_genotype, top2_cell, viterbi
from hinas.ops import PRIMITIVES
from hinas.supernet import Supernet, beta_mask

OPS = list(PRIMITIVES)


def test_top2_picks_strongest_edges_and_never_none():
    nodes = 3
    edges = cell_edges(nodes)
    w = np.full((len(edges), len(OPS)), 0.01)
    row = {e: i for i, e in enumerate(edges)}
    w[:, OPS.index("none")] = 0.9  # none dominates everywhere but must never be chosen
    w[row[(0, 0)], OPS.index("sep_conv_3x3")] = 0.3
    w[row[(0, 1)], OPS.index("skip_connect")] = 0.2
    w[row[(1, 2)], OPS.index("dil_conv_5x5")] = 0.5
    w[row[(1, 0)], OPS.index("conv_3x3")] = 0.4
    w[row[(1, 1)], OPS.index("conv_3x3")] = 0.1
    w[row[(2, 3)], OPS.index("sep_conv_5x5")] = 0.6
    w[row[(2, 1)], OPS.index("dil_conv_3x3")] = 0.05
    w[row[(2, 2)], OPS.index("skip_connect")] = 0.04
    cell = top2_cell(w, nodes, OPS)
    assert cell == [
        [(0, "sep_conv_3x3"), (1, "skip_connect")],
        [(0, "conv_3x3"), (2, "dil_conv_5x5")],
        [(1, "dil_conv_3x3"), (3, "sep_conv_5x5")],
    ]
    assert all(op != "none" for node in cell for _, op in node)


def greedy_path(beta: np.ndarray) -> list[int]:
    """Per-layer argmax (what the paper argues against), for comparison."""
    level, path = 0, []
    for layer in range(beta.shape[0]):
        move = int(np.argmax(beta[layer, level]))
        level += move - 1
        path.append(level)
    return path


def test_viterbi_finds_the_optimum_where_greedy_does_not():
    beta = np.zeros((3, 3, 3))
    beta[0, 0] = [0, 0.45, 0.55]  # greedy goes up first ...
    beta[1, 0] = [0, 0.95, 0.05]
    beta[1, 1] = [0.34, 0.33, 0.33]  # ... and then has only weak moves
    beta[2, 0] = [0, 0.9, 0.1]
    beta[2, 1] = [0.34, 0.33, 0.33]
    beta[2, 2] = [0.5, 0.5, 0]
    beta[2, 0] = [0, 0.95, 0.05]
    assert greedy_path(beta) == [1, 0, 0]
    best = viterbi(beta)
    assert best == [0, 0, 0]

    def prob(path):
        level, p = 0, 1.0
        for layer, nxt in enumerate(path):
            p *= beta[layer, level, nxt - level + 1]
            level = nxt
        return p

    assert prob(best) > prob(greedy_path(beta))
    # exhaustive check over every valid path
    paths = [[a, b, c] for a in (0, 1) for b in (0, 1, 2) for c in (0, 1, 2)
             if abs(b - a) <= 1 and abs(c - b) <= 1]
    assert prob(best) == pytest.approx(max(prob(p) for p in paths))


def test_viterbi_respects_masked_moves():
    beta = np.where(beta_mask(4).numpy(), 1.0 / 3, 0.0)
    beta[:, :, 2] *= 2  # prefer going up wherever that exists
    path = viterbi(beta)
    steps = zip([0, *path], path, strict=False)
    assert path[0] in (0, 1) and all(abs(b - a) <= 1 for a, b in steps)
    assert max(path) <= 2


def test_derive_genotype_from_supernet():
    space = SpaceConfig(width=2, nodes=3, layers=3, arch_init="randn")
    net = Supernet(space, TaskConfig())
    genotype = derive_genotype(net, {"note": "test"})
    assert len(genotype.cells) == 3 and all(len(c) == 3 for c in genotype.cells)
    assert len(genotype.path) == 3 and genotype.meta["note"] == "test"
    assert np.asarray(genotype.alpha).shape == (3, 9, 7)
