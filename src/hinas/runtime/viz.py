"""Plots a person would rather look at than read: the found architecture (every layer's cell and the
width path), training curves, and the evolution of α and β during a search."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from hinas.config import SpaceConfig  # noqa: E402
from hinas.errors import HinasError  # noqa: E402
from hinas.io import atomic_path, check_output_file  # noqa: E402
from hinas.space.genotype import Genotype, layer_levels  # noqa: E402
from hinas.space.ops import OPS  # noqa: E402

FAMILY_STYLES: dict[str, tuple[Any, tuple[str, ...]]] = {
    "conv": ("-", ("#0072B2",)), "separable": ("--", ("#009E73", "#56B4E9")),
    "dilated": ("-.", ("#D55E00", "#E69F00")),
    "dilated separable": ((0, (4, 1.5, 1, 1.5, 1, 1.5)), ("#CC79A7", "#882255")),
    "skip": (":", ("#555555",)),
}
"""Line style and colours (colour-blind safe, Okabe-Ito first) of each family of operations
(:class:`hinas.space.ops.OpSpec`) in the drawings: solid for plain, dashed for separable,
dash-dot for dilated, dash-dot-dot for dilated separable convolutions, dotted for skip; the
family's ops take its colours in the order of their kernel sizes."""
OTHER_STYLE = ("-", ("#999999", "#000000", "#44AA99", "#DDCC77"))
"""The style of a family not named above (a newly registered op is still drawn and labelled)."""


def op_style(name: str) -> tuple[str, Any]:
    """Colour and line style of the registered operation `name` in the drawings, from its
    family and kernel (`FAMILY_STYLES`)."""
    spec = OPS.get(name)
    style, colours = FAMILY_STYLES.get(spec.family, OTHER_STYLE)
    kin = sorted({(OPS.get(n).kernel, n) for n in OPS.names() if OPS.get(n).family == spec.family})
    return colours[[n for _, n in kin].index(name) % len(colours)], style


def op_legend(ops: list[str]) -> list[Line2D]:
    """Legend handles of the operations of `ops` a network can contain (every one but `none`)."""
    return [Line2D([], [], color=op_style(op)[0], ls=op_style(op)[1], lw=2, label=op)
            for op in ops if OPS.get(op).build is not None]


def _save(fig: plt.Figure, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", dpi=120,
                    bbox_inches="tight")
    plt.close(fig)


def _integer_ticks(ax: plt.Axes) -> None:
    """Epochs and iterations are counts: integer ticks only."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plain_log_ticks(axis) -> None:
    """Label a log-scale axis with plain numbers (0.3, 200) instead of powers of ten."""
    def plain(value: float, _pos=None) -> str:
        return f"{value:,.0f}" if value >= 10 else f"{value:.3g}"

    def minor(value: float, _pos) -> str:  # fewer minor labels the more decades are shown
        low, high = axis.get_view_interval()
        mantissa = round(value / 10 ** math.floor(math.log10(value)))
        shown = (high < 10 * low) or (high < 100 * low and mantissa in (2, 5))
        return plain(value) if shown else ""

    axis.set_major_formatter(FuncFormatter(plain))
    axis.set_minor_formatter(FuncFormatter(minor))


def _draw_path(ax: plt.Axes, genotype: Genotype, multiplier: float) -> None:
    """The outer space: stem, the Viterbi level path with each cell's width, and the tail."""
    space, task = genotype.space, genotype.task
    layers, widths = space.layers, genotype.widths(multiplier)
    stem_width = space.nodes * space.level_width(0, multiplier)
    for layer in range(layers):
        for level in layer_levels(layer):
            ax.plot(layer, level, "o", color="#dddddd", ms=16, zorder=1)
    xs = [-1, *range(layers), layers]
    ys = [0, *genotype.path, genotype.path[-1]]
    ax.plot(xs, ys, "-", color="black", lw=2.5, zorder=2)
    ax.plot(xs[1:-1], ys[1:-1], "o", color="black", ms=16, zorder=3)
    ax.plot([xs[0], xs[-1]], [ys[0], ys[-1]], "s", color="#fde0a6", mec="black", ms=18, zorder=3)
    for layer, (level, w) in enumerate(zip(genotype.path, widths, strict=True)):
        ax.annotate(f"node width {w}\n{space.nodes * w} channels out", (layer, level),
                    textcoords="offset points", xytext=(0, 15), ha="center", fontsize=8)
    if task.out_scale > 1:
        end = (f"→ {task.channels * task.out_scale ** 2} ch → PixelShuffle ×{task.out_scale}"
               f"\n+ bicubic ×{task.out_scale} input" if space.residual else
               f"→ PixelShuffle ×{task.out_scale}")
    else:
        end = f"→ {task.channels} ch" + ("\n+ input (residual)" if space.residual else "")
    ax.set_xticks(xs, [f"stem\n2× conv 3×3\n{task.channels} → {stem_width} ch",
                       *[f"layer {i}" for i in range(layers)],
                       f"tail\nconv 3×3, LeakyReLU,\nconv 3×3 {end}"], fontsize=8)
    ax.set_yticks([0, 1, 2], [f"level {i} (×{f:g})" for i, f in enumerate(space.width_factors)],
                  fontsize=8)
    ax.set_ylim(-0.5, 2.9)
    ax.set_xlim(-1.6, layers + 0.6)
    ax.set_title("network: stem, one cell per layer on the width path (Viterbi), tail",
                 fontsize=10)
    ax.grid(alpha=0.2)


