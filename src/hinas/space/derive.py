"""From continuous α/β to a discrete genotype: top-2 edges per node, Viterbi widths — and how
decided α/β are (entropies, margins, changed choices); docs/decisions.md §1.4."""

from __future__ import annotations

import math

import numpy as np
import torch

from hinas.space.cells import cell_edges
from hinas.space.genotype import Genotype, layer_levels
from hinas.space.ops import usable_columns
from hinas.space.supernet import Supernet, sources


def top2_cell(weights: np.ndarray, nodes: int, ops: list[str]) -> list[list[tuple[int, str]]]:
    """Per node, the 2 incoming edges whose strongest non-`none` op weight is largest, with that op.

    `weights` is softmax(α) of one layer, shape [edges, len(ops)] (DARTS discretisation).
    """
    usable = usable_columns(ops)
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


def beta_prior(beta: np.ndarray) -> np.ndarray:
    """β₀: the move probabilities of an undecided search — uniform over each source's existing
    moves (what β's masked softmax gives at initialisation), 0 where `beta` is 0."""
    exists = beta > 0
    count = exists.sum(axis=-1, keepdims=True)
    return np.where(exists, 1.0 / np.maximum(count, 1), 0.0)


def path_scores(beta: np.ndarray, prior: str = "correct", best: int = 2
                ) -> list[tuple[float, list[int]]]:
    """The `best` highest-scoring width paths with their scores (nats), best first.

    `beta[l, k, m]` is the probability of moving from level k of layer l-1 by m-1 levels into layer
    l; a path starts at level 0 before layer 0 (the stem) and may end at any level. With `prior`
    `keep` a move scores log β (the paper's Viterbi decode); with `correct` it scores log(β / β₀),
    so the structure of the space (edge levels have 2 moves, the middle level 3) favours no path.
    """
    if prior not in ("correct", "keep"):
        raise ValueError(f"prior must be 'correct' or 'keep', got {prior!r}")
    logp = np.log(np.where(beta > 0, beta, 1.0))
    if prior == "correct":
        logp = logp - np.log(np.where(beta > 0, beta_prior(beta), 1.0))
    paths: dict[int, list[tuple[float, list[int]]]] = {0: [(0.0, [])]}
    for layer in range(beta.shape[0]):
        new: dict[int, list[tuple[float, list[int]]]] = {}
        for level in layer_levels(layer):
            options = [(score + logp[layer, k, move], path + [level])
                       for k, move in sources(layer, level) if beta[layer, k, move] > 0
                       for score, path in paths.get(k, [])]
            if options:
                new[level] = sorted(options, key=lambda t: -t[0])[:best]
        paths = new
    ranked = sorted((t for options in paths.values() for t in options), key=lambda t: -t[0])
    return [(float(score), path) for score, path in ranked[:best]]


def viterbi(beta: np.ndarray, prior: str = "correct") -> list[int]:
    """Most probable width path (one level per layer) from per-source move probabilities; see
    `path_scores` for the meaning of `prior`."""
    return path_scores(beta, prior, best=1)[0][1]


def normalised_entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy of each distribution along the last axis over its non-zero support, divided by
    log(support size): 1 = uniform (undecided), 0 = one-hot. Supports of size 1 give 0."""
    support = (probs > 0).sum(axis=-1)
    logs = np.log(np.where(probs > 0, probs, 1.0))
    entropy = -(probs * logs).sum(axis=-1)
    return np.where(support > 1, entropy / np.log(np.maximum(support, 2)), 0.0)


def edge_margin(weights: np.ndarray, nodes: int, ops: list[str]) -> float:
    """Mean, over nodes with more than two inputs, of how far the weaker kept edge's strength is
    above the strongest dropped edge's (strength = largest non-`none` softmax(α) weight)."""
    strength = weights[:, usable_columns(ops)].max(axis=1)
    edges = cell_edges(nodes)
    margins = []
    for j in range(nodes):
        rows = [row for row, (node, _) in enumerate(edges) if node == j]
        if len(rows) > 2:
            ranked = np.sort(strength[rows])[::-1]
            margins.append(ranked[1] - ranked[2])
    return float(np.mean(margins)) if margins else 0.0


def decisiveness(current: Genotype, previous: Genotype | None, prior: str = "correct") -> dict:
    """How decided the α/β that `current` was derived from are: normalised entropy of softmax(α)
    per layer (mean over edges) and of β over sources with ≥ 2 moves, the margin in nats between
    the best and second-best width path under `prior`, the mean top-2 edge margin, and how many
    (input, op) choices and path levels changed since `previous` (None: not counted)."""
    alphas, betas, space = np.array(current.alpha), np.array(current.beta), current.space
    ranked = path_scores(betas, prior, best=2)
    sources_b = betas.reshape(-1, betas.shape[-1])
    multi = sources_b[(sources_b > 0).sum(axis=-1) >= 2]
    rows = alphas.shape[0]
    record = {
        "alpha_entropy": [round(float(normalised_entropy(alphas[r]).mean()), 5)
                          for r in range(rows)],
        "beta_entropy": round(float(normalised_entropy(multi).mean()), 5) if len(multi) else 0.0,
        "path_margin": round(ranked[0][0] - ranked[1][0], 5) if len(ranked) > 1 else math.inf,
        "edge_margin": round(float(np.mean([edge_margin(alphas[r], space.nodes, space.ops)
                                            for r in range(rows)])), 5),
        "choices_changed": None,
    }
    if previous is not None:
        changed = sum(len(set(map(tuple, a)) ^ set(map(tuple, b))) // 2
                      for old, new in zip(previous.cells, current.cells, strict=True)
                      for a, b in zip(old, new, strict=True))
        changed += sum(a != b for a, b in zip(previous.path, current.path, strict=True))
        record["choices_changed"] = int(changed)
    return record


