"""Training data sets (docs/decisions.md §2–3; docs/data.md).

Any folder of png/jpg/bmp/tif images is a data set (its files: :mod:`hinas.data.images`):
:func:`split_images` makes the paper's Train W / Train A / Validation V split, and
:class:`PatchDataset` serves random (augmented) crops with their degraded inputs, reproducibly.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from hinas.data.images import check_size
from hinas.errors import HinasError


def split_images(paths: Sequence, seed: int, val_fraction: float = 0.02) -> tuple[list, list, list]:
    """Split ``paths`` into (Train W, Train A, Validation V), paper §4.1 (docs/decisions.md §2).

    Deterministic for a given ``seed`` and set of paths (they are sorted before a seeded
    shuffle). ``V = max(1, round(val_fraction · n))`` (half up); the rest is halved, W taking the
    odd one. Each part is returned sorted; the parts are disjoint. Needs at least 3 images.
    """
    n = len(paths)
    if n < 3:
        raise HinasError(f"need at least 3 training images for the W/A/V split, got {n}")
    if not 0 < val_fraction < 1:
        raise HinasError(f"val_fraction must be in (0, 1), got {val_fraction}")
    order = sorted(paths, key=str)
    perm = np.random.default_rng(seed).permutation(n)
    shuffled = [order[k] for k in perm]
    n_val = min(max(1, math.floor(val_fraction * n + 0.5)), n - 2)
    n_w = math.ceil((n - n_val) / 2)
    val = shuffled[:n_val]
    train_w = shuffled[n_val : n_val + n_w]
    train_a = shuffled[n_val + n_w :]
    return sorted(train_w, key=str), sorted(train_a, key=str), sorted(val, key=str)


class PatchDataset(torch.utils.data.Dataset):
    """Random HR crops and their degraded inputs, reproducible from (seed, epoch, index).

    ``images``: preloaded uint8 HxWxC arrays (a sequence, or a mapping name -> array as returned
    by :func:`hinas.data.images.load_images`, whose names then appear in errors). Sample ``i`` of
    epoch ``e`` picks an image uniformly, a ``crop`` x ``crop`` window uniformly, and with
    ``augment`` a rotation by k·90° and horizontal / vertical flips, all from
    ``default_rng([seed, e, i])``; the same generator then drives the degradation (the noise).
    Results do not depend on DataLoader workers, and resuming at an epoch reproduces it exactly.
    Call :meth:`set_epoch` every epoch
    (with ``persistent_workers=False``, so workers see the new epoch).

    For SR the crop is rounded down to a multiple of the scale. Returns ``(lq, gt)`` float32 CHW
    tensors in [0, 1] (``lq`` not clipped: noise can leave [0, 1]).
    """

    def __init__(
        self,
        images: Sequence[np.ndarray] | Mapping[str | os.PathLike, np.ndarray],
        crop: int,
        degradation,
        augment: bool = True,
        length: int = 1000,
        seed: int = 0,
    ):
        if isinstance(images, Mapping):
            names = [str(k) for k in images]
            arrays = list(images.values())
        else:
            arrays = list(images)
            names = [f"image #{k}" for k in range(len(arrays))]
        if not arrays:
            raise HinasError("PatchDataset: no training images")
        scale = int(degradation.scale)
        self.crop = crop - crop % scale
        if self.crop < scale:
            raise HinasError(f"crop {crop} is smaller than the scale {scale}")
        self.images = []
        for name, arr in zip(names, arrays, strict=True):
            arr = arr[..., None] if arr.ndim == 2 else arr
            if arr.dtype != np.uint8 or arr.ndim != 3:
                raise HinasError(
                    f"{name}: expected a uint8 HxWxC image, got {arr.dtype} {arr.shape}"
                )
            if self.images and arr.shape[2] != self.images[0].shape[2]:
                raise HinasError(f"{name}: has {arr.shape[2]} channels, unlike the first image")
            check_size(arr, self.crop, name)
            self.images.append(np.ascontiguousarray(arr))
        self.degradation = degradation
        self.augment = augment
        self.length = int(length)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose samples ``__getitem__`` returns."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``i`` of the current epoch: ``(lq, gt)`` float32 CHW tensors."""
        if not 0 <= i < self.length:
            raise IndexError(f"sample {i} out of range for {self.length} samples")
        rng = np.random.default_rng([self.seed, self.epoch, i])
        img = self.images[rng.integers(len(self.images))]
        c = self.crop
        top = rng.integers(img.shape[0] - c + 1)
        left = rng.integers(img.shape[1] - c + 1)
        patch = img[top : top + c, left : left + c]
        if self.augment:
            patch = np.rot90(patch, k=int(rng.integers(4)), axes=(0, 1))
            if rng.integers(2):
                patch = patch[:, ::-1]
            if rng.integers(2):
                patch = patch[::-1]
        gt = patch.astype(np.float32) / np.float32(255.0)
        lq = self.degradation(gt, rng)
        return _to_chw(lq), _to_chw(gt)


def _to_chw(x: np.ndarray) -> torch.Tensor:
    """HxWxC float32 array -> contiguous CxHxW tensor."""
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32))
