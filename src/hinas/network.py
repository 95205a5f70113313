"""The network built from a genotype alone, and the start/end parts it shares with the supernet.

Start part: two 3×3 conv + LeakyReLU; their outputs are `h_{-2}` and `h_{-1}`. End part: 3×3 conv +
LeakyReLU, then a 3×3 conv producing the residual (docs/decisions.md §1.3): for denoising
`y = x + f(x)`; for super-resolution ×s, `f` yields `C·s²` channels → PixelShuffle(s) → added to
bicubic-upsampled `x`. With `residual` off the end part predicts the image itself.

In the derived network, layer `l`'s cell takes the kept cell of layer `l-1` (or `h_{-1}`) as
`s1` and that of layer `l-2` (or the stem outputs) as `s0`, each through a 1×1 conv + BN to its
node width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hinas.cells import derived_cell
from hinas.config import TaskConfig
from hinas.errors import HinasError
from hinas.genotype import Genotype
from hinas.ops import conv_bn, leaky_relu


def projection(c_in: int, c_out: int, affine: bool) -> nn.Module:
    """1×1 conv + BN that brings a feature to a cell's node width (`f` in the paper)."""
    return nn.Sequential(*conv_bn(c_in, c_out, 1, affine))


class Stem(nn.Module):
    """Start part: image → (h_{-2}, h_{-1})."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.conv0 = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), leaky_relu())
        self.conv1 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), leaky_relu())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two stem features."""
        h0 = self.conv0(x)
        return h0, self.conv1(h0)


class Tail(nn.Module):
    """End part with residual learning for denoising and PixelShuffle super-resolution."""

    def __init__(self, c_in: int, hidden: int, task: TaskConfig, residual: bool):
        super().__init__()
        self.scale, self.residual, self.task = task.out_scale, residual, task.name
        out = task.channels * self.scale ** 2
        self.body = nn.Sequential(nn.Conv2d(c_in, hidden, 3, padding=1), leaky_relu(),
                                  nn.Conv2d(hidden, out, 3, padding=1))
        self.shuffle = nn.PixelShuffle(self.scale) if self.scale > 1 else nn.Identity()

    def forward(self, features: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Restored image from the last features and the network input `x`."""
        y = self.shuffle(self.body(features))
        if not self.residual:
            return y
        if self.scale == 1:
            return x + y
        return y + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)


class DerivedNet(nn.Module):
    """The compact network a genotype describes: one cell per layer on the decoded width path.

    `widths` overrides the node width of each layer's cell (the fixed-width variants of paper
    Table 3); the stem and tail keep the genotype's level-0 width × `width_multiplier`.
    """

    def __init__(self, genotype: Genotype, width_multiplier: float = 1.0,
                 widths: list[int] | None = None):
        super().__init__()
        self.genotype, self.width_multiplier = genotype, width_multiplier
        space, n = genotype.space, genotype.space.nodes
        if widths is None:
            widths = genotype.widths(width_multiplier)
        elif len(widths) != space.layers or min(widths) < 1:
            raise HinasError(f"widths {widths}: need {space.layers} positive node widths, one "
                             f"per layer")
        self.widths = list(widths)
        stem_width = n * space.level_width(0, width_multiplier)
        self.stem = Stem(genotype.task.channels, stem_width)
        out_ch = [stem_width, stem_width]
        self.cells, self.proj0, self.proj1 = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for layer, w in enumerate(self.widths):
            self.proj0.append(projection(out_ch[-2], w, True))
            self.proj1.append(projection(out_ch[-1], w, True))
            cell = derived_cell(w, genotype.cells[layer])
            self.cells.append(cell)
            out_ch.append(cell.out_channels)
        self.tail = Tail(out_ch[-1], stem_width, genotype.task, space.residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Restored image from degraded input `x` (N, C, H, W) in [0, 1]."""
        states = list(self.stem(x))
        for cell, p0, p1 in zip(self.cells, self.proj0, self.proj1, strict=True):
            states.append(cell(p0(states[-2]), p1(states[-1])))
        return self.tail(states[-1], x)
