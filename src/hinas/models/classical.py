"""Classical (not learned) reference methods, scored exactly like trained models (docs/metrics.md);
the trainable reference networks (DnCNN, FSRCNN) are in :mod:`hinas.models.architectures`.

- `noisy` (denoising): the noisy input itself — the "before" row of a denoising table;
- `bicubic` (SR): MATLAB-compatible bicubic upsampling of the LR input, the first row of every SR
  table (paper Table 12);
- `bm3d` (denoising): BM3D (Dabov et al. 2007) through the optional PyPI package `bm3d`
  (`pip install 'hinas[bm3d]'`), called as `bm3d.bm3d(noisy / 255, sigma / 255)` (gray) or
  `bm3d.bm3d_rgb` (RGB) with σ on the 0–255 scale.

Each is a function `(lq, task) -> output` on HxWxC float arrays on the 0–255 scale, registered
with the task it solves; adding one is one decorated function.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hinas.config import TaskConfig
from hinas.data.degradations import bicubic_sr
from hinas.errors import HinasError
from hinas.registry import Registry


@dataclass(frozen=True)
class ClassicalMethod:
    """A registered classical method: name, the task it solves, the optional package it needs."""

    name: str
    task: str
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


def register_method(name: str, task: str, requires: str | None = None) -> Callable:
    """Decorator registering `restore(lq, task) -> output` as classical method `name` for
    `task`."""
    return METHODS.register(name, lambda restore: ClassicalMethod(name, task, restore, requires))


def get_method(name: str, task: TaskConfig | None = None) -> ClassicalMethod:
    """Classical method `name`, checked to exist, to be installed and (given `task`) to solve
    it."""
    method = METHODS.get(name)
    if task is not None and task.name != method.task:
        raise HinasError(f"method {name!r} is for the {method.task!r} task, not "
                         f"{task.name!r} (use --task {method.task})")
    method.check_available()
    return method


@register_method("noisy", "denoise")
def noisy_input(lq: np.ndarray, task: TaskConfig) -> np.ndarray:
    """The noisy input, unchanged (scored after the usual clip-and-round)."""
    return lq


@register_method("bicubic", "sr")
def bicubic(lq: np.ndarray, task: TaskConfig) -> np.ndarray:
    """MATLAB-compatible bicubic upsampling by the task's scale."""
    return bicubic_sr(lq, task.scale)


@register_method("bm3d", "denoise", requires="bm3d")
def bm3d_denoise(lq: np.ndarray, task: TaskConfig) -> np.ndarray:
    """BM3D at the task's σ (gray: `bm3d.bm3d`; RGB: `bm3d.bm3d_rgb`, opponent colour space)."""
    import bm3d

    sigma = task.eval_sigma / 255.0
    x = np.asarray(lq, dtype=np.float64) / 255.0
    if x.shape[2] == 1:
        out = bm3d.bm3d(x[..., 0], sigma)[..., None]
    else:
        out = bm3d.bm3d_rgb(x, sigma)
    return np.asarray(out, dtype=np.float64) * 255.0
