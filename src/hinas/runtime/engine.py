"""The training-loop machinery that search and training share: one optimisation step (with the
frozen-parameter guard and the NaN guard), and one way to load and split the training images.
The device check and the process group are :func:`hinas.runtime.distributed.launch`'s; how a step
executes (precision, memory format, loaders) is :mod:`hinas.runtime.execution`'s."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hinas.data.datasets import load_inputs, match_inputs, split_images
from hinas.data.images import collect_images, load_images, relative_name
from hinas.errors import warn
from hinas.runtime.distributed import mean_over_ranks
from hinas.runtime.execution import FULL_PRECISION, Precision


@contextmanager
def frozen(params: list[torch.nn.Parameter]):
    """Temporarily stop gradients for `params` (autograd neither computes nor stores for them)."""
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


def optimisation_step(net: nn.Module, optimizer: torch.optim.Optimizer,
                      other: list[nn.Parameter], loss_fn: nn.Module, lq: torch.Tensor,
                      gt: torch.Tensor, grad_clip: float = 0.0,
                      arch: Any = None,
                      precision: Precision = FULL_PRECISION,
                      penalty: Callable[[], torch.Tensor] | None = None) -> float:
    """One forward/backward/update of `optimizer`'s parameters, with `other` parameters frozen so
    autograd neither stores nor computes anything for them; the forward pass under `precision`'s
    autocast, the loss in fp32; `arch` (a sampled architecture of random search), when given, goes
    to the forward pass; `penalty()` (a cost term) is added to the loss that is minimised. Returns
    the loss without the penalty (averaged over ranks); raises on NaN/inf."""
    optimizer.zero_grad(set_to_none=True)
    with frozen(other):
        with precision.autocast():
            pred = net(lq) if arch is None else net(lq, arch)
        loss = loss_fn(pred.float(), gt)
        value = mean_over_ranks(loss)
        if not math.isfinite(value):
            raise FloatingPointError(value)
        precision.backward(loss + penalty() if penalty is not None else loss, optimizer)
    precision.step(optimizer, grad_clip)
    return value


@dataclass
class TrainingImages:
    """Decoded training images (uint8 HxWxC by path) split into Train W, Train A and
    Validation V (paper §4.1; training uses W and A together), and the folders they came from;
    with paired data, `inputs` holds each image's degraded input by the same path (the split
    splits pairs)."""

    images: dict[Path, np.ndarray]
    w: list[Path]
    a: list[Path]
    v: list[Path]
    folders: str | os.PathLike | Sequence[str | os.PathLike]
    inputs: dict[Path, np.ndarray] | None = None

    def subset(self, paths: list[Path]) -> dict[Path, np.ndarray]:
        """The images of `paths`."""
        return {p: self.images[p] for p in paths}

    def inputs_of(self, paths: list[Path]) -> dict[Path, np.ndarray] | None:
        """The degraded inputs of `paths` (None unless the data are paired)."""
        return None if self.inputs is None else {p: self.inputs[p] for p in paths}

    def names(self, paths: list[Path]) -> list[str]:
        """How run records name `paths` (relative to their data folder)."""
        return [relative_name(p, self.folders) for p in paths]


def load_training_images(folders: str | os.PathLike | Sequence[str | os.PathLike],
                         channels: int, max_images: int, crop: int, seed: int,
                         val_fraction: float,
                         lq_folders: Sequence[str | os.PathLike] = (),
                         scale: int = 1) -> TrainingImages:
    """The images of `folders` (at most `max_images`, a seeded choice; unreadable ones skipped
    with a warning, one smaller than `crop` an error naming it) as `channels`-channel arrays,
    split with :func:`hinas.data.datasets.split_images`. With `lq_folders`, every image is
    matched to its degraded input there (all of them, before the choice; `scale` times smaller:
    :func:`hinas.data.datasets.match_inputs`, :func:`hinas.data.datasets.load_inputs`)."""
    partners = match_inputs(collect_images(folders), lq_folders) if lq_folders else None
    paths = collect_images(folders, max_images, seed)
    images = load_images(paths, channels, min_size=crop, warn=warn)
    inputs = load_inputs(images, partners, scale) if partners is not None else None
    w, a, v = split_images(list(images), seed, val_fraction)
    return TrainingImages(images, w, a, v, folders, inputs)
