"""The start and end parts of every hinas network, and the projection in front of a cell; the
supernet and the derived network both take them from here.

Start part: two 3×3 conv + LeakyReLU; their outputs are `h_{-2}` and `h_{-1}`. End part: 3×3 conv +
LeakyReLU, then a 3×3 conv producing the residual (docs/decisions.md §1.3): for denoising
`y = x + f(x)`; for super-resolution ×s, `f` yields `C·s²` channels → PixelShuffle(s) → added to
bicubic-upsampled `x`. With `residual` off the end part predicts the image itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hinas.config import TaskConfig
from hinas.space.ops import conv_bn, leaky_relu


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
