"""Plots a person would rather look at than read: the found architecture (every layer's cell and the
width path), training curves, and the evolution of α and β during a search."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402

from hinas.config import SpaceConfig  # noqa: E402
from hinas.genotype import Genotype  # noqa: E402
from hinas.io import atomic_path  # noqa: E402

OP_COLORS = {
    "skip_connect": "#7f7f7f", "conv_3x3": "#1f77b4", "sep_conv_3x3": "#2ca02c",
    "sep_conv_5x5": "#17becf", "dil_conv_3x3": "#d62728", "dil_conv_5x5": "#ff7f0e",
}


def _save(fig: plt.Figure, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", dpi=120,
                    bbox_inches="tight")
    plt.close(fig)


def _draw_path(ax: plt.Axes, genotype: Genotype, multiplier: float) -> None:
    space = genotype.space
    for layer in range(space.layers):
        for level in ((0, 1) if layer == 0 else (0, 1, 2)):
            ax.plot(layer, level, "o", color="#cccccc", ms=14, zorder=1)
    xs = [-1, *range(space.layers)]
    ys = [0, *genotype.path]
    ax.plot(xs, ys, "-o", color="black", lw=2.5, ms=14, zorder=2)
    for layer, (level, w) in enumerate(zip(genotype.path, genotype.widths(multiplier),
                                           strict=True)):
        ax.annotate(f"w={w}", (layer, level), textcoords="offset points", xytext=(0, 14),
                    ha="center", fontsize=9)
    ax.set_xticks(xs, ["stem", *[f"layer {i}" for i in range(space.layers)]])
    ax.set_yticks([0, 1, 2], [f"level {i}\n×{f:g}" for i, f in enumerate(space.width_factors)])
    ax.set_ylim(-0.6, 2.8)
    ax.set_xlim(-1.5, space.layers - 0.5)
    ax.set_title("outer space: width path (Viterbi)")
    ax.grid(alpha=0.2)


def _draw_cell(ax: plt.Axes, cell: list[list[tuple[int, str]]], title: str) -> None:
    n = len(cell)
    pos = {0: (0.0, 1.0), 1: (0.0, -1.0)}
    for j in range(n):
        pos[2 + j] = (1.8 * (1 + j), 0.55 if j % 2 == 0 else -0.55)
    out = (1.8 * (1 + n), 0.0)
    names = {0: r"$c_{k-2}$", 1: r"$c_{k-1}$", **{2 + j: str(j) for j in range(n)}}
    for j, node in enumerate(cell):
        for t, (inp, op) in enumerate(node):
            (x0, y0), (x1, y1) = pos[inp], pos[2 + j]
            rad = (0.25 if t == 0 else -0.25) * min(1.0, 2.5 / max(abs(x1 - x0), 1e-6))
            ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), connectionstyle=f"arc3,rad={rad}",
                                         arrowstyle="-|>", mutation_scale=12, shrinkA=14,
                                         shrinkB=14, color=OP_COLORS.get(op, "black"), lw=1.6))
            # midpoint of matplotlib's arc3 quadratic Bézier
            mx = (x0 + x1) / 2 + 0.5 * rad * (y1 - y0)
            my = (y0 + y1) / 2 - 0.5 * rad * (x1 - x0)
            ax.text(mx, my, op, fontsize=7, ha="center", va="center",
                    color=OP_COLORS.get(op, "black"),
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
    for j in range(n):
        ax.add_patch(FancyArrowPatch(pos[2 + j], out, arrowstyle="-|>", mutation_scale=10,
                                     shrinkA=14, shrinkB=16, color="#bbbbbb", lw=1, ls="--"))
    for key, (x, y) in pos.items():
        face = "#fde0a6" if key < 2 else "#cfe2f3"
        ax.text(x, y, names[key], ha="center", va="center", fontsize=10,
                bbox={"boxstyle": "circle,pad=0.35" if key >= 2 else "round,pad=0.3",
                      "fc": face, "ec": "black"})
    ax.text(*out, "concat", ha="center", va="center", fontsize=9,
            bbox={"boxstyle": "round,pad=0.3", "fc": "#d9ead3", "ec": "black"})
    ax.set_xlim(-0.7, out[0] + 0.8)
    ax.set_ylim(-1.9, 1.9)
    ax.set_title(title, fontsize=10)
    ax.axis("off")


def plot_genotype(genotype: Genotype, path: str | Path, multiplier: float = 1.0) -> None:
    """Draw the width path and every layer's cell (inputs labelled c_{k-2}, c_{k-1}) to a file."""
    layers = genotype.space.layers
    fig = plt.figure(figsize=(max(9.0, 2.2 * (genotype.space.nodes + 2)), 3.2 + 2.6 * layers),
                     layout="constrained")
    grid = fig.add_gridspec(1 + layers, 1, height_ratios=[1.3] + [1.0] * layers)
    _draw_path(fig.add_subplot(grid[0]), genotype, multiplier)
    widths = genotype.widths(multiplier)
    for layer in range(layers):
        _draw_cell(fig.add_subplot(grid[1 + layer]), genotype.cells[layer],
                   f"layer {layer}: level {genotype.path[layer]}, node width {widths[layer]}")
    fig.suptitle(f"hinas architecture — {genotype.task.describe()}", fontsize=12)
    _save(fig, path)


