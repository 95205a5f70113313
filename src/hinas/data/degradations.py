"""Degradations: how a low-quality input is made from a clean image (docs/decisions.md §2–3,
docs/metrics.md).

One class per task, registered under the name of its task (the task itself, its levels and
everything else it says about itself, is its class in :mod:`hinas.tasks`; docs/degradations.md):

- ``denoise``: additive white Gaussian noise, σ on the [0, 255] scale (:class:`GaussianNoise`);
- ``sr``: MATLAB-compatible bicubic downsampling by an integer factor (:class:`BicubicDown`);
- ``jpeg``: JPEG compression by Pillow's encoder at a quality factor (:class:`JpegCompression`);
- ``camera``: Poisson–Gaussian noise of variance ``a·x + b`` (:class:`CameraNoise`);
- ``paired``: the user's own degraded files, matched to the ground truths by name
  (:class:`PairedFiles`; no degradation is simulated; :mod:`hinas.data.datasets`).

Training crops go through ``degradation(hr, rng)`` (float32 in [0, 1], HxWxC). Evaluation uses the
literature's fixed recipes instead, ``degradation.test_pair(clean, seed, image_key)`` of a
degradation built at the task's evaluation level: :func:`noisy_for_image` (noise seeded per
image), :func:`sr_pair_for_image` (modcrop, bicubic ↓, LR rounded to uint8), :func:`jpeg_roundtrip`
and :func:`camera_noise_for_image`; :func:`bicubic_sr` is the bicubic baseline of the SR tables.
"""

from __future__ import annotations

import functools
import inspect
import io
import math
import numbers
import zlib
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from hinas.errors import HinasError
from hinas.measures.metrics import to_uint8
from hinas.registry import Registry

# --------------------------------------------------------------------------------------------
# MATLAB-compatible imresize (bicubic, antialiased when downscaling)
# --------------------------------------------------------------------------------------------


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``), support [-2, 2]."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * (
        (ax > 1) & (ax <= 2)
    )


