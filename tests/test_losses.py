"""Losses: differentiable SSIM agrees with the metric; the loss registry."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data

from hinas.errors import HinasError
from hinas.measures.losses import SSIM_MIN, build_loss, list_losses, ssim_torch
from hinas.measures.metrics import ssim


def _nchw(img: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    img = img[..., None] if img.ndim == 2 else img
    return torch.from_numpy(img.transpose(2, 0, 1).copy()).unsqueeze(0).to(dtype) / 255


@pytest.fixture(scope="module")
def pair():
    clean = data.astronaut()[100:228, 150:278].astype(np.float64)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25, clean.shape), 0, 255)
    return noisy, clean


def test_ssim_torch_agrees_with_metric(pair):
    noisy, clean = pair
    expected = ssim(noisy, clean)  # 0-255 scale, C1/C2 scaled: the same number
    got64 = ssim_torch(_nchw(noisy, torch.float64), _nchw(clean, torch.float64)).item()
    assert got64 == pytest.approx(expected, abs=1e-10)
    got32 = ssim_torch(_nchw(noisy), _nchw(clean)).item()
    assert got32 == pytest.approx(expected, abs=1e-4)
    gray_n, gray_c = noisy[..., 1], clean[..., 1]
    assert ssim_torch(_nchw(gray_n), _nchw(gray_c)).item() == pytest.approx(
        ssim(gray_n, gray_c), abs=1e-4
    )


def test_ssim_torch_batch_is_mean_over_images(pair):
    noisy, clean = pair
    x = torch.cat([_nchw(noisy), _nchw(clean)])
    y = torch.cat([_nchw(clean), _nchw(clean)])
    expected = (ssim(noisy, clean) + 1.0) / 2
    assert ssim_torch(x, y).item() == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("name", list_losses())
def test_every_loss_is_finite_and_differentiable(pair, name):
    noisy, clean = pair
    pred = _nchw(noisy).requires_grad_(True)
    loss = build_loss(name)(pred, _nchw(clean))
    assert loss.dim() == 0 and torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_loss_values(pair):
    noisy, clean = pair
    pred, target = _nchw(noisy), _nchw(clean)
    s = ssim_torch(pred, target)
    assert build_loss("mse")(pred, target) == pytest.approx(F.mse_loss(pred, target).item())
    assert build_loss("l1")(pred, target) == pytest.approx(F.l1_loss(pred, target).item())
    paper = F.mse_loss(pred, target) + 0.6 * torch.log10(1 / s)  # paper §3.3, λ = 0.6
    assert build_loss("mse+ssim")(pred, target).item() == pytest.approx(paper.item(), rel=1e-6)
    half = F.l1_loss(pred, target) + 0.3 * torch.log10(1 / s)
    assert build_loss("l1+ssim", ssim_weight=0.3)(pred, target).item() == pytest.approx(
        half.item(), rel=1e-6
    )
    assert build_loss("mse+ssim")(target, target).item() == pytest.approx(0.0, abs=1e-6)


def test_ssim_term_is_clamped_for_anticorrelated_images():
    target = _nchw(data.grass()[:64, :64])  # texture: its negative has SSIM < 0
    loss = build_loss("mse+ssim")(1 - target, target)
    assert ssim_torch(1 - target, target).item() < 0
    assert torch.isfinite(loss)
    expected = F.mse_loss(1 - target, target).item() - 0.6 * math.log10(SSIM_MIN)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_loss_registry_names_and_errors():
    assert list_losses() == ["l1", "l1+ssim", "mse", "mse+ssim"]
    with pytest.raises(HinasError, match=r"unknown loss 'ssim'.*l1, l1\+ssim, mse, mse\+ssim"):
        build_loss("ssim")
    with pytest.raises(HinasError, match="unknown loss 'mse\\+lpips'"):
        build_loss("mse+lpips")
    with pytest.raises(ValueError, match="equal"):
        ssim_torch(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 17))
