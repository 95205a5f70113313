"""The start and end parts of every hinas network, and the projection in front of a cell; the
supernet and the derived network both take them from here.

Start part: two 3×3 conv + LeakyReLU; their outputs are `h_{-2}` and `h_{-1}`. End part: 3×3 conv +
LeakyReLU, then a 3×3 conv producing the residual (docs/decisions.md §1.3): for denoising
`y = x + f(x)`; for super-resolution ×s, `f` yields `C·s²` channels → PixelShuffle(s) → added to
bicubic-upsampled `x`. With `residual` off the end part predicts the image itself.

Start-part downsampling (`space.start_scale` s > 1, FFDNet): the start part pixel-unshuffles the
image by s first, and the end part's pixel-shuffle grows by s, so the cells run at 1/s.

Resolution levels (`space.levels: resolution`): a feature moving from level j to level i goes
through :func:`resample`: down (i > j) a pixel-unshuffle by 2^(i−j) then the 1×1 conv + BN, up
(i < j) the 1×1 conv + BN at the coarse level, then bilinear upsampling by 2^(j−i) (the same map
as upsampling first, both being linear per channel, at a quarter of the cost). A network returns to
the start part's resolution before its end part and adds the start part's last feature there
(:class:`FullResolution`).

Any input size: a network that reaches a coarser grid than its input pads the input at the
bottom and right (edge replication) to its `size_multiple` and crops its output back
(:func:`padded_call`).
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


def resample(c_in: int, c_out: int, steps: int, affine: bool) -> nn.Module:
    """The projection of a feature moving `steps` resolution levels: coarser by 2^steps for
    `steps` > 0 (pixel-unshuffle first), finer by 2^−steps for `steps` < 0 (bilinear upsampling
    after it), or staying (0: :func:`projection`)."""
    factor = 2 ** abs(steps)
    if steps > 0:
        return nn.Sequential(nn.PixelUnshuffle(factor),
                             *conv_bn(c_in * factor * factor, c_out, 1, affine))
    if steps < 0:
        return nn.Sequential(*conv_bn(c_in, c_out, 1, affine),
                             nn.Upsample(scale_factor=factor, mode="bilinear",
                                         align_corners=False))
    return projection(c_in, c_out, affine)


class FullResolution(nn.Module):
    """The return of resolution levels to the start part's grid: each last feature resampled to
    level 0 at the start part's width, summed, plus the start part's last feature (the skip)."""

    def __init__(self, sources: list[tuple[int, int]], width: int, affine: bool):
        """`sources`: (channels, resolution level) of each last feature."""
        super().__init__()
        self.ups = nn.ModuleList(resample(c, width, -level, affine) for c, level in sources)

    def forward(self, features: list[torch.Tensor], skip: torch.Tensor) -> torch.Tensor:
        """`skip` plus every feature brought back to its grid."""
        total = skip
        for up, f in zip(self.ups, features, strict=True):
            total = total + up(f)
        return total


def padded_call(forward, x: torch.Tensor, multiple: int, scale: int) -> torch.Tensor:
    """`forward(x)` for any input size: `x` padded at the bottom and right by edge replication
    to a multiple of `multiple`, the output (`scale` times the input) cropped back."""
    if multiple == 1:
        return forward(x)
    h, w = x.shape[-2], x.shape[-1]
    padded = F.pad(x, (0, (-w) % multiple, 0, (-h) % multiple), mode="replicate")
    return forward(padded)[..., :h * scale, :w * scale]


class Stem(nn.Module):
    """Start part: image (and, for a noise-map network, its noise-level map: `channels` counts
    both) → (h_{-2}, h_{-1})."""

    def __init__(self, channels: int, width: int, start_scale: int = 1):
        super().__init__()
        first = [nn.PixelUnshuffle(start_scale)] if start_scale > 1 else []
        self.conv0 = nn.Sequential(*first, nn.Conv2d(channels * start_scale ** 2, width, 3,
                                                     padding=1), leaky_relu())
        self.conv1 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), leaky_relu())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two stem features."""
        h0 = self.conv0(x)
        return h0, self.conv1(h0)


class Tail(nn.Module):
    """End part with residual learning for denoising and PixelShuffle super-resolution."""

    def __init__(self, c_in: int, hidden: int, task: TaskConfig, residual: bool,
                 start_scale: int = 1):
        super().__init__()
        self.scale, self.residual, self.channels = task.out_scale, residual, task.channels
        self.mapped = task.input_channels != task.channels
        shuffle = self.scale * start_scale
        out = task.channels * shuffle ** 2
        self.body = nn.Sequential(nn.Conv2d(c_in, hidden, 3, padding=1), leaky_relu(),
                                  nn.Conv2d(hidden, out, 3, padding=1))
        self.shuffle = nn.PixelShuffle(shuffle) if shuffle > 1 else nn.Identity()

    def forward(self, features: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Restored image from the last features and the network input `x` (whose image is
        its first `channels`, a noise-level map following)."""
        y = self.shuffle(self.body(features))
        if not self.residual:
            return y
        if self.mapped:
            x = x[:, :self.channels]
        if self.scale == 1:
            return x + y
        return y + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
