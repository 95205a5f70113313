"""PSNR and SSIM with the conventions of published restoration numbers (docs/metrics.md).

Plain functions on 0–255 arrays (HxW or HxWxC, any dtype, computed in float64) whose signatures
state the convention, as BasicSR's ``calculate_psnr`` / ``calculate_ssim``: ``crop_border`` pixels
are removed on every side, and ``test_y_channel`` scores the ITU-R BT.601 luma of an RGB image
(a gray image is scored on its own values). :class:`Convention` bundles the choices of one task
and writes them into evaluation results.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from hinas.tasks import TaskConfig

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
FILE_INPUT = "the degraded file of the same name stem (--lq), as read"
"""The input of a convention whose inputs are the user's files."""


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Clip ``x`` (0–255 scale) to [0, 255] and round half up to uint8 (MATLAB ``im2uint8``)."""
    return np.floor(np.clip(np.asarray(x, dtype=np.float64), 0.0, 255.0) + 0.5).astype(np.uint8)


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Luma Y of ITU-R BT.601 YCbCr (MATLAB ``rgb2ycbcr``) of an RGB image on the 0–255 scale.

    ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` with R, G, B in [0, 1] (RGB channel order);
    returns HxW float64 on the 0–255 scale, not rounded.
    """
    img = np.asarray(img, dtype=np.float64)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"rgb_to_y: expected an HxWx3 RGB image, got shape {img.shape}")
    return img @ np.array([65.481, 128.553, 24.966]) / 255.0 + 16.0


def _prepare(img: np.ndarray, ref: np.ndarray, crop_border: int, test_y_channel: bool):
    """Shared convention handling: shape check, float64, border crop, optional Y channel."""
    img = np.asarray(img, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if img.shape != ref.shape:
        raise ValueError(f"image shape {img.shape} differs from reference shape {ref.shape}")
    if img.ndim not in (2, 3):
        raise ValueError(f"expected an HxW or HxWxC image, got shape {img.shape}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
        ref = ref[crop_border:-crop_border, crop_border:-crop_border]
    if img.ndim == 2:
        img, ref = img[..., None], ref[..., None]
    if test_y_channel and img.shape[2] == 3:
        img, ref = rgb_to_y(img)[..., None], rgb_to_y(ref)[..., None]
    return img, ref


def psnr(
    img: np.ndarray, ref: np.ndarray, crop_border: int = 0, test_y_channel: bool = False
) -> float:
    """Peak signal-to-noise ratio in dB of ``img`` against ``ref`` (0–255 scale, peak 255).

    ``crop_border`` pixels are dropped on each side; with ``test_y_channel`` an RGB image is scored
    on its BT.601 Y channel (a gray image on its own values). Identical images give ``inf``.
    """
    img, ref = _prepare(img, ref, crop_border, test_y_channel)
    mse = float(np.mean((img - ref) ** 2))
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def gaussian_window_1d(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian of ``size`` taps (the separable factor of the SSIM window)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of the leading two axes of ``x`` with ``g`` ⊗ ``g``."""
    k = g.size
    rows = np.lib.stride_tricks.sliding_window_view(x, k, axis=0) @ g
    return np.lib.stride_tricks.sliding_window_view(rows, k, axis=1) @ g


def ssim(
    img: np.ndarray, ref: np.ndarray, crop_border: int = 0, test_y_channel: bool = False
) -> float:
    """Structural similarity (Wang et al. 2004) of ``img`` against ``ref`` on the 0–255 scale.

    11x11 Gaussian window (σ 1.5), C1 = (0.01·255)², C2 = (0.03·255)², SSIM map over the 'valid'
    region only (BasicSR ``calculate_ssim`` / MATLAB ``ssim_index``), mean over the map and then
    over channels. ``crop_border`` and ``test_y_channel`` as in :func:`psnr`.
    """
    img, ref = _prepare(img, ref, crop_border, test_y_channel)
    if min(img.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"ssim: image {img.shape[:2]} is smaller than the {SSIM_WINDOW}px window")
    c1 = (SSIM_K1 * 255.0) ** 2
    c2 = (SSIM_K2 * 255.0) ** 2
    g = gaussian_window_1d()
    stats = np.stack([img, ref, img * img, ref * ref, img * ref], axis=-1)  # H, W, C, 5
    mu1, mu2, e11, e22, e12 = np.moveaxis(_filter_valid(stats, g), -1, 0)
    var1 = e11 - mu1 * mu1
    var2 = e22 - mu2 * mu2
    cov = e12 - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * cov + c2)) / (
        (mu1 * mu1 + mu2 * mu2 + c1) * (var1 + var2 + c2)
    )
    return float(ssim_map.mean(axis=(0, 1)).mean())


@dataclasses.dataclass(frozen=True)
class Convention:
    """The metric convention of one evaluation, written next to every reported number.

    ``for_task`` gives the literature's convention of a task, which its class declares
    (docs/metrics.md): denoising and camera noise score all channels with no border crop and a
    per-image seeded, float noisy input; SR scores the Y channel with ``scale`` border pixels
    cropped and an LR made by MATLAB bicubic and rounded to uint8; JPEG artefact removal scores
    the Y channel (gray images: their values) with no border crop, the input decoded from
    Pillow's JPEG of the 8-bit image; paired data score as JPEG does, on the user's degraded
    files; any other task with its inputs from files (``from_files``) keeps its own scoring,
    the inputs read from the files.
    """

    task: str
    test_y_channel: bool
    crop_border: int
    output_rounding: str = "clip to [0, 255], round to uint8"
    input_variant: str = ""

    @classmethod
    def for_task(cls, task: str, scale: int = 1, noise_variant: str = "float",
                 from_files: bool = False) -> Convention:
        """The convention of the registered task `task` (:mod:`hinas.tasks`: its
        `test_y_channel`, `crop_border` and `input_variant`) at SR `scale`.

        ``noise_variant`` names the noisy input of denoising: ``float`` (not clipped, not
        quantised; the default), ``clipped`` or ``quantized``. ``from_files``: the inputs were
        read from the user's files (``--lq``), not made from the test image; the task's scoring
        stays.
        """
        unit = TaskConfig(name=task, scale=scale)
        files = from_files or unit.from_files
        return cls(task, unit.test_y_channel, unit.crop_border,
                   input_variant=FILE_INPUT if files else unit.input_variant(noise_variant))

    def score(self, output: np.ndarray, ref: np.ndarray) -> dict[str, float]:
        """PSNR and SSIM of ``output`` against ``ref`` (0–255) under this convention.

        The output is rounded first (``to_uint8``), as published numbers are on 8-bit images.
        """
        out = to_uint8(output)
        kw = {"crop_border": self.crop_border, "test_y_channel": self.test_y_channel}
        return {"psnr": psnr(out, ref, **kw), "ssim": ssim(out, ref, **kw)}

    def describe(self) -> str:
        """One-line human-readable statement of the convention."""
        channel = ("Y channel (BT.601) of colour images, the values of gray ones"
                   if self.test_y_channel else "all channels")
        return (
            f"{self.task}: PSNR/SSIM on {channel}, crop {self.crop_border}px, "
            f"output {self.output_rounding}; input: {self.input_variant}; "
            f"SSIM Gaussian {SSIM_WINDOW}x{SSIM_WINDOW} sigma {SSIM_SIGMA}, valid region"
        )

    def as_dict(self) -> dict:
        """The convention as a JSON-ready dict (fields plus ``describe()`` text)."""
        return {**dataclasses.asdict(self), "description": self.describe()}
