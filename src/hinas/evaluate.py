"""Scoring restoration models under the literature's conventions (SPEC §4), and whole-image or tiled
inference (SPEC §3).

Test inputs are made once per image: the noisy input from a generator seeded per image (so every
method scores the same noisy input), the SR low-resolution image by MATLAB bicubic of the modcropped
HR. Outputs are clipped and rounded to uint8 before scoring.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hinas.config import TaskConfig
from hinas.degradations import noisy_for_image, sr_pair_for_image
from hinas.metrics import Convention


@dataclass
class EvalPair:
    """One test image: its name, degraded input (0–255 float, HxWxC) and clean target (uint8)."""

    name: str
    lq: np.ndarray
    gt: np.ndarray


def center_crop(img: np.ndarray, size: int, multiple: int = 1) -> np.ndarray:
    """Central `size`×`size` window (clipped to the image, rounded down to `multiple`)."""
    h, w = img.shape[:2]
    ch, cw = min(size, h), min(size, w)
    ch, cw = ch - ch % multiple, cw - cw % multiple
    top, left = (h - ch) // 2, (w - cw) // 2
    return img[top:top + ch, left:left + cw]


def make_pairs(images: dict[Path, np.ndarray], task: TaskConfig, seed: int,
               crop: int = 0) -> list[EvalPair]:
    """Test pairs for `images` (uint8 HxWxC by path); `crop` > 0 scores central crops only."""
    pairs = []
    for path, img in images.items():
        if crop:
            img = center_crop(img, crop, task.out_scale)
        name = Path(path).name
        if task.name == "denoise":
            pairs.append(EvalPair(name, noisy_for_image(img, task.sigma[0], seed, name), img))
        else:
            hr, lr = sr_pair_for_image(img, task.scale)
            pairs.append(EvalPair(name, lr.astype(np.float64), hr))
    return pairs


@torch.no_grad()
def restore_array(model: nn.Module, lq: np.ndarray, scale: int, device: str | torch.device,
                  tile: int = 0, overlap: int = 32) -> np.ndarray:
    """Run `model` on one HxWxC image on the 0–255 scale; returns the float 0–255 output.

    With `tile` > 0 the input is cut into tile×tile windows overlapping by `overlap` pixels, and
    the outputs are blended with a linear ramp across each overlap (bounded memory).
    """
    x = torch.from_numpy(np.ascontiguousarray(lq.transpose(2, 0, 1), dtype=np.float32) / 255.0)
    x = x.unsqueeze(0).to(device)
    if tile <= 0 or (lq.shape[0] <= tile and lq.shape[1] <= tile):
        y = model(x)
    else:
        y = _tiled(model, x, scale, tile, overlap)
    return y[0].float().cpu().numpy().transpose(1, 2, 0).astype(np.float64) * 255.0


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    stride = max(1, tile - overlap)
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def _ramp(length: int, start: int, size: int, overlap: int, total: int) -> torch.Tensor:
    """1-D blending weights of a tile: ramps up over the overlap, except at image borders."""
    w = torch.ones(size)
    ramp = torch.linspace(0, 1, overlap + 2)[1:-1] if overlap > 0 else torch.ones(0)
    n = min(len(ramp), size)
    if start > 0 and n:
        w[:n] = ramp[:n]
    if start + size < total and n:
        w[size - n:] = torch.minimum(w[size - n:], ramp[:n].flip(0))
    return w


def _tiled(model: nn.Module, x: torch.Tensor, scale: int, tile: int,
           overlap: int) -> torch.Tensor:
    _, _, h, w = x.shape
    out = None
    weight = torch.zeros(1, 1, h * scale, w * scale, device=x.device)
    for top in _starts(h, tile, overlap):
        for left in _starts(w, tile, overlap):
            th, tw = min(tile, h), min(tile, w)
            y = model(x[:, :, top:top + th, left:left + tw])
            if out is None:
                out = torch.zeros(1, y.shape[1], h * scale, w * scale, device=x.device)
            wy = _ramp(th * scale, top * scale, th * scale, overlap * scale, h * scale)
            wx = _ramp(tw * scale, left * scale, tw * scale, overlap * scale, w * scale)
            mask = (wy[:, None] * wx[None, :]).to(x.device)
            rows = slice(top * scale, (top + th) * scale)
            cols = slice(left * scale, (left + tw) * scale)
            out[:, :, rows, cols] += y * mask
            weight[:, :, rows, cols] += mask
    return out / weight


def score_model(model: nn.Module, pairs: list[EvalPair], task: TaskConfig,
                device: str | torch.device, tile: int = 0,
                overlap: int = 32) -> tuple[list[dict], dict[str, float]]:
    """Per-image rows (name, psnr, ssim, seconds) and their mean, under the task's convention."""
    convention = Convention.for_task(task.name, task.out_scale)
    was_training = model.training
    model.eval()
    rows = []
    try:
        for pair in pairs:
            start = time.perf_counter()
            out = restore_array(model, pair.lq, task.out_scale, device, tile, overlap)
            seconds = time.perf_counter() - start
            rows.append({"image": pair.name, **convention.score(out, pair.gt),
                         "seconds": seconds})
    finally:
        model.train(was_training)
    return rows, mean_scores(rows)


def mean_scores(rows: list[dict]) -> dict[str, float]:
    """Mean of every numeric column of per-image rows."""
    keys = [k for k, v in rows[0].items() if isinstance(v, float)] if rows else []
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}
