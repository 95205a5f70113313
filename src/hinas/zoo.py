"""Baseline architectures, registered next to `hinas` so that `hinas train --arch NAME` trains them
exactly like a searched network (same data, budget, optimiser, model folder):

- `dncnn` (denoising): DnCNN (Zhang et al. 2017) — `depth` 3×3 conv layers of `width` channels,
  Conv+ReLU, (depth−2) × Conv+BN+ReLU, Conv; it predicts the noise, output = input − noise.
- `fsrcnn` (super-resolution): FSRCNN (Dong et al. 2016) — 5×5 feature extraction (`d`), 1×1
  shrinking (`s`), `m` 3×3 mapping layers, 1×1 expanding, each followed by PReLU, then a 9×9
  transposed conv of stride ×scale that outputs exactly scale·H × scale·W. As in its paper the
  deconvolution trains at a tenth of the learning rate (10⁻⁴ against 10⁻³ there). `residual`
  adds the bicubic upsampling of the input, so the network learns only the detail bicubic
  misses: new trainings use it (the registered option), because without it FSRCNN ends below
  bicubic within a CPU budget (measured with benchmarks/recipes.py: 26.9 / 24.8 dB against
  bicubic's 28.4 / 26.0 on Set5 / Set14 ×4, and 29.7 / 26.9 with it, same 2.5 CPU-minutes);
  `--arch-option residual=false` trains the published network, and model folders written
  before the option existed load as published.
- `hinas-w40` / `hinas-wm` (paper §4.2.2, Table 3): the cells of a searched genotype at manually
  set widths — every cell at node width `width` (40), or node width `base_width` (20) doubling
  layer by layer (20, 40, 80, …). Stem and tail are the genotype's, as in `hinas`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hinas.config import TaskConfig
from hinas.errors import HinasError
from hinas.genotype import Genotype
from hinas.models import register_model
from hinas.network import DerivedNet


class DnCNN(nn.Module):
    """DnCNN: a plain conv/BN/ReLU stack that predicts the noise (residual learning)."""

    def __init__(self, channels: int, depth: int = 17, width: int = 64):
        super().__init__()
        if depth < 2 or width < 1:
            raise HinasError(f"dncnn needs depth ≥ 2 and width ≥ 1, got {depth} and {width}")
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoised image: the input minus the predicted noise."""
        return x - self.body(x)


class FSRCNN(nn.Module):
    """FSRCNN(d, s, m): super-resolution by a transposed convolution at the end."""

    def __init__(self, channels: int, scale: int, d: int = 56, s: int = 12, m: int = 4,
                 residual: bool = False):
        super().__init__()
        self.scale, self.residual = scale, residual
        if min(d, s) < 1 or m < 0:
            raise HinasError(f"fsrcnn needs d, s ≥ 1 and m ≥ 0, got {d}, {s}, {m}")
        layers: list[nn.Module] = [nn.Conv2d(channels, d, 5, padding=2), nn.PReLU(d),
                                   nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        layers += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        # (H-1)·scale − 2·4 + 9 + (scale−1) = scale·H
        self.deconv = nn.ConvTranspose2d(d, channels, 9, stride=scale, padding=4,
                                         output_padding=scale - 1)
        nn.init.normal_(self.deconv.weight, std=0.001)  # as in the paper
        nn.init.zeros_(self.deconv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The scale·H × scale·W image from the low-resolution input."""
        y = self.deconv(self.body(x))
        if self.residual:
            y = y + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return y


def _multiplier(cfg) -> dict:
    return {"width_multiplier": cfg.train.width_multiplier}


@register_model("dncnn", options=lambda cfg: {"depth": 17, "width": 64}, tasks=("denoise",))
def dncnn(task: TaskConfig, genotype: None, depth: int = 17, width: int = 64) -> nn.Module:
    """DnCNN-S (17 layers, 64 channels by default) for `task.channels`-channel images."""
    return DnCNN(task.channels, depth, width)


@register_model("fsrcnn", options=lambda cfg: {"d": 56, "s": 12, "m": 4, "residual": True},
                tasks=("sr",), lr_multipliers={"deconv": 0.1})
def fsrcnn(task: TaskConfig, genotype: None, d: int = 56, s: int = 12, m: int = 4,
           residual: bool = False) -> nn.Module:
    """FSRCNN(56, 12, 4) by default, at the task's scale (optionally on a bicubic residual)."""
    return FSRCNN(task.channels, task.scale, d, s, m, residual)


@register_model("hinas-w40", options=lambda cfg: {"width": 40, **_multiplier(cfg)},
                needs_genotype=True)
def hinas_fixed_width(task: TaskConfig, genotype: Genotype, width: int = 40,
                      width_multiplier: float = 1.0) -> nn.Module:
    """The genotype's cells, every one at node width `width` (HiNAS-w40)."""
    return DerivedNet(genotype, width_multiplier, widths=[width] * genotype.space.layers)


@register_model("hinas-wm", options=lambda cfg: {"base_width": 20, **_multiplier(cfg)},
                needs_genotype=True)
def hinas_doubling_width(task: TaskConfig, genotype: Genotype, base_width: int = 20,
                         width_multiplier: float = 1.0) -> nn.Module:
    """The genotype's cells at node width `base_width` doubling layer by layer (HiNAS-wm)."""
    return DerivedNet(genotype, width_multiplier,
                      widths=[base_width * 2 ** layer for layer in range(genotype.space.layers)])