def _draw_cell(ax: plt.Axes, cell: list[list[tuple[int, str]]], title: str) -> None:
    """One cell: inputs c_{k-2} (top) and c_{k-1} (bottom), nodes on a row, concatenated output;
    edges coloured and dashed by operation (legend below the figure), no text on the edges."""
    n = len(cell)
    step = 1.6
    pos = {0: (0.0, 1.0), 1: (0.0, -1.0), **{2 + j: (step * (1 + j), 0.0) for j in range(n)}}
    out = (step * (1 + n), 0.0)

    def arrow(a, b, rad, **style) -> None:
        ax.add_patch(FancyArrowPatch(a, b, connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>",
                                     mutation_scale=12, shrinkA=13, shrinkB=13, **style))

    for j, node in enumerate(cell):
        for inp, op in node:
            color, ls = op_style(op)
            gap = j + 2 - inp  # node-to-node edges that skip nodes arc above the row
            rad = -0.45 if inp >= 2 and gap > 1 else 0.0
            arrow(pos[inp], pos[2 + j], rad, color=color, ls=ls, lw=1.8)
    for j in range(n):  # to the concatenation: arcs below the row, past the later nodes
        arrow(pos[2 + j], out, 0.3 if j < n - 1 else 0.0, color="#aaaaaa", lw=0.9)
    names = {0: r"$c_{k-2}$", 1: r"$c_{k-1}$", **{2 + j: str(j) for j in range(n)}}
    for key, (x, y) in pos.items():
        ax.text(x, y, names[key], ha="center", va="center", fontsize=10, zorder=4,
                bbox={"boxstyle": "circle,pad=0.3" if key >= 2 else "round,pad=0.3",
                      "fc": "#cfe2f3" if key >= 2 else "#fde0a6", "ec": "black"})
    ax.text(*out, "concat", ha="center", va="center", fontsize=9, zorder=4,
            bbox={"boxstyle": "round,pad=0.3", "fc": "#d9ead3", "ec": "black"})
    ax.set_xlim(-0.6, out[0] + 0.7)
    ax.set_ylim(-1.5, 1.5)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=10)
    ax.axis("off")


PLOT_FORMATS = ("", ".png", ".svg", ".pdf")
"""File extensions the architecture drawing can be written as (none: PNG)."""