COLLAPSE_SHARE = 0.5
"""A layer has collapsed when `skip_connect` holds at least this share of its kept edges, or `none`
is the strongest operation on at least this share of its edges (the DARTS failure mode), counting
only edges whose weights have moved from uniform (see `MOVED`)."""
MOVED = 0.25
"""An edge's softmax(α) has moved from uniform when one of its K weights is at least (1 + MOVED)/K:
on an edge still near 1/K (a search's first epochs, the demo's seconds) the op that leads does so
by noise, and its choice says nothing about a collapse."""


def moved_edges(weights: np.ndarray) -> np.ndarray:
    """Which edges (rows of one layer's softmax(α)) have moved from uniform (`MOVED`)."""
    return weights.max(axis=1) >= (1 + MOVED) / weights.shape[1]


def collapse(genotype: Genotype) -> dict:
    """The collapse guard of a derived genotype, per layer: how many kept edges are
    `skip_connect` (and how many of those have moved from uniform), the mean and largest
    softmax(α) weight of `none`, how many edges have moved, and the layers that collapsed
    (see `COLLAPSE_SHARE`; a layer whose edges are all near uniform never has)."""
    alphas, ops = np.array(genotype.alpha), genotype.space.ops
    none = ops.index("none") if "none" in ops else None
    rows = {edge: row for row, edge in enumerate(cell_edges(genotype.space.nodes))}
    skip, skip_moved, none_mean, none_max, moved_count, collapsed = [], [], [], [], [], []
    for layer, cell in enumerate(genotype.cells):
        weights = alphas[layer if alphas.shape[0] > 1 else 0]
        moved = moved_edges(weights)
        kept = [(rows[(j, inp)], op) for j, node in enumerate(cell) for inp, op in node]
        skip.append(sum(op == "skip_connect" for _, op in kept))
        skip_moved.append(sum(op == "skip_connect" and bool(moved[row]) for row, op in kept))
        none_w = weights[:, none] if none is not None else np.zeros(len(weights))
        none_mean.append(round(float(none_w.mean()), 5))
        none_max.append(round(float(none_w.max()), 5))
        moved_count.append(int(moved.sum()))
        others = np.delete(weights, none, axis=1) if none is not None else weights
        none_top = (float(np.mean((none_w > others.max(axis=1)) & moved))
                    if none is not None else 0.0)
        if skip_moved[-1] >= COLLAPSE_SHARE * len(kept) or none_top >= COLLAPSE_SHARE:
            collapsed.append(layer)
    return {"skip_kept": skip, "skip_kept_moved": skip_moved, "none_weight": none_mean,
            "none_weight_max": none_max, "edges_moved": moved_count,
            "collapsed_layers": collapsed}


@torch.no_grad()
def derive_genotype(supernet: Supernet, meta: dict | None = None,
                    prior: str = "correct") -> Genotype:
    """The genotype of a supernet: top-2 cell per layer (LWAS) and the Viterbi width path decoded
    with `prior` (see `path_scores`)."""
    space = supernet.space
    alphas = supernet.alpha_weights().cpu().numpy()
    betas = supernet.beta_weights().cpu().numpy()
    cells = [top2_cell(alphas[layer if space.lwas else 0], space.nodes, space.ops)
             for layer in range(space.layers)]
    return Genotype(
        task=supernet.task, space=space, path=viterbi(betas, prior), cells=cells,
        alpha=alphas.round(6).tolist(), beta=betas.round(6).tolist(), meta=dict(meta or {}),
    )


MIN_PATH_MARGIN = 0.05
"""Nats; a smaller best-vs-second path margin is undecided whatever the noise."""


def verdict(records: list[dict], upto_epoch: int, window: int = 5, stable: int = 3) -> dict:
    """Whether a search decided, from its per-epoch decisiveness records up to `upto_epoch` (the
    epoch the genotype is derived from). The width path is decided when its margin exceeds both
    `MIN_PATH_MARGIN` and 3× its noise (standard deviation over the last `window` searched
    epochs); the cells when no (input, op) choice changed in the last `stable` epochs."""
    searched = [r for r in records if r.get("phase") == "search" and r["epoch"] <= upto_epoch
                and r.get("path_margin") is not None]
    if not searched:
        return {"decided": False, "message": "undecided: no architecture step was made"}
    margin = float(searched[-1]["path_margin"])
    recent = [float(r["path_margin"]) for r in searched[-window:]]
    noise = float(np.std(recent)) if len(recent) > 1 else math.inf
    changed = sum(r.get("choices_changed") or 0 for r in searched[-stable:])
    path_ok = margin > max(MIN_PATH_MARGIN, 3 * noise)
    cells_ok = changed == 0 and len(searched) >= stable
    parts = [f"path margin {margin:.3f} nats (noise {noise:.3f}, needs > "
             f"{max(MIN_PATH_MARGIN, 3 * noise):.3f})",
             f"{changed} (input, op) choice(s) changed in the last {stable} searched epochs"]
    word = "decided" if path_ok and cells_ok else "undecided"
    return {"decided": path_ok and cells_ok, "path_decided": path_ok, "cells_decided": cells_ok,
            "path_margin": round(margin, 5), "path_noise": round(noise, 5),
            "choices_changed_recently": int(changed), "message": f"{word}: " + "; ".join(parts)}
