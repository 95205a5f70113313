"""Image files (docs/data.md, docs/limits.md): which files are images, the pixel limit, opening,
listing and collecting folders, decoding and writing, and the gray/RGB conversions.

A file is gray when its Pillow mode is (:data:`GRAY_MODES`), else RGB. Conversions are explicit:
to gray with the ITU-R 601-2 luma (:data:`LUMA_601`, Pillow's own weights), to RGB by repeating
the gray channel; alpha is dropped and palettes are expanded.

Two decoded forms: :func:`load_image` gives uint8 HxWxC with the channels asked for (training,
evaluation); :func:`read_input` gives the file's own form, uint8 or uint16 (restoration, which
keeps a 16-bit file's precision). 16-bit files are 16-bit gray PNG/TIFF (read by Pillow) and
16-bit RGB(A) PNG (read with pypng, since Pillow reduces them to their high bytes); reduced to
8 bits, both become ``round(v / 257)``. :func:`save_image` writes any of these atomically. pypng
is imported only where a 16-bit RGB(A) PNG is read or written, so everything else runs without
it (a machine with no package index can run hinas from its source tree).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from hinas.errors import HinasError
from hinas.io import atomic_path

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})

GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
"""Pillow modes of gray images."""
WIDE_MODES = frozenset({"I", "I;16", "I;16B", "I;16L"})
"""Pillow modes of 16-bit gray images, decoded at full precision."""
PNG16_MODES = frozenset({"RGB", "RGBA", "LA"})
"""Pillow modes in which a 16-bit PNG is reduced to 8 bits by Pillow, so read with pypng."""
LUMA_601 = np.array([0.299, 0.587, 0.114])
"""ITU-R 601-2 luma weights: Pillow's RGB → gray conversion, used for every explicit conversion."""
PNG_BIT_DEPTH_OFFSET = 24
"""Byte of a PNG file holding its bit depth (8-byte signature, IHDR length and type, width,
height)."""
_READ_ERRORS = (OSError, ValueError)

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


def mode_channels(mode: str, path: str | os.PathLike) -> int:
    """1 for a gray Pillow `mode`, else 3; HinasError naming `path` for floating-point images
    (mode F), which hinas does not read."""
    if mode == "F":
        raise HinasError(f"{path}: floating-point images (mode F) are not supported")
    return 1 if mode in GRAY_MODES else 3


def file_channels(path: str | os.PathLike, tiled: bool = False) -> int:
    """1 if the image file is gray (by its Pillow mode), else 3, from its header (see
    :func:`open_image`); HinasError naming a file that is not an image hinas reads."""
    with open_image(path, tiled) as im:
        return mode_channels(im.mode, path)


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


def to_gray(arr: np.ndarray) -> np.ndarray:
    """HxWx3 `arr` as its HxWx1 ITU-R 601-2 luma (float)."""
    return (arr @ LUMA_601)[..., None]


def to_rgb(arr: np.ndarray) -> np.ndarray:
    """HxWx1 `arr` as HxWx3, the gray channel repeated."""
    return np.repeat(arr, 3, axis=2)


def _read_png16(im: Image.Image, path: str | os.PathLike) -> np.ndarray | None:
    """A 16-bit PNG that Pillow would reduce to 8 bits, as uint16 HxWxC with C from its Pillow
    mode (:func:`mode_channels`), alpha dropped; None for any other image. Only the header is
    read to tell."""
    if im.format != "PNG" or im.mode not in PNG16_MODES:
        return None
    with open(path, "rb") as f:
        if f.read(PNG_BIT_DEPTH_OFFSET + 1)[PNG_BIT_DEPTH_OFFSET:] != b"\x10":
            return None
        import png

        f.seek(0)
        try:
            width, height, rows, info = png.Reader(file=f).read()
            arr = np.empty((height, width * info["planes"]), np.uint16)
            for i, row in enumerate(rows):
                arr[i] = np.frombuffer(row, np.uint16)
        except png.Error as err:
            raise ValueError(str(err)) from None
    arr = arr.reshape(height, width, info["planes"])[..., :info["planes"] - info["alpha"]]
    return to_rgb(arr) if arr.shape[2] < mode_channels(im.mode, path) else arr


def _read_wide(im: Image.Image, path: str | os.PathLike) -> np.ndarray | None:
    """A 16-bit image's pixels, HxWxC (C = 1 or 3) uint16 (int32 for Pillow mode I); None for
    an 8-bit one."""
    if im.mode in WIDE_MODES:
        return np.asarray(im)[..., None]
    return _read_png16(im, path)


