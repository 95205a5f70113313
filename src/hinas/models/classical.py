"""Classical (not learned) reference methods, scored exactly like trained models (docs/metrics.md);
the trainable reference networks (DnCNN, FSRCNN) are in :mod:`hinas.models.architectures`.

- `noisy` (denoising, camera noise): the noisy input itself — the "before" row of a denoising table;
- `bicubic` (SR): MATLAB-compatible bicubic upsampling of the LR input, the first row of every SR
  table (paper Table 12);
- `jpeg` (JPEG artefact removal): the decoded JPEG itself, the "before" row of a deblocking table;
- `identity` (paired data): the user's degraded file itself;
- `bm3d` (denoising, camera noise): BM3D (Dabov et al. 2007) through the optional PyPI package
  `bm3d` (`pip install 'hinas[bm3d]'`), called as `bm3d.bm3d(noisy / 255, sigma / 255)` (gray) or
  `bm3d.bm3d_rgb` (RGB) with σ on the 0–255 scale; for camera noise after the generalised
  Anscombe transform, inverted by the closed-form approximation of the exact unbiased inverse
  (Mäkitalo & Foi 2013; :func:`generalized_anscombe`, :func:`inverse_generalized_anscombe`).

Each is a function `(lq, task) -> output` on HxWxC float arrays on the 0–255 scale, registered
with the tasks it solves; adding one is one decorated function.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hinas.config import TaskConfig
from hinas.data.degradations import bicubic_sr
from hinas.errors import HinasError
from hinas.registry import Registry


@dataclass(frozen=True)
class ClassicalMethod:
    """A registered classical method: name, the tasks it solves (the first is the default), the
    optional package it needs."""

    name: str
    tasks: tuple[str, ...]
    restore: Callable[[np.ndarray, TaskConfig], np.ndarray]
    requires: str | None = None

    @property
    def available(self) -> bool:
        """Whether the package this method needs (if any) is installed."""
        return self.requires is None or importlib.util.find_spec(self.requires) is not None

    def check_available(self) -> None:
        """Raise HinasError when the package this method needs is not installed."""
        if not self.available:
            raise HinasError(f"method {self.name!r} needs the package {self.requires!r}, which "
                             f"is not installed: pip install 'hinas[{self.requires}]'")


METHODS: Registry[ClassicalMethod] = Registry("classical method")


def register_method(name: str, *tasks: str, requires: str | None = None) -> Callable:
    """Decorator registering `restore(lq, task) -> output` as classical method `name` for
    `tasks`."""
    return METHODS.register(name, lambda restore: ClassicalMethod(name, tasks, restore, requires))


def get_method(name: str, task: TaskConfig | None = None) -> ClassicalMethod:
    """Classical method `name`, checked to exist, to be installed and (given `task`) to solve
    it."""
    method = METHODS.get(name)
    if task is not None and task.name not in method.tasks:
        raise HinasError(f"method {name!r} is for the {' / '.join(map(repr, method.tasks))} "
                         f"task, not {task.name!r} (use --task {method.tasks[0]})")
    method.check_available()
    return method


@register_method("noisy", "denoise", "camera")
@register_method("jpeg", "jpeg")
@register_method("identity", "paired")
def input_as_is(lq: np.ndarray, task: TaskConfig) -> np.ndarray:
    """The degraded input (noisy image, decoded JPEG, paired file), unchanged (scored after the
    usual clip-and-round): the "before" row of a table."""
    return lq


@register_method("bicubic", "sr")
def bicubic(lq: np.ndarray, task: TaskConfig) -> np.ndarray:
    """MATLAB-compatible bicubic upsampling by the task's scale."""
    return bicubic_sr(lq, task.scale)


def bm3d_gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D of `x` (HxWxC float) against white Gaussian noise of standard deviation `sigma` on
    the scale of `x` (gray: `bm3d.bm3d`; RGB: `bm3d.bm3d_rgb`, opponent colour space)."""
    import bm3d

    if x.shape[2] == 1:
        out = bm3d.bm3d(x[..., 0], sigma)[..., None]
    else:
        out = bm3d.bm3d_rgb(x, sigma)
    return np.asarray(out, dtype=np.float64)


def generalized_anscombe(z: np.ndarray, a: float, b: float) -> np.ndarray:
    """Generalised Anscombe transform of Poisson–Gaussian data `z` of variance `a·x + b` (Starck
    et al. 1998): `2 / a · sqrt(max(0, a z + 3/8 a² + b))`; the noise becomes about N(0, 1)."""
    return 2.0 / a * np.sqrt(np.maximum(0.0, a * z + 0.375 * a * a + b))


def inverse_generalized_anscombe(d: np.ndarray, a: float, b: float) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse of :func:`generalized_anscombe`
    (Mäkitalo & Foi 2013, IEEE TIP 22(1)), with σ̃² = b / a²:

    `a · max(0, d²/4 + √(3/2)/4 d⁻¹ − 11/8 d⁻² + 5/8 √(3/2) d⁻³ − 1/8 − σ̃²)`.

    The approximation reaches 0 at `d = √(3/2)` and rises again below it, so smaller `d` are taken
    as `√(3/2)`."""
    d = np.maximum(np.asarray(d, dtype=np.float64), math.sqrt(1.5))
    r = math.sqrt(1.5)
    inverse = d * d / 4 + r / 4 / d - 11 / 8 / d**2 + 5 / 8 * r / d**3 - 1 / 8 - b / (a * a)
    return a * np.maximum(0.0, inverse)


@register_method("bm3d", "denoise", "camera", requires="bm3d")
def bm3d_denoise(lq: np.ndarray, task: TaskConfig) -> np.ndarray:
    """BM3D against the noise of the task's evaluation input, variance a·x + b for x in [0, 1]
    (`task.noise_variance()`): Gaussian noise (a = 0) BM3D at σ = √b; camera noise BM3D at
    σ = 1 after the generalised Anscombe transform and its closed-form unbiased inverse."""
    x = np.asarray(lq, dtype=np.float64) / 255.0
    a, b = task.noise_variance()
    if a == 0:
        return bm3d_gaussian(x, math.sqrt(b)) * 255.0
    stabilised = bm3d_gaussian(generalized_anscombe(x, a, b), 1.0)
    return inverse_generalized_anscombe(stabilised, a, b) * 255.0