@functools.lru_cache(maxsize=256)
def _resize_matrix(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """Dense (out_len, in_len) matrix of MATLAB's ``contributions`` for one axis.

    Follows MATLAB's ``imresize.m``: output pixel ``x`` (1-based) sits at input coordinate
    ``u = x / scale + 0.5 (1 - 1 / scale)``; when downscaling the kernel is stretched by
    ``1 / scale`` (antialiasing); ``ceil(width) + 2`` taps from ``floor(u - width / 2)``; weights
    normalised to sum 1; out-of-range taps clamped to the edge pixel (MATLAB: "Clamp out-of-range
    indices; has the effect of replicating end-points"), their weights summed there.

    Replicating (not mirroring, as BasicSR's Python port does) is what MATLAB outputs:
    ``imresize([0 0 1 1 0], [1 10])`` ends in -0.0703 (mirroring gives -0.0938).
    """
    if scale < 1:
        width = 4.0 / scale

        def kernel(d: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * d)
    else:
        width = 4.0
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    weights = kernel(u[:, None] - indices)
    weights /= weights.sum(axis=1, keepdims=True)
    columns = np.clip(indices.astype(np.int64) - 1, 0, in_len - 1)
    matrix = np.zeros((out_len, in_len), dtype=np.float64)
    rows = np.broadcast_to(np.arange(out_len)[:, None], columns.shape)
    np.add.at(matrix, (rows, columns), weights)
    matrix.setflags(write=False)
    return matrix


def imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """Resize ``img`` (HxW or HxWxC) by ``scale`` exactly like MATLAB's ``imresize(img, scale)``.

    Bicubic (a = -0.5), antialiased when ``scale < 1``, edge pixels replicated, output size
    ``ceil(h * scale) x ceil(w * scale)``. Works in float64 on the input's value scale and returns
    float64 with no clipping or rounding (MATLAB rounds and clips only for integer inputs; callers
    that want that apply :func:`hinas.measures.metrics.to_uint8`).
    """
    x = np.asarray(img, dtype=np.float64)
    if scale <= 0:
        raise ValueError(f"imresize: scale must be positive, got {scale}")
    if x.ndim not in (2, 3):
        raise ValueError(f"imresize: expected an HxW or HxWxC array, got shape {x.shape}")
    h, w = x.shape[:2]
    rows = _resize_matrix(h, math.ceil(h * scale), float(scale))
    cols = _resize_matrix(w, math.ceil(w * scale), float(scale))
    # rows first (MATLAB resizes the dimension with the smaller scale first, rows on a tie)
    out = np.tensordot(rows, x, axes=(1, 0))
    out = np.tensordot(cols, out, axes=(1, 1))  # (out_w, out_h, ...)
    return np.ascontiguousarray(np.swapaxes(out, 0, 1))


def modcrop(img: np.ndarray, s: int) -> np.ndarray:
    """Crop the bottom/right of ``img`` so that height and width are multiples of ``s``."""
    h, w = img.shape[:2]
    return img[: h - h % s, : w - w % s]


def bicubic_sr(lr: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic baseline of SR tables: MATLAB ``imresize(lr, scale)``, float64, unclipped.

    Same value scale as ``lr``; score it after :func:`hinas.measures.metrics.to_uint8` like any
    output.
    """
    return imresize(lr, scale)


# --------------------------------------------------------------------------------------------
# Registry of degradations (training: random crops, float32 in [0, 1])
# --------------------------------------------------------------------------------------------

DEGRADATIONS: Registry[type] = Registry("task")


def register_degradation(task: str) -> Callable[[type], type]:
    """Class decorator registering a degradation under the task name ``task``.

    A degradation class takes its options as constructor keywords, has an integer ``scale``
    attribute (1 when the size is unchanged) and implements ``__call__(hr, rng) -> lq`` (training
    crops), ``lq_size(hr_h, hr_w) -> (h, w)`` and ``test_pair(clean, seed, image_key) -> (lq, gt)``
    (the fixed test input of an 8-bit image, built at one level: see docs/degradations.md).
    """

    def decorate(cls: type) -> type:
        cls.task = task
        return DEGRADATIONS.register(task)(cls)

    return decorate


@register_degradation("denoise")
class GaussianNoise:
    """Additive white Gaussian noise ``lq = hr + N(0, (σ/255)²)``: float, unclipped, unquantised.

    ``sigma`` is on the [0, 255] scale; with ``sampling="choice"`` a list of values means one
    is drawn per call (training over several noise levels); with ``sampling="uniform"`` it is a
    range ``[low, high]`` and σ is drawn uniformly from it per call (blind denoising, DnCNN-B).
    """

    scale = 1

    def __init__(self, sigma: float | Sequence[float], sampling: str = "choice"):
        values = [float(s) for s in (sigma if isinstance(sigma, Sequence) else [sigma])]
        if not values or any(not math.isfinite(s) or s < 0 for s in values):
            raise HinasError(f"denoise: sigma must be one or more numbers >= 0, got {sigma!r}")
        if sampling not in ("choice", "uniform"):
            raise HinasError(f"denoise: sampling must be 'choice' or 'uniform', got {sampling!r}")
        if sampling == "uniform" and (len(values) != 2 or values[0] >= values[1]):
            raise HinasError(f"denoise: uniform sampling needs a range [low, high] with "
                             f"low < high, got {values}")
        self.sigmas, self.sampling = values, sampling

    def draw_sigma(self, rng: np.random.Generator) -> float:
        """The σ of one call."""
        if self.sampling == "uniform":
            return float(rng.uniform(self.sigmas[0], self.sigmas[1]))
        return self.sigmas[rng.integers(len(self.sigmas))] if len(self.sigmas) > 1 else \
            self.sigmas[0]

    def __call__(self, hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Noisy copy of ``hr`` (float32 in [0, 1], HxWxC) with noise drawn from ``rng``."""
        return self.with_variance(hr, rng)[0]

    def with_variance(self, hr: np.ndarray, rng: np.random.Generator
                      ) -> tuple[np.ndarray, tuple[float, float]]:
        """The noisy copy of ``hr`` and its noise as the variance ``(a, b)`` of ``a·x + b``:
        ``(0, (σ/255)²)`` of the σ drawn."""
        sigma = self.draw_sigma(rng)
        noise = rng.standard_normal(hr.shape, dtype=np.float32)
        noise *= np.float32(sigma / 255.0)
        return hr.astype(np.float32) + noise, (0.0, (sigma / 255.0) ** 2)

    def lq_size(self, hr_h: int, hr_w: int) -> tuple[int, int]:
        """Size of the noisy image: unchanged."""
        return hr_h, hr_w

    def test_pair(self, clean: np.ndarray, seed: int, image_key: str
                  ) -> tuple[np.ndarray, np.ndarray]:
        """``(noisy_for_image(clean, σ, seed, image_key), clean)`` at the one σ."""
        (sigma,) = single_level(self.sigmas, "denoise: sigma")
        return noisy_for_image(clean, sigma, seed, image_key), clean

    def __repr__(self) -> str:
        sigma = self.sigmas if len(self.sigmas) > 1 else self.sigmas[0]
        return f"GaussianNoise(sigma={sigma}, sampling={self.sampling!r})"


@register_degradation("sr")
class BicubicDown:
    """MATLAB-compatible bicubic downsampling by an integer ``scale`` (2, 3, 4, ...).

    The result is float32 and neither rounded nor clipped (training); evaluation rounds the LR to
    uint8 like the MATLAB test scripts (:func:`sr_pair_for_image`).
    """

    def __init__(self, scale: int):
        if isinstance(scale, bool) or int(scale) != scale or scale < 2:
            raise HinasError(f"sr: scale must be an integer >= 2, got {scale!r}")
        self.scale = int(scale)

    def __call__(self, hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Bicubic-downsampled ``hr`` (float32 in [0, 1], HxWxC, sides multiples of ``scale``)."""
        return imresize(hr, 1.0 / self.scale).astype(np.float32)

    def lq_size(self, hr_h: int, hr_w: int) -> tuple[int, int]:
        """Size of the LR image: ``ceil(side / scale)``."""
        return math.ceil(hr_h / self.scale), math.ceil(hr_w / self.scale)

    def test_pair(self, clean: np.ndarray, seed: int, image_key: str
                  ) -> tuple[np.ndarray, np.ndarray]:
        """``(lr, modcrop(clean))`` of :func:`sr_pair_for_image` (no randomness)."""
        hr, lr = sr_pair_for_image(clean, self.scale)
        return lr.astype(np.float64), hr

    def __repr__(self) -> str:
        return f"BicubicDown(scale={self.scale})"


def level_values(values, task: str, name: str, check: Callable[[float], bool],
                 rule: str) -> list:
    """``values`` (one value or a range ``[low, high]``, low < high) as a list, each passing
    ``check``; HinasError ``"<task>: <name> must be <rule> ..."`` otherwise."""
    values = list(values) if isinstance(values, Sequence) else [values]
    ok = len(values) == 1 or (len(values) == 2 and values[0] < values[1])
    if not ok or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and check(v)
                         for v in values):
        raise HinasError(f"{task}: {name} must be {rule}, or a range [low, high] of them with "
                         f"low < high, got {values!r}")
    return values


def single_level(values: list, what: str) -> list:
    """``values`` when it holds one level; HinasError otherwise (test inputs are made at one
    level: build the degradation of ``task.at_evaluation()``)."""
    if len(values) != 1:
        raise HinasError(f"{what}: test inputs are made at one level, not {values}")
    return values


def draw_level(values: list, rng: np.random.Generator, integer: bool = False):
    """The level of one crop: the one value, or a uniform draw from the range ``[low, high]``
    (integers: ``low..high`` inclusive)."""
    if len(values) == 1:
        return values[0]
    if integer:
        return int(rng.integers(values[0], values[1] + 1))
    return float(rng.uniform(values[0], values[1]))


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """``img`` (uint8 HxWx1 or HxWx3) encoded as JPEG by Pillow at ``quality`` in memory and
    decoded: uint8 of the same shape. Pillow's defaults otherwise: baseline, standard tables,
    and 4:2:0 chroma subsampling for RGB."""
    img = np.asarray(img, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(img[..., 0] if img.shape[2] == 1 else img).save(
        buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        out = np.asarray(decoded)
    return out.reshape(img.shape)


@register_degradation("jpeg")
class JpegCompression:
    """JPEG compression artefacts: the crop quantised to uint8, encoded by Pillow at a quality
    factor in 1–100 and decoded (:func:`jpeg_roundtrip`; a real codec, not a simulation).

    ``quality`` is one integer, or a range ``[low, high]`` from which every call draws an integer
    uniformly (blind JPEG artefact removal).
    """

    scale = 1

    def __init__(self, quality: int | Sequence[int]):
        self.qualities = [int(q) for q in level_values(
            quality, "jpeg", "quality", lambda q: float(q).is_integer() and 1 <= q <= 100,
            "an integer from 1 to 100")]

    def __call__(self, hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Decoded JPEG of ``hr`` (float32 in [0, 1], HxWxC) at a quality drawn from ``rng``."""
        quality = draw_level(self.qualities, rng, integer=True)
        decoded = jpeg_roundtrip(to_uint8(hr * np.float32(255.0)), quality)
        return decoded.astype(np.float32) / np.float32(255.0)

    def lq_size(self, hr_h: int, hr_w: int) -> tuple[int, int]:
        """Size of the decoded image: unchanged."""
        return hr_h, hr_w

    def test_pair(self, clean: np.ndarray, seed: int, image_key: str
                  ) -> tuple[np.ndarray, np.ndarray]:
        """``(jpeg_roundtrip(clean, quality), clean)`` at the one quality (no randomness)."""
        (quality,) = single_level(self.qualities, "jpeg: quality")
        clean = to_uint8(clean)
        return jpeg_roundtrip(clean, quality).astype(np.float64), clean

    def __repr__(self) -> str:
        return f"JpegCompression(quality={':'.join(map(str, self.qualities))})"


def _non_negative(v: float) -> bool:
    return math.isfinite(v) and v >= 0


POISSON_MIN_A = 1e-12
"""Below this ``a`` (over 10¹² photons at x = 1, more than a Poisson draw can count) the shot
noise is drawn from its Gaussian limit ``N(x, a·x)``, which differs from ``a·Poisson(x/a)`` only
by a skewness of ``sqrt(a/x)`` (under 10⁻⁶ for x ≥ 10⁻¹²): any ``a`` ≥ 0 works."""


def poisson_gaussian(x: np.ndarray, a: float, b: float, rng: np.random.Generator) -> np.ndarray:
    """``a · Poisson(x / a) + N(0, b)`` of ``x`` in [0, 1] (float64): mean ``x``, variance
    ``a·x + b`` (``a = 0``: Gaussian noise alone; ``0 < a <`` :data:`POISSON_MIN_A`: the
    Gaussian limit of the Poisson term). Not clipped."""
    x = np.asarray(x, dtype=np.float64)
    photons = np.clip(x, 0.0, None)
    if a >= POISSON_MIN_A:
        return a * rng.poisson(photons / a) + rng.standard_normal(x.shape) * math.sqrt(b)
    # one Gaussian draw of variance a·x + b, so that a → 0 meets a = 0 continuously
    return (photons if a else x) + rng.standard_normal(x.shape) * np.sqrt(a * photons + b)


@register_degradation("camera")
class CameraNoise:
    """Camera (Poisson–Gaussian) noise: ``lq = a·Poisson(x/a) + N(0, b)`` for ``x`` in [0, 1],
    signal-dependent variance ``a·x + b`` (Foi et al. 2008); float, unclipped, unquantised.

    ``a`` and ``b`` are each one number ≥ 0, or a range ``[low, high]`` drawn uniformly per call
    (blind).
    """

    scale = 1

    def __init__(self, a: float | Sequence[float], b: float | Sequence[float]):
        self.a, self.b = ([float(v) for v in level_values(values, "camera", name, _non_negative,
                                                          "a number >= 0")]
                          for name, values in (("a", a), ("b", b)))
        if self.a[-1] == 0 and self.b[-1] == 0:
            raise HinasError("camera: a and b are both 0: there is no noise")

    def __call__(self, hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Noisy copy of ``hr`` (float32 in [0, 1], HxWxC) at ``a``, ``b`` drawn from ``rng``."""
        return self.with_variance(hr, rng)[0]

    def with_variance(self, hr: np.ndarray, rng: np.random.Generator
                      ) -> tuple[np.ndarray, tuple[float, float]]:
        """The noisy copy of ``hr`` and the ``(a, b)`` drawn."""
        a, b = draw_level(self.a, rng), draw_level(self.b, rng)
        return poisson_gaussian(hr, a, b, rng).astype(np.float32), (a, b)

    def lq_size(self, hr_h: int, hr_w: int) -> tuple[int, int]:
        """Size of the noisy image: unchanged."""
        return hr_h, hr_w

    def test_pair(self, clean: np.ndarray, seed: int, image_key: str
                  ) -> tuple[np.ndarray, np.ndarray]:
        """``(camera_noise_for_image(clean, a, b, seed, image_key), clean)`` at the one ``a``,
        ``b``."""
        (a,), (b,) = single_level(self.a, "camera: a"), single_level(self.b, "camera: b")
        return camera_noise_for_image(clean, a, b, seed, image_key), clean

    def __repr__(self) -> str:
        return f"CameraNoise(a={self.a}, b={self.b})"


@register_degradation("paired")
class PairedFiles:
    """Degraded inputs that are files of the user's (``--lq``, ``data.lq``), each the partner of
    a ground truth of the same size (:func:`hinas.data.datasets.match_inputs`): nothing is
    simulated, so training crops and test inputs are cut from those files instead
    (:class:`hinas.data.datasets.PatchDataset`, :func:`hinas.runtime.scoring.make_pairs`).
    ``sr`` with ``--lq`` reads its low-resolution inputs from files the same way."""

    scale = 1
    from_files = True

    def __call__(self, hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Refused: a paired input comes from its file."""
        raise HinasError(self._no_synthesis())

    def lq_size(self, hr_h: int, hr_w: int) -> tuple[int, int]:
        """Size of the degraded file: that of its ground truth (checked on loading)."""
        return hr_h, hr_w

    def test_pair(self, clean: np.ndarray, seed: int, image_key: str
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Refused: a paired input comes from its file."""
        raise HinasError(self._no_synthesis())

    @staticmethod
    def _no_synthesis() -> str:
        return "paired: the degraded inputs are read from files (--lq DIR), not simulated"

    def __repr__(self) -> str:
        return "PairedFiles()"


def noise_map(noisy, a: float, b: float):
    """The noise-level map of a noisy image ``noisy`` in [0, 1] (a NumPy array or a torch
    tensor, any layout) whose noise has variance ``a·x + b``: the standard deviation
    ``sqrt(a·max(noisy, 0) + b)`` at every value, so σ/255 everywhere for Gaussian noise (``a``
    = 0). Computed from the noisy values, which is all a restoration has, in training as well."""
    return (noisy.clip(0) * a + b) ** 0.5


def with_noise_map(lq: np.ndarray, variance: tuple[float, float]) -> np.ndarray:
    """``lq`` (HxWxC) with its noise-level map (:func:`noise_map`) as C more channels."""
    return np.concatenate([lq, noise_map(lq, *variance).astype(lq.dtype)], axis=2)


def build_degradation(task: str, **options):
    """Build the registered degradation for ``task`` from its ``options`` (``None`` = not
    given).

    An option the degradation does not take is an error, unless it equals the class's own fixed
    value (``scale=1`` for denoising).
    """
    cls = DEGRADATIONS.get(task)
    accepted = inspect.signature(cls).parameters
    kwargs = {}
    for name, value in options.items():
        if value is None:
            continue
        if name in accepted:
            kwargs[name] = value
        elif getattr(cls, name, None) != value:
            raise HinasError(f"{task}: option {name}={value!r} does not apply to this task")
    missing = [n for n, p in accepted.items() if p.default is p.empty and n not in kwargs]
    if missing:
        raise HinasError(f"{task}: missing option {', '.join(missing)}")
    return cls(**kwargs)


def task_degradation(task):
    """The degradation of a task (:class:`hinas.tasks.TaskConfig`): its registered class built
    from ``task.degradation_options()``. Training crops go through ``task_degradation(task)``; test
    inputs are ``task_degradation(task.at_evaluation()).test_pair(...)``."""
    return build_degradation(task.name, **task.degradation_options())


# --------------------------------------------------------------------------------------------
# Evaluation inputs (fixed, reproducible per image)
# --------------------------------------------------------------------------------------------


def image_rng(seed: int, image_key: str) -> np.random.Generator:
    """The generator of one test image's noise: ``default_rng([seed, crc32(image_key)])``."""
    return np.random.default_rng([seed, zlib.crc32(image_key.encode("utf-8"))])


def noisy_for_image(
    clean: np.ndarray,
    sigma: float,
    seed: int,
    image_key: str,
    clip: bool = False,
    quantize: bool = False,
) -> np.ndarray:
    """Noisy test input ``clean + N(0, σ²)`` on the [0, 255] scale, float64 (docs/metrics.md).

    The noise comes from ``default_rng([seed, crc32(image_key)])``: pass the image's file name as
    ``image_key`` so every method and every run scores the same noisy input. The default is the
    DnCNN/KAIR convention (not clipped, not quantised); ``clip`` clips to [0, 255] and
    ``quantize`` rounds to integers (and clips), the variants some papers use.
    """
    rng = image_rng(seed, image_key)
    clean = np.asarray(clean, dtype=np.float64)
    noisy = clean + rng.standard_normal(clean.shape) * float(sigma)
    if quantize:
        return to_uint8(noisy).astype(np.float64)
    if clip:
        return np.clip(noisy, 0.0, 255.0)
    return noisy


def sr_pair_for_image(hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """SR test pair of the literature (docs/metrics.md): ``(modcrop(hr, s), lr)``, both uint8.

    ``lr = im2uint8(imresize(hr, 1/s))``: MATLAB bicubic of the 8-bit HR, rounded to uint8 as
    MATLAB's ``imresize`` does for uint8 input. This variant reproduces the published bicubic
    anchors (Set5/Set14, paper Table 12).
    """
    hr = modcrop(to_uint8(hr), scale)
    return hr, to_uint8(imresize(hr, 1.0 / scale))


def camera_noise_for_image(clean: np.ndarray, a: float, b: float, seed: int,
                           image_key: str) -> np.ndarray:
    """Camera-noise test input of the 8-bit ``clean`` on the [0, 255] scale, float64:
    ``255 · (a·Poisson(x/a) + N(0, b))`` with ``x = clean / 255``, not clipped, not quantised, the
    noise from :func:`image_rng` (seeded per image, as :func:`noisy_for_image`)."""
    x = np.asarray(clean, dtype=np.float64) / 255.0
    return poisson_gaussian(x, a, b, image_rng(seed, image_key)) * 255.0
