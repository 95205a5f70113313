"""Measurements of the search's steps, outside a search run.

- :func:`time_search_steps`: the time and peak memory of the step the search loop makes after
  warm-up (paper §3.2, Eq. 5/6) — a W-step (forward, backward, SGD) on a Train-W batch, then an
  A-step (forward, backward, Adam) on a Train-A batch
  (:func:`hinas.runtime.strategies.search_step`);
- :func:`cell_work_ratio`: the cell work of Auto-DeepLab mode (Eq. 6) over cell sharing (Eq. 5)
  that those are read against (the gradient of α and β of a search run is
  :func:`hinas.jobs.search.arch_gradients`).
"""

from __future__ import annotations

import statistics
import time

import torch

from hinas.config import SearchConfig, SpaceConfig, TaskConfig
from hinas.measures.losses import build_loss
from hinas.runtime.execution import memory_format
from hinas.runtime.runs import peak_rss_mb
from hinas.runtime.strategies import arch_optimizer, search_step, weight_optimizer
from hinas.space.supernet import Supernet, layer_levels, sources


def time_search_steps(space: SpaceConfig, task: TaskConfig, search: SearchConfig, batch: int,
                      patch: int, steps: int, warmup: int = 1, channels_last: bool = False
                      ) -> dict[str, float]:
    """Make `warmup` + `steps` search steps of a fresh supernet of `space` for `task` under the
    optimisers, loss and clipping of `search`, on random batches of `batch` crops of `patch` px
    (HR; the LR input is `patch` / scale), in channels-last memory format if `channels_last`.
    Returns the median seconds of the `steps` timed steps, this process's peak RSS (MB) and the
    supernet's weight parameters."""
    torch.manual_seed(0)
    net = Supernet(space, task)
    fmt = memory_format(channels_last)
    net = net.to(memory_format=fmt)
    w_opt, a_opt = weight_optimizer(net, search), arch_optimizer(net, search)
    loss_fn = build_loss(search.loss, search.ssim_weight)
    scale = task.out_scale
    lq_size = patch // scale

    def crops() -> tuple[torch.Tensor, torch.Tensor]:
        gt = torch.rand(batch, task.channels, lq_size * scale, lq_size * scale)
        lq = torch.rand(batch, task.channels, lq_size, lq_size)
        return lq.contiguous(memory_format=fmt), gt

    times = []
    for _ in range(warmup + steps):
        w_batch, a_batch = crops(), crops()
        start = time.perf_counter()
        search_step(net, w_opt, a_opt, loss_fn, w_batch, a_batch, search.grad_clip)
        times.append(time.perf_counter() - start)
    return {"step_s": statistics.median(times[warmup:]), "peak_rss_mb": peak_rss_mb(),
            "params": sum(p.numel() for p in net.weight_parameters())}


def cell_work_ratio(layers: int, widths: list[float], levels: str = "width") -> float:
    """Cell work of Auto-DeepLab mode (Eq. 6: a cell per incoming path) over cell sharing
    (Eq. 5: one cell per node) for `layers` layers and level widths: a level's work is its width
    times its pixels, 1/4^level of them with resolution levels (`levels` "resolution")."""
    shared = eq6 = 0.0
    for layer in range(layers):
        for level in layer_levels(layer):
            work = widths[level] / (4 ** level if levels == "resolution" else 1)
            shared += work
            eq6 += len(sources(layer, level)) * work
    return eq6 / shared
