"""Image files and training patches (docs/decisions.md §2–3; docs/data.md).

Any folder of png/jpg/bmp/tif images is a data set: :func:`list_images` finds them,
:func:`load_image` decodes one to uint8 HxWxC with an explicit gray/RGB conversion,
:func:`split_images` makes the paper's Train W / Train A / Validation V split, and
:class:`PatchDataset` serves random (augmented) crops with their degraded inputs, reproducibly.
"""

from __future__ import annotations

import math
import os
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hinas.errors import HinasError
from hinas.io import atomic_path

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})

MAX_PIXELS = 2**22
"""Default for the largest image (in pixels: 4.2 MP = 2048 x 2048) hinas decodes and processes
whole (training, evaluation, whole-image restoration, whose float working memory grows with the
image: about 1 KB per pixel for a CPU-preset denoiser); `HINAS_MAX_PIXELS` sets another. Tiled
restoration (`restore --tile`), whose working memory does not grow with the image, takes
`TILED_FACTOR` times more (268 MP by default)."""
TILED_FACTOR = 64


def max_pixels(tiled: bool = False) -> int:
    """The pixel limit in force: `HINAS_MAX_PIXELS` or `MAX_PIXELS` (times `TILED_FACTOR` for
    tiled restoration)."""
    raw = os.environ.get("HINAS_MAX_PIXELS", "")
    try:
        limit = int(raw) if raw else MAX_PIXELS
    except ValueError:
        raise HinasError(f"HINAS_MAX_PIXELS must be a whole number of pixels, got {raw!r}"
                         ) from None
    if limit < 1:
        raise HinasError(f"HINAS_MAX_PIXELS must be ≥ 1, got {limit}")
    return limit * TILED_FACTOR if tiled else limit


@contextmanager
def open_image(path: str | os.PathLike, tiled: bool = False) -> Iterator[Image.Image]:
    """Open image `path` lazily (header only), refusing with HinasError an unreadable file or
    one over the pixel limit (`max_pixels(tiled)`, which replaces Pillow's own bomb check)
    before any pixel is decoded."""
    limit = max_pixels(tiled)
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        im = Image.open(path)
    except (OSError, ValueError) as err:
        raise HinasError(f"{path}: cannot read image ({err})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    with im:
        w, h = im.size
        if w * h > limit:
            hint = "" if tiled else "restore it with --tile, or "
            raise HinasError(f"{path}: {w}x{h} image ({w * h / 1e6:.1f} MP) is over the limit of "
                             f"{limit / 1e6:.1f} MP; {hint}raise HINAS_MAX_PIXELS")
        yield im


def list_images(folder: str | os.PathLike) -> list[Path]:
    """All images (by extension, case-insensitive) under ``folder``, recursively, sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HinasError(f"{folder}: no such folder")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    if not paths:
        raise HinasError(f"{folder}: no images (png/jpg/bmp/tif) found")
    return paths


def collect_images(folders: str | os.PathLike | Sequence[str | os.PathLike],
                   max_images: int = 0, seed: int = 0) -> list[Path]:
    """The images of one or several folders (see :func:`list_images`); with ``max_images`` > 0,
    a seeded random subset of that many, in path order."""
    if isinstance(folders, (str, os.PathLike)):
        folders = [folders]
    paths = [p for folder in folders for p in list_images(folder)]
    if max_images:
        keep = np.random.default_rng(seed).permutation(len(paths))[:max_images]
        paths = [paths[i] for i in sorted(keep.tolist())]
    return paths


def relative_name(path: str | os.PathLike,
                  folders: str | os.PathLike | Sequence[str | os.PathLike]) -> str:
    """How run records name image `path`: relative to the data folder holding it, after that
    folder's name when there are several (e.g. `T91/t1.png`), so that no record holds a
    machine's absolute path."""
    folders = [folders] if isinstance(folders, (str, os.PathLike)) else list(folders)
    for folder in folders:
        try:
            rel = Path(path).relative_to(folder)
        except ValueError:
            continue
        return (Path(Path(folder).resolve().name) / rel if len(folders) > 1 else rel).as_posix()
    return Path(path).name


def load_image(path: str | os.PathLike, channels: int) -> np.ndarray:
    """Decode ``path`` to a uint8 HxWxC array with ``channels`` = 1 (gray) or 3 (RGB).

    Conversion is explicit: to gray with Pillow's ITU-R 601-2 luma (``L = 0.299 R + 0.587 G +
    0.114 B``), to RGB by repeating a gray channel; alpha is dropped, palettes are expanded.
    16-bit gray images are scaled to 8 bits (``round(v / 257)``); Pillow itself reduces 16-bit
    RGB to its high bytes. An unreadable file, or one over the pixel limit (:func:`max_pixels`),
    raises :class:`HinasError` naming it.
    """
    if channels not in (1, 3):
        raise HinasError(f"{path}: channels must be 1 (gray) or 3 (RGB), got {channels}")
    try:
        with open_image(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                wide = np.asarray(im, dtype=np.float64)
                gray = np.clip(np.floor(wide / 257.0 + 0.5), 0, 255).astype(np.uint8)
                arr = gray[..., None] if channels == 1 else np.repeat(gray[..., None], 3, axis=2)
            elif im.mode == "F":
                raise HinasError(f"{path}: floating-point images (mode F) are not supported")
            else:
                arr = np.asarray(im.convert("L" if channels == 1 else "RGB"))
    except (OSError, ValueError) as exc:
        raise HinasError(f"{path}: cannot read image ({exc})") from None
    if arr.ndim == 2:
        arr = arr[..., None]
    return np.ascontiguousarray(arr)


def load_images(
    paths: Sequence[str | os.PathLike],
    channels: int,
    min_size: int | None = None,
    warn: Callable[[str], None] | None = None,
) -> dict[Path, np.ndarray]:
    """Load ``paths`` (see :func:`load_image`) into a dict path -> uint8 HxWxC, in order.

    Unreadable files are skipped, each reported through ``warn`` (default ``warnings.warn``); if
    none remain, :class:`HinasError`. An image smaller than ``min_size`` (the crop) on either side
    is an error naming it.
    """
    report = warn if warn is not None else (lambda msg: warnings.warn(msg, stacklevel=3))
    images: dict[Path, np.ndarray] = {}
    for p in paths:
        try:
            img = load_image(p, channels)
        except HinasError as exc:
            report(f"skipping {exc}")
            continue
        if min_size is not None:
            _check_size(img, min_size, p)
        images[Path(p)] = img
    if not images:
        raise HinasError(f"{_common_folder(paths)}: none of the {len(paths)} images could be read")
    return images


def _check_size(img: np.ndarray, crop: int, name: str | os.PathLike) -> None:
    """Raise :class:`HinasError` if ``img`` is smaller than ``crop`` x ``crop``."""
    h, w = img.shape[:2]
    if h < crop or w < crop:
        raise HinasError(f"{name}: image is {w}x{h}, smaller than the {crop}x{crop} crop")


def _common_folder(paths: Sequence[str | os.PathLike]) -> str:
    """The deepest folder containing all ``paths`` (for messages about a whole set)."""
    if not paths:
        return "(no files)"
    return os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])


