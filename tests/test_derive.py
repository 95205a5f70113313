"""Derivation: top-2 edges per node (never `none`), Viterbi width path (prior-corrected and the
paper's), genotype of a supernet, decisiveness measures and the search verdict."""

import numpy as np
import pytest
import torch

from hinas.config import PRIMITIVES, SpaceConfig, TaskConfig
from hinas.space.cells import cell_edges
from hinas.space.derive import (
    decisiveness,
    derive_genotype,
    normalised_entropy,
    path_scores,
    top2_cell,
    verdict,
    viterbi,
)
from hinas.space.supernet import Supernet, beta_mask

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


def all_paths(layers: int) -> list[list[int]]:
    """Every valid width path, enumerated by brute force."""
    paths = [[]]
    for layer in range(layers):
        levels = (0, 1) if layer == 0 else (0, 1, 2)
        paths = [p + [lv] for p in paths for lv in levels if abs(lv - (p[-1] if p else 0)) <= 1]
    return paths


def uniform_beta(layers: int) -> np.ndarray:
    mask = beta_mask(layers).numpy()
    return np.where(mask, 1.0 / np.maximum(mask.sum(-1, keepdims=True), 1), 0.0)


def test_prior_corrected_decode_favours_no_path_when_beta_is_uniform():
    beta = uniform_beta(3)
    corrected = path_scores(beta, "correct", best=100)
    assert len(corrected) == len(all_paths(3)) == 12
    assert all(score == pytest.approx(0.0) for score, _ in corrected)
    kept = path_scores(beta, "keep", best=100)  # the paper's decode prefers the narrow edge
    assert kept[0][1] == [0, 0, 0] and kept[0][0] - kept[-1][0] > 0.4


def test_decisive_beta_gives_the_same_path_under_both_decodes():
    beta = uniform_beta(3)
    beta[0, 0] = [0, 0.05, 0.95]  # stem → level 1
    beta[1, 1] = [0.02, 0.03, 0.95]  # → level 2
    beta[2, 2] = [0.9, 0.1, 0]  # → level 1
    assert viterbi(beta, "correct") == viterbi(beta, "keep") == [1, 2, 1]
    (best, path), (second, _) = path_scores(beta, "correct")
    assert path == [1, 2, 1] and best - second > 1.0


def test_path_scores_rank_every_path_like_brute_force():
    rng = np.random.default_rng(0)
    mask = beta_mask(4).numpy()
    beta = np.where(mask, rng.random(mask.shape), 0.0)
    beta /= np.maximum(beta.sum(-1, keepdims=True), 1e-12)
    prior = uniform_beta(4)

    def score(path):
        level, total = 0, 0.0
        for layer, nxt in enumerate(path):
            move = nxt - level + 1
            total += np.log(beta[layer, level, move] / prior[layer, level, move])
            level = nxt
        return total

    brute = sorted((score(p) for p in all_paths(4)), reverse=True)
    ranked = path_scores(beta, "correct", best=2)
    assert [s for s, _ in ranked] == pytest.approx(brute[:2])
    assert score(ranked[0][1]) == pytest.approx(brute[0])


def test_normalised_entropy_and_decisiveness_measures():
    assert normalised_entropy(np.full(7, 1 / 7)) == pytest.approx(1.0)
    assert normalised_entropy(np.eye(3)[0]) == pytest.approx(0.0)
    space = SpaceConfig(width=2, nodes=3, layers=3)
    net = Supernet(space, TaskConfig())
    g0 = derive_genotype(net)
    record = decisiveness(g0, g0)
    assert record["alpha_entropy"] == pytest.approx([1.0] * 3)
    assert record["beta_entropy"] == pytest.approx(1.0)
    assert record["path_margin"] == pytest.approx(0.0) and record["choices_changed"] == 0
    with torch.no_grad():
        net.alpha[0, 0, PRIMITIVES.index("conv_3x3")] += 3.0
    g1 = derive_genotype(net)
    moved = decisiveness(g1, g0)
    assert moved["alpha_entropy"][0] < 1.0 and moved["alpha_entropy"][1] == pytest.approx(1.0)
    assert moved["choices_changed"] == (g0.cells != g1.cells) * sum(
        len(set(a) ^ set(b)) // 2 for a, b in zip(g0.cells[0], g1.cells[0], strict=True))


def test_verdict_needs_a_margin_above_noise_and_stable_choices():
    def rec(epoch, margin, changed):
        return {"epoch": epoch, "phase": "search", "path_margin": margin,
                "choices_changed": changed}

    steady = [rec(e, 1.0 + 0.01 * e, 0) for e in range(1, 8)]
    assert verdict(steady, 7)["decided"]
    noisy = [rec(e, m, 0) for e, m in enumerate([0.02, 0.3, 0.01, 0.25, 0.03], 1)]
    assert not verdict(noisy, 5)["path_decided"]
    flipping = [rec(e, 1.0, 2) for e in range(1, 6)]
    result = verdict(flipping, 5)
    assert result["path_decided"] and not result["cells_decided"]
    assert "6 (input, op) choice(s) changed" in result["message"]
    assert not verdict([{"epoch": 1, "phase": "warmup"}], 1)["decided"]
