"""Training losses, selectable by name (docs/decisions.md §2).

The paper's search loss is ``MSE(ŷ, y) + λ · log10(1 / SSIM(ŷ, y))`` with λ = 0.6 and a
differentiable SSIM (11x11 Gaussian window, σ 1.5). Names: a pixel loss (``mse`` or ``l1``),
optionally followed by ``+ssim`` for the SSIM term (``mse`` alone is the ablation of paper
Tables 4–5).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from hinas.errors import HinasError
from hinas.measures.metrics import SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_WINDOW, gaussian_window_1d

PIXEL_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}
SSIM_MIN = 1e-4  # SSIM is clamped here before log10 so the loss stays finite


@functools.lru_cache(maxsize=16)
def _window(channels: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Gaussian SSIM window as a depthwise conv weight of shape (C, 1, 11, 11)."""
    g = torch.as_tensor(gaussian_window_1d(SSIM_WINDOW, SSIM_SIGMA), dtype=dtype, device=device)
    return torch.outer(g, g).expand(channels, 1, SSIM_WINDOW, SSIM_WINDOW).contiguous()


def ssim_torch(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Differentiable mean SSIM of two (N, C, H, W) batches with values in [0, 1].

    Same definition as :func:`hinas.measures.metrics.ssim` for data range 1: 11x11 Gaussian window
    (σ 1.5), C1 = 0.01², C2 = 0.03², 'valid' region, mean over batch, channels and positions.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(
            f"ssim_torch: expected equal (N, C, H, W) shapes, got {x.shape}, {y.shape}"
        )
    c = x.shape[1]
    w = _window(c, x.dtype, x.device)
    mu1 = F.conv2d(x, w, groups=c)
    mu2 = F.conv2d(y, w, groups=c)
    var1 = F.conv2d(x * x, w, groups=c) - mu1 * mu1
    var2 = F.conv2d(y * y, w, groups=c) - mu2 * mu2
    cov = F.conv2d(x * y, w, groups=c) - mu1 * mu2
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * cov + c2)) / (
        (mu1 * mu1 + mu2 * mu2 + c1) * (var1 + var2 + c2)
    )
    return ssim_map.mean()


class RestorationLoss(nn.Module):
    """``pixel(pred, target) + ssim_weight · log10(1 / SSIM(pred, target))`` (paper §3.3).

    ``ssim_weight = 0`` leaves the pixel loss alone. SSIM is clamped to ``SSIM_MIN`` first.
    """

    def __init__(self, pixel: str, ssim_weight: float):
        super().__init__()
        self.pixel = pixel
        self.ssim_weight = float(ssim_weight)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar loss of a predicted batch against its target, both (N, C, H, W) in [0, 1]."""
        loss = PIXEL_LOSSES[self.pixel](pred, target)
        if self.ssim_weight:
            s = ssim_torch(pred, target).clamp(min=SSIM_MIN)
            loss = loss - self.ssim_weight * torch.log10(s)
        return loss

    def extra_repr(self) -> str:
        return f"pixel={self.pixel}, ssim_weight={self.ssim_weight}"


def list_losses() -> list[str]:
    """Loss names :func:`build_loss` accepts: every pixel loss, alone and with ``+ssim``."""
    return sorted([*PIXEL_LOSSES, *(f"{p}+ssim" for p in PIXEL_LOSSES)])


def build_loss(name: str, ssim_weight: float = 0.6) -> RestorationLoss:
    """Loss called ``name`` (e.g. ``mse+ssim``, the paper's); ``ssim_weight`` is λ of ``+ssim``."""
    pixel, plus, extra = name.partition("+")
    if pixel not in PIXEL_LOSSES or (plus and extra != "ssim"):
        raise HinasError(f"unknown loss '{name}' (known: {', '.join(list_losses())})")
    return RestorationLoss(pixel, ssim_weight if plus else 0.0)
