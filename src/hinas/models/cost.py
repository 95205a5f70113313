"""What a model costs at one named input size: its parameters, its multiply-accumulates and the
forward latency of the BatchNorm-folded inference copy that `hinas restore` and `hinas eval` run
(:func:`hinas.models.fold.fold_batchnorm`). The size is the task's `cost_size`, (width, height),
unless one is given."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hinas.config import TaskConfig
from hinas.measures.complexity import count_macs, count_params, measure_latency
from hinas.models.fold import fold_batchnorm


@dataclass(frozen=True)
class ModelCost:
    """Parameters, MACs and the folded network's median latency (None: not timed) on a
    1×C×height×width input of size `size` = (width, height)."""

    params: int
    macs: int
    size: tuple[int, int]
    latency_s: float | None

    @property
    def macs_per_pixel(self) -> float:
        """MACs of one input pixel."""
        return self.macs / (self.size[0] * self.size[1])


def model_cost(model: nn.Module, task: TaskConfig, size: tuple[int, int] | None = None,
               repeats: int = 5, warmup: int = 1) -> ModelCost:
    """The cost of `model` (restoring `task`, whose `input_channels` it takes) at `size` =
    (width, height) (default `task.cost_size`), on the device the model is on: the median of
    `repeats` timed forward passes of its folded copy after `warmup` untimed ones (`repeats`
    0: not timed)."""
    w, h = size or task.cost_size
    channels = task.input_channels
    latency = None
    if repeats > 0:
        device = next(model.parameters()).device
        x = torch.rand(1, channels, h, w, device=device)
        latency = measure_latency(fold_batchnorm(model), x, repeats, warmup)
    return ModelCost(count_params(model), count_macs(model, channels, h, w), (w, h), latency)