def _write_png16_rgb(f, arr: np.ndarray) -> None:
    """Write a 16-bit RGB PNG (Pillow cannot): IHDR, one zlib IDAT of unfiltered rows, IEND."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    h, w = arr.shape[:2]
    rows = arr.astype(">u2").reshape(h, w * 6 // 2).view(np.uint8).reshape(h, w * 6)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()
    f.write(b"\x89PNG\r\n\x1a\n")
    f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)))
    f.write(chunk(b"IDAT", zlib.compress(raw, 6)))
    f.write(chunk(b"IEND", b""))


def save_image(path: str | os.PathLike, array: np.ndarray, bit_depth: int = 8) -> None:
    """Write ``array`` (HxW, HxWx1 or HxWx3) to ``path`` atomically, format from the extension.

    ``array`` is uint8 / uint16 (written as is) or float on [0, 1] (clipped, rounded to
    ``bit_depth``). ``bit_depth=16`` needs .png or .tif (.png for RGB). The file is written to a
    temporary name in the same folder and renamed, so a reader never sees half an image.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTS:
        raise HinasError(f"{path}: unknown image extension (use png/jpg/bmp/tif)")
    if bit_depth not in (8, 16):
        raise HinasError(f"{path}: bit depth must be 8 or 16, got {bit_depth}")
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise HinasError(f"{path}: cannot save an array of shape {arr.shape} as an image")
    peak = 2**bit_depth - 1
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.floor(np.clip(arr, 0.0, 1.0) * peak + 0.5).astype(dtype)
    elif arr.dtype != dtype:
        raise HinasError(f"{path}: a {arr.dtype} array cannot be saved at {bit_depth} bits")
    if bit_depth == 16 and (
        ext not in (".png", ".tif", ".tiff") or (arr.ndim == 3 and ext != ".png")
    ):
        raise HinasError(f"{path}: 16-bit images need .png (gray or RGB) or .tif (gray)")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        if bit_depth == 16 and arr.ndim == 3:
            _write_png16_rgb(f, arr)
        else:
            Image.fromarray(arr).save(f, format=Image.registered_extensions()[ext])


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
    by :func:`load_images`, whose names then appear in errors). Sample ``i`` of epoch ``e`` picks
    an image uniformly, a ``crop`` x ``crop`` window uniformly, and with ``augment`` a rotation by
    k·90° and horizontal / vertical flips, all from ``default_rng([seed, e, i])``; the
    same generator then drives the degradation (the noise). Results do not depend on DataLoader
    workers, and resuming at an epoch reproduces it exactly. Call :meth:`set_epoch` every epoch
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
            _check_size(arr, self.crop, name)
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
