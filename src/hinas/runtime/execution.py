"""How training steps execute on a device: automatic mixed precision, channels-last memory format
and data loading in worker processes.

- `search.amp` / `train.amp`: `off` (full fp32), `bf16`, `fp16`, or `auto`: on a GPU bf16 where
  it supports it, else fp16; on a CPU bf16 where oneDNN runs it natively (AVX-512 BF16 or AMX),
  else full fp32, since emulated bf16 is slower than fp32. Forward passes run under
  `torch.autocast`; the loss is computed in fp32; with fp16 each optimizer gets its own gradient
  scaler (fp16 gradients underflow without one, bf16 ones do not). Validation always runs in
  fp32. Every preset trains and searches in fp32 by default: bf16 is faster on such CPUs but
  once diverged where fp32 did not (docs/training-recipes.md).
- `search.channels_last` / `train.channels_last` (`--channels-last`): network and batches in
  channels-last (NHWC) memory format, which convolutions on recent GPUs (and oneDNN on CPUs) run
  faster; results equal the default format up to float rounding.
- `data.workers`: batches are made in that many worker processes. Crops and noise are a pure
  function of (seed, epoch, index) (:class:`hinas.data.datasets.PatchDataset`), so they do not
  depend on the number of workers; the global generators of each worker are still seeded from the
  run seed, the rank and the worker, so any other randomness in a worker is reproducible too.
"""

from __future__ import annotations

import os
import platform
import random
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from hinas.errors import HinasError

DEVICE_TYPES = ("cpu", "cuda")
"""The kinds of device hinas runs on."""


def check_device(name: str | torch.device) -> torch.device:
    """The device `name` (`cpu`, `cuda`, `cuda:N`), checked to exist here before any work:
    HinasError naming it and what this machine has otherwise."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise HinasError(f"--device {name}: not a device; use cpu or cuda[:N]") from None
    if device.type not in DEVICE_TYPES:
        raise HinasError(f"--device {name}: hinas runs on cpu or cuda[:N], not "
                         f"{device.type}; use --device cpu")
    if device.type == "cuda":
        if not torch.backends.cuda.is_built():
            raise HinasError(f"--device {name} requested but this torch has no CUDA; use "
                             f"--device cpu")
        count = torch.cuda.device_count()
        if count == 0:
            raise HinasError(f"--device {name} requested but no CUDA device is available; "
                             f"use --device cpu")
        if device.index is not None and device.index >= count:
            raise HinasError(f"--device {name}: this machine has {count} CUDA device(s), "
                             f"cuda:0 to cuda:{count - 1}")
    return device


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of AMP `mode` on `device` (None: full precision)."""
    if mode == "off":
        return None
    if mode == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if native_cpu_bf16() else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[mode]


def native_cpu_bf16() -> bool:
    """True where oneDNN runs bf16 natively on this CPU (AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


class Precision:
    """Mixed-precision policy of a run: autocast for the forward pass; for fp16, loss scaling
    with one `torch.amp.GradScaler` per optimizer."""

    def __init__(self, mode: str, device: torch.device):
        self.device, self.dtype = device, amp_dtype(mode, device)
        self.scalers: dict[int, torch.amp.GradScaler] = {}

    def autocast(self):
        """Context for the forward pass."""
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _scaler(self, optimizer: torch.optim.Optimizer) -> torch.amp.GradScaler | None:
        if self.dtype != torch.float16:
            return None
        return self.scalers.setdefault(id(optimizer), torch.amp.GradScaler(self.device.type))

    def backward(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backpropagate `loss` (scaled for fp16) towards `optimizer`'s parameters."""
        scaler = self._scaler(optimizer)
        (loss if scaler is None else scaler.scale(loss)).backward()

    def step(self, optimizer: torch.optim.Optimizer, grad_clip: float = 0.0) -> None:
        """Clip the (unscaled) gradients to norm `grad_clip` (0: no clipping) and update."""
        scaler = self._scaler(optimizer)
        if scaler is not None:
            scaler.unscale_(optimizer)
        if grad_clip > 0:
            params = [p for g in optimizer.param_groups for p in g["params"]]
            nn.utils.clip_grad_norm_(params, grad_clip)
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update()


FULL_PRECISION = Precision("off", torch.device("cpu"))
"""The default policy: fp32, no autocast, no scaling."""


def memory_format(channels_last: bool) -> torch.memory_format:
    """The memory format for networks and batches."""
    return torch.channels_last if channels_last else torch.contiguous_format


def seed_worker(worker_id: int) -> None:
    """Seed a loader worker's Python, NumPy and torch generators from the seed the loader gave
    it (derived from the loader's generator and the worker id)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def make_loader(dataset: Dataset, batch_size: int | None, workers: int,
                seed: Any) -> DataLoader:
    """An in-order loader of `dataset` with `workers` worker processes whose generators are
    seeded from `seed` (an int or a sequence of ints, e.g. (run seed, rank, epoch))."""
    generator = torch.Generator().manual_seed(
        int(np.random.SeedSequence(seed).generate_state(1)[0]))
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                      drop_last=False, worker_init_fn=seed_worker if workers else None,
                      generator=generator)


def describe_device(device: str | torch.device) -> str:
    """The device in words, e.g. `cpu (AMD EPYC, 2 cores; torch 2.13.0, 2 threads)` or
    `cuda:0 (NVIDIA H100, torch 2.13.0)`."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)}, torch {torch.__version__})"
    return (f"{device} ({_cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads)")


def machine_class(device: str | torch.device) -> str:
    """The class of machine a latency is a property of: the GPU's name, or the CPU's model and
    the threads torch uses (`AMD EPYC, 1 thread(s)`)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{_cpu_model()}, {torch.get_num_threads()} thread(s)"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