def load_image(path: str | os.PathLike, channels: int) -> np.ndarray:
    """Decode ``path`` to a uint8 HxWxC array with ``channels`` = 1 (gray) or 3 (RGB).

    Conversion is explicit: to gray with the ITU-R 601-2 luma (Pillow's for 8-bit files,
    ``L = 0.299 R + 0.587 G + 0.114 B``), to RGB by repeating a gray channel; alpha is dropped,
    palettes are expanded. 16-bit images (gray, RGB) are scaled to 8 bits (``round(v / 257)``),
    after any conversion. An unreadable file, or one over the pixel limit (:func:`max_pixels`),
    raises :class:`HinasError` naming it.
    """
    if channels not in (1, 3):
        raise HinasError(f"{path}: channels must be 1 (gray) or 3 (RGB), got {channels}")
    try:
        with open_image(path) as im:
            mode_channels(im.mode, path)
            wide = _read_wide(im, path)
            if wide is None:
                arr = np.asarray(im.convert("L" if channels == 1 else "RGB"))
            else:
                x = wide.astype(np.float64)
                if x.shape[2] != channels:
                    x = to_gray(x) if channels == 1 else to_rgb(x)
                arr = np.clip(np.floor(x / 257.0 + 0.5), 0, 255).astype(np.uint8)
    except _READ_ERRORS as exc:
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
            check_size(img, min_size, p)
        images[Path(p)] = img
    if not images:
        raise HinasError(f"{_common_folder(paths)}: none of the {len(paths)} images could be read")
    return images


def check_size(img: np.ndarray, crop: int, name: str | os.PathLike) -> None:
    """Raise :class:`HinasError` if ``img`` is smaller than ``crop`` x ``crop``."""
    h, w = img.shape[:2]
    if h < crop or w < crop:
        raise HinasError(f"{name}: image is {w}x{h}, smaller than the {crop}x{crop} crop")


def _common_folder(paths: Sequence[str | os.PathLike]) -> str:
    """The deepest folder containing all ``paths`` (for messages about a whole set)."""
    if not paths:
        return "(no files)"
    return os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])


def read_input(path: str | os.PathLike, tiled: bool = False) -> tuple[np.ndarray, int]:
    """An image as decoded for restoration, HxWxC (C = 1 or 3 by its Pillow mode) uint8, or
    uint16 for a 16-bit image, and its bit depth (8 or 16). Pixels stay in this compact form;
    restoration converts them a window at a time."""
    try:
        with open_image(path, tiled) as im:
            have = mode_channels(im.mode, path)
            wide = _read_wide(im, path)
            if wide is not None:
                arr, depth = wide, 16
            elif have == 1:
                arr, depth = np.asarray(im if im.mode == "L" else im.convert("L")), 8
            else:
                arr, depth = np.asarray(im if im.mode == "RGB" else im.convert("RGB")), 8
    except _READ_ERRORS as err:
        raise HinasError(f"{path}: cannot read image ({err})") from None
    return (arr[..., None] if arr.ndim == 2 else arr), depth


def quantise(x: np.ndarray, bit_depth: int) -> np.ndarray:
    """Values on [0, 1] (clipped) rounded half up to uint8 (`bit_depth` 8) or uint16 (16)."""
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return np.floor(np.clip(x, 0.0, 1.0) * (2**bit_depth - 1) + 0.5).astype(dtype)


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
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    if np.issubdtype(arr.dtype, np.floating):
        arr = quantise(arr, bit_depth)
    elif arr.dtype != dtype:
        raise HinasError(f"{path}: a {arr.dtype} array cannot be saved at {bit_depth} bits")
    if bit_depth == 16 and (
        ext not in (".png", ".tif", ".tiff") or (arr.ndim == 3 and ext != ".png")
    ):
        raise HinasError(f"{path}: 16-bit images need .png (gray or RGB) or .tif (gray)")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        if bit_depth == 16 and arr.ndim == 3:  # Pillow cannot write 16-bit RGB
            import png

            h, w = arr.shape[:2]
            rows = arr.astype(">u2").reshape(h, w * 3)
            png.Writer(w, h, greyscale=False, bitdepth=16).write_packed(
                f, (row.tobytes() for row in rows))
        else:
            Image.fromarray(arr).save(f, format=Image.registered_extensions()[ext])