def plot_genotype(genotype: Genotype, path: str | Path, multiplier: float = 1.0) -> None:
    """Draw the network (stem, width path, tail) and every layer's cell, with an operation legend
    (inputs labelled c_{k-2}, c_{k-1}), at node widths × `multiplier`, to a file (.png, .svg or
    .pdf)."""
    if Path(path).suffix.lower() not in PLOT_FORMATS:
        raise HinasError(f"{path}: cannot draw to a {Path(path).suffix} file; use .png, .svg "
                         f"or .pdf")
    check_output_file(path)
    space, layers = genotype.space, genotype.space.layers
    cell_width = 1.6 * (space.nodes + 1) + 1.3  # data units of `_draw_cell`, 3 units high
    fig_width = max(9.0, 1.2 * cell_width)
    fig = plt.figure(figsize=(fig_width, 4.0 + 3.0 / cell_width * fig_width * layers),
                     layout="constrained")
    grid = fig.add_gridspec(1 + layers, 1,
                            height_ratios=[4.0] + [3.0 / cell_width * fig_width] * layers)
    _draw_path(fig.add_subplot(grid[0]), genotype, multiplier)
    widths = genotype.widths(multiplier)
    for layer in range(layers):
        _draw_cell(fig.add_subplot(grid[1 + layer]), genotype.cells[layer],
                   f"layer {layer}: cell at level {genotype.path[layer]}, node width "
                   f"{widths[layer]}")
    handles = op_legend(space.ops)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8,
               title="operation on each edge", title_fontsize=8, frameon=False)
    fig.suptitle(f"HiNAS architecture: {genotype.task.describe()}, {genotype.task.channels} "
                 f"channel(s), width multiplier {multiplier:g}", fontsize=12)
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
    plain_log_ticks(axes[0].yaxis)
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
    for ax in axes:
        _integer_ticks(ax)
    axes[0].set_title("loss")
    axes[1].set_title("validation")
    _save(fig, path)


def plot_campaign(rows: list[dict], path: str | Path, title: str = "") -> None:
    """The held-back PSNR of every level (and their mean) against the CPU minutes of training,
    one point per piece of campaign.jsonl `rows` (its iteration written above it), the start of
    the decay phase marked. The untrained network's scores (iteration 0) are given in the
    legend rather than drawn once two pieces exist, so that the axis shows the differences that
    matter."""
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    trained = [r for r in rows if r["iter"] > 0]
    shown = trained if len(trained) >= 2 else rows
    for level in rows[-1]["psnr"]:
        pts = [(r["cpu_minutes"], r["psnr"][level]) for r in shown if level in r["psnr"]]
        start = [r["psnr"][level] for r in rows if r["iter"] == 0 and level in r["psnr"]]
        label = level + (f" (start {start[0]:.2f} dB)" if start and shown is trained else "")
        ax.plot(*zip(*pts, strict=True), "o-", label=label)
    if len(rows[-1]["psnr"]) > 1:
        ax.plot([r["cpu_minutes"] for r in shown], [r["mean_psnr"] for r in shown], "--",
                color="#555555", lw=1, label="mean (the stop rule's)")
    for r in shown:
        ax.annotate(f"{r['iter']:,}", (r["cpu_minutes"], max(r["psnr"].values())),
                    textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7,
                    color="#555555")
    decay = next((r for r in shown if r.get("decay_from") and r["iter"] >= r["decay_from"]),
                 None)
    if decay is not None:
        ax.axvline(decay["cpu_minutes"], color="#888888", ls="--", lw=1)
        ax.annotate(f"decay from iteration {decay['decay_from']:,}", (decay["cpu_minutes"], 0),
                    xycoords=("data", "axes fraction"), xytext=(3, 4),
                    textcoords="offset points", fontsize=8, color="#555555")
    ax.set_xlabel("CPU minutes of training (iterations above the points)")
    ax.set_ylabel("held-back PSNR (dB)")
    ax.margins(y=0.15)
    ax.legend(fontsize=8)
    ax.set_title(title or "training campaign", fontsize=9)
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
            color, ls = op_style(op) if OPS.get(op).build is not None else ("black", "-")
            axes[layer, 0].plot(epochs, a[:, col], label=op, color=color, ls=ls)
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
    axes[-1, 0].set_xlabel("epoch")
    axes[-1, 1].set_xlabel("epoch")
    for ax in axes.flat:
        _integer_ticks(ax)
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