def plot_curves(records: list[dict], path: str | Path, x: str = "epoch") -> None:
    """Loss and validation PSNR/SSIM curves from metrics.jsonl records, against `x`."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    for key, label in (("w_loss", "train loss (W)"), ("a_loss", "arch loss (A)"),
                       ("loss", "train loss")):
        pts = [(r[x], r[key]) for r in records if r.get(key) is not None]
        if pts:
            axes[0].plot(*zip(*pts, strict=True), label=label)
    axes[0].set_xlabel(x)
    axes[0].set_ylabel("loss")
    axes[0].set_yscale("log")
    axes[0].legend()
    pts = [(r[x], r["val_psnr"], r["val_ssim"]) for r in records if r.get("val_psnr") is not None]
    if pts:
        xs, ps, ss = zip(*pts, strict=True)
        axes[1].plot(xs, ps, "o-", color="tab:blue")
        twin = axes[1].twinx()
        twin.plot(xs, ss, "s--", color="tab:orange")
        twin.set_ylabel("val SSIM", color="tab:orange")
    axes[1].set_xlabel(x)
    axes[1].set_ylabel("val PSNR (dB)", color="tab:blue")
    axes[0].set_title("loss")
    axes[1].set_title("validation")
    _save(fig, path)


def plot_arch_history(history: list[dict], space: SpaceConfig, path: str | Path,
                      records: list[dict] | None = None) -> None:
    """Evolution of α (mean op weight per layer) and β (move probabilities per layer) per epoch,
    and, from the metrics `records`, how decided the search is (entropies and margins)."""
    if not history:
        return
    epochs = [h["epoch"] for h in history]
    alpha = np.array([h["alpha"] for h in history])  # [T, rows, edges, ops]
    beta = np.array([h["beta"] for h in history])  # [T, layers, 3, 3]
    rows = space.layers
    decided = [r for r in records or [] if r.get("path_margin") is not None]
    fig, axes = plt.subplots(rows + bool(decided), 2, figsize=(11, 2.8 * (rows + bool(decided))),
                             layout="constrained", squeeze=False)
    moves = ("down", "same", "up")
    for layer in range(rows):
        a = alpha[:, layer if alpha.shape[1] > 1 else 0].mean(axis=1)
        for col, op in enumerate(space.ops):
            axes[layer, 0].plot(epochs, a[:, col], label=op, color=OP_COLORS.get(op, "black"))
        axes[layer, 0].set_title(f"layer {layer}: α (mean softmax weight over edges)", fontsize=9)
        for k in range(3):
            for m in range(3):
                if beta[:, layer, k, m].max() > 0:
                    axes[layer, 1].plot(epochs, beta[:, layer, k, m],
                                        label=f"from level {k}: {moves[m]}")
        source = f"layer {layer - 1}" if layer else "the stem"
        axes[layer, 1].set_title(f"layer {layer}: β (move probabilities out of {source})",
                                 fontsize=9)
        axes[layer, 1].set_ylim(0, 1)
        axes[layer, 1].legend(fontsize=7, ncol=3)
    axes[0, 0].legend(fontsize=7, ncol=2)
    if decided:
        _plot_decisiveness(axes[rows], decided)
    for ax in axes.flat:
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes[-1, 0].set_xlabel("epoch")
    axes[-1, 1].set_xlabel("epoch")
    _save(fig, path)


def _plot_decisiveness(axes: np.ndarray, records: list[dict]) -> None:
    """Normalised entropies (1 = undecided) and the path / edge margins per epoch."""
    epochs = [r["epoch"] for r in records]
    entropy = np.array([r["alpha_entropy"] for r in records])
    for row in range(entropy.shape[1]):
        axes[0].plot(epochs, entropy[:, row], label=f"α, layer {row}")
    axes[0].plot(epochs, [r["beta_entropy"] for r in records], "k--", label="β")
    axes[0].set_title("normalised entropy (1 = uniform, 0 = decided)", fontsize=9)
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].plot(epochs, [r["path_margin"] for r in records], label="width path margin (nats)")
    axes[1].plot(epochs, [r["edge_margin"] for r in records], label="top-2 edge margin")
    axes[1].set_title("margins of the derived choices", fontsize=9)
    axes[1].legend(fontsize=7)
