"""Training data sets (docs/decisions.md §2–3; docs/data.md).

Any folder of png/jpg/bmp/tif images is a data set (its files: :mod:`hinas.data.images`):
:func:`split_images` makes the paper's Train W / Train A / Validation V split, and
:class:`PatchDataset` serves random (augmented) crops with their degraded inputs, reproducibly.
Degraded inputs are made by the task's degradation, or read from the user's files:
:func:`match_inputs` pairs each ground truth with the file of the same name stem in the input
folders, :func:`load_inputs` reads and checks them (docs/data.md, "Paired images").
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from hinas.data.degradations import with_noise_map
from hinas.data.images import check_size, file_channels, list_images, load_image
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


def _by_stem(paths: Sequence[Path], what: str) -> dict[str, Path]:
    """`paths` by file-name stem; HinasError naming both files when two share a stem."""
    stems: dict[str, Path] = {}
    for path in paths:
        if path.stem in stems:
            raise HinasError(f"{path}: same name stem as {stems[path.stem]}; {what} are matched "
                             f"by name, so each stem must be unique")
        stems[path.stem] = path
    return stems


def match_inputs(gt_paths: Sequence[Path],
                 lq_folders: str | os.PathLike | Sequence[str | os.PathLike]
                 ) -> dict[Path, Path]:
    """The degraded input of every ground truth in `gt_paths`: the image of the same file-name
    stem in `lq_folders` (listed recursively, like the ground truths), e.g. `GT/0001.png` with
    `LQ/x4/0001.jpg`. A stem twice in either list, a ground truth without an input, or an input
    without a ground truth is a HinasError naming the file."""
    folders = [lq_folders] if isinstance(lq_folders, (str, os.PathLike)) else lq_folders
    gts = _by_stem([Path(p) for p in gt_paths], "ground truths and degraded inputs")
    lqs = _by_stem([p for folder in folders for p in list_images(folder)],
                   "ground truths and degraded inputs")
    for stem, path in gts.items():
        if stem not in lqs:
            raise HinasError(f"{path}: no degraded input of the same name in "
                             f"{' '.join(map(str, folders))}")
    for stem, path in lqs.items():
        if stem not in gts:
            raise HinasError(f"{path}: no ground truth of the same name (a degraded input "
                             f"needs its ground truth)")
    return {path: lqs[stem] for stem, path in gts.items()}


def load_inputs(images: Mapping[Path, np.ndarray], partners: Mapping[Path, Path], scale: int
                ) -> dict[Path, np.ndarray]:
    """The degraded inputs of the loaded ground truths `images` (uint8 HxWxC by path), read from
    their `partners` (:func:`match_inputs`) with the ground truth's channel count, by the same
    path. A file whose own channel count differs from its ground truth's, or whose size × `scale`
    is not the ground truth's, is a HinasError naming both."""
    inputs = {}
    for path, gt in images.items():
        lq_path = partners[path]
        if file_channels(lq_path) != file_channels(path):
            raise HinasError(f"{lq_path}: has {file_channels(lq_path)} channel(s), its ground "
                             f"truth {path} has {file_channels(path)}")
        lq = load_image(lq_path, gt.shape[2])
        (h, w), (gh, gw) = lq.shape[:2], gt.shape[:2]
        if (h * scale, w * scale) != (gh, gw):
            times = f" x {scale} = {w * scale}x{h * scale}" if scale > 1 else ""
            raise HinasError(f"{lq_path}: is {w}x{h}{times}, but its ground truth {path} is "
                             f"{gw}x{gh}")
        inputs[path] = lq
    return inputs


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

    ``inputs`` (the same kind of container as ``images``, one degraded image per ground truth,
    ``degradation.scale`` times smaller) replaces the degradation: the input crop is cut at the
    same place (for SR at the position / scale; the ground-truth crop then starts on a multiple of
    the scale) and rotated and flipped with it.

    With ``noise_map`` (a noise degradation, which says the level it drew) ``lq`` carries the
    noise-level map of that level as C more channels
    (:func:`hinas.data.degradations.with_noise_map`).
    """

    def __init__(
        self,
        images: Sequence[np.ndarray] | Mapping[str | os.PathLike, np.ndarray],
        crop: int,
        degradation,
        augment: bool = True,
        length: int = 1000,
        seed: int = 0,
        inputs: Sequence[np.ndarray] | Mapping[str | os.PathLike, np.ndarray] | None = None,
        noise_map: bool = False,
    ):
        if isinstance(images, Mapping):
            names = [str(k) for k in images]
            arrays = list(images.values())
        else:
            arrays = list(images)
            names = [f"image #{k}" for k in range(len(arrays))]
        self.inputs = None if inputs is None else [
            _hwc(a) for a in (inputs.values() if isinstance(inputs, Mapping) else inputs)]
        if not arrays:
            raise HinasError("PatchDataset: no training images")
        scale = int(degradation.scale)
        self.crop = crop - crop % scale
        if self.crop < scale:
            raise HinasError(f"crop {crop} is smaller than the scale {scale}")
        self.images = []
        for name, arr in zip(names, arrays, strict=True):
            arr = _hwc(arr)
            if arr.dtype != np.uint8 or arr.ndim != 3:
                raise HinasError(
                    f"{name}: expected a uint8 HxWxC image, got {arr.dtype} {arr.shape}"
                )
            if self.images and arr.shape[2] != self.images[0].shape[2]:
                raise HinasError(f"{name}: has {arr.shape[2]} channels, unlike the first image")
            check_size(arr, self.crop, name)
            self.images.append(np.ascontiguousarray(arr))
        if self.inputs is not None and [a.shape[:2] for a in self.inputs] != [
                (a.shape[0] // scale, a.shape[1] // scale) for a in self.images]:
            raise HinasError(f"PatchDataset: the inputs are not the images' sizes / {scale}")
        if noise_map and (self.inputs is not None or not hasattr(degradation, "with_variance")):
            raise HinasError(f"a noise-level map needs simulated noise, not {degradation!r}")
        self.scale, self.noise_map = scale, noise_map
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
        k = rng.integers(len(self.images))
        img, c = self.images[k], self.crop
        if self.inputs is None:
            top = rng.integers(img.shape[0] - c + 1)
            left = rng.integers(img.shape[1] - c + 1)
            patches = [img[top : top + c, left : left + c]]
        else:  # the same place in both: a ground-truth corner on the input's grid
            s, lq = self.scale, self.inputs[k]
            top = rng.integers((img.shape[0] - c) // s + 1)
            left = rng.integers((img.shape[1] - c) // s + 1)
            patches = [img[top * s : top * s + c, left * s : left * s + c],
                       lq[top : top + c // s, left : left + c // s]]
        if self.augment:
            turns, flip_w, flip_h = int(rng.integers(4)), rng.integers(2), rng.integers(2)
            patches = [_augment(p, turns, flip_w, flip_h) for p in patches]
        gt, *given = (p.astype(np.float32) / np.float32(255.0) for p in patches)
        if given:
            lq = given[0]
        elif self.noise_map:
            lq = with_noise_map(*self.degradation.with_variance(gt, rng))
        else:
            lq = self.degradation(gt, rng)
        return _to_chw(lq), _to_chw(gt)


def _hwc(arr: np.ndarray) -> np.ndarray:
    """A gray HxW array as HxWx1; others unchanged."""
    return arr[..., None] if arr.ndim == 2 else arr


def _augment(patch: np.ndarray, turns: int, flip_w: bool, flip_h: bool) -> np.ndarray:
    """`patch` rotated by `turns`·90° and flipped left-right (`flip_w`) and upside down
    (`flip_h`)."""
    patch = np.rot90(patch, k=turns, axes=(0, 1))
    if flip_w:
        patch = patch[:, ::-1]
    return patch[::-1] if flip_h else patch


def _to_chw(x: np.ndarray) -> torch.Tensor:
    """HxWxC float32 array -> contiguous CxHxW tensor."""
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32))
