"""Model cost: parameter count, multiply-accumulates (MACs) and latency for a given input size."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters (α/β included where the model holds them)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def count_macs(model: nn.Module, channels: int, height: int, width: int) -> int:
    """MACs of one forward pass on a 1×channels×height×width input, counted over conv and linear
    layers (the cost that dominates; BN, activations and additions are not counted)."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * (module.in_channels // module.groups) * k

    def linear_hook(module: nn.Linear, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        model(torch.zeros(1, channels, height, width, device=device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return total


@torch.no_grad()
def measure_latency(run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                    repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time in seconds of `run(x)` over `repeats` calls, after `warmup` unmeasured
    calls (CUDA work is synchronised before the clock is read)."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        run(x)
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)
