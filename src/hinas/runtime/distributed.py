"""Search and training on several processes with PyTorch's distributed engine (`torchrun`).

`torchrun --nproc_per_node=N -m hinas search|train ...` starts N processes (ranks); `launch`
reads torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK), joins the process group (`gloo` on
the CPU, `nccl` on CUDA; `distributed.backend` in the config picks another) and returns the
`Context` every run consults. Without torchrun the context is the single process and every
method below is a no-op, so the one-process path is unchanged.

What a distributed run does:

- Batches are global: `search.batch_size` / `train.batch_size` is the effective batch, and each
  rank takes its own contiguous share of every batch (`batch_size / world_size` samples, so the
  world size must divide it). A sample is a pure function of (run seed, epoch, index) and the index
  depends on the rank, so ranks draw different, seeded crops whose union is exactly the batch a
  single process would draw.
- Weights train under DistributedDataParallel (gradients averaged over ranks in the backward
  pass); α and β are left out of DDP and their gradients are averaged by hooks that fire when they
  accumulate, so the architecture optimizer sees the same gradients, and α/β stay identical, on
  every rank. Every loss value is averaged over ranks before it is checked, so a NaN stops all ranks
  together. At the end of every epoch a checksum of α/β and of the weights is compared across ranks,
  and a mismatch stops the run with an error.
- Validation runs on rank 0 only and its scores are broadcast, so every rank takes the same
  best-supernet decision; only rank 0 writes run files (atomically) and the others wait at a
  barrier. The run folder must be visible to every rank (one machine, or a shared file system).
- `config.yaml` records `distributed.world_size` and `distributed.backend`; `--resume` needs the
  same world size (a different one is refused: the per-rank crops, hence the run, would differ).
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, Subset

from hinas.config import Config
from hinas.errors import HinasError
from hinas.runtime.execution import check_device

BACKENDS = {"cpu": ("gloo",), "cuda": ("nccl", "gloo")}
"""Process-group backends that work with each device type; the first is the default."""
T = TypeVar("T")


class RankLost(HinasError):
    """Another process of the distributed run stopped, so this one cannot go on."""


def environment_world_size() -> int:
    """The number of processes torchrun started (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def environment_rank() -> int:
    """This process's rank as torchrun set it (0 without torchrun)."""
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """Whether this process is rank 0 (the one that writes files and prints errors)."""
    return environment_rank() == 0


@dataclass(frozen=True)
class Context:
    """This process's place in the run: its rank, the world size and its device."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        """Whether the run spans several processes."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.enabled:
            _collective(dist.barrier)

    def on_main(self, compute: Callable[[], T]) -> T:
        """`compute()` run on rank 0 only, its result sent to every rank."""
        if not self.enabled:
            return compute()
        box = [compute() if self.is_main else None]
        _collective(dist.broadcast_object_list, box, src=0)
        return box[0]

    def rank_batch(self, batch_size: int) -> int:
        """Samples of a global batch of `batch_size` that this rank takes."""
        return batch_size // self.world_size

    def batch_slice(self, batch_size: int) -> slice:
        """The positions in a global batch of `batch_size` that this rank takes: the contiguous
        block of `rank_batch` samples at position `rank`."""
        b = self.rank_batch(batch_size)
        return slice(self.rank * b, (self.rank + 1) * b)

    def shard(self, dataset: Dataset, batch_size: int) -> Dataset:
        """This rank's share of `dataset` read in global batches of `batch_size`."""
        if not self.enabled:
            return dataset
        mine = range(batch_size)[self.batch_slice(batch_size)]
        return Subset(dataset, [i for i in range(len(dataset)) if i % batch_size in mine])

    def wrap(self, net: nn.Module, arch_params: list[nn.Parameter] | None = None,
             find_unused: bool = False) -> nn.Module:
        """`net` for the weight steps: under DistributedDataParallel when distributed, with
        `arch_params` (α, β) left out of it and averaged over ranks by gradient hooks instead."""
        if not self.enabled:
            return net
        arch_params = list(arch_params or [])
        names = {id(p): n for n, p in net.named_parameters()}
        ignored = [names[id(p)] for p in arch_params]
        # DDP's reducer spells a top-level parameter ".name" and its other checks "name"
        ignored += ["." + n for n in ignored if "." not in n]
        nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
            net, ignored)
        for p in arch_params:
            p.register_post_accumulate_grad_hook(_average_grad)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(net, device_ids=ids,
                                                   find_unused_parameters=find_unused)

    def check_same(self, groups: dict[str, Iterable[torch.Tensor]], where: str) -> None:
        """Raise HinasError unless every group of tensors is bit-identical on all ranks."""
        if not self.enabled:
            return
        mine = {name: checksum(tensors) for name, tensors in groups.items()}
        every: list[Any] = [None] * self.world_size
        _collective(dist.all_gather_object, every, mine)
        for name in groups:
            sums = [d[name] for d in every]
            if len(set(sums)) > 1:
                raise HinasError(f"{name} differ across ranks {where} (checksums "
                                 f"{', '.join(s[:12] for s in sums)}); the ranks diverged")

    def describe(self, batch_size: int) -> dict[str, int]:
        """World size and batch sizes, for the log."""
        return {"world_size": self.world_size, "effective_batch": batch_size,
                "rank_batch": self.rank_batch(batch_size)}


def checksum(tensors: Iterable[torch.Tensor]) -> str:
    """SHA-256 of the bytes of `tensors` (in order)."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def mean_over_ranks(value: torch.Tensor) -> float:
    """The mean of scalar `value` over all ranks (the value itself in a single process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value.item()
    total = value.detach().float().reshape(1).clone()
    _collective(dist.all_reduce, total)
    return total.item() / dist.get_world_size()


def _average_grad(param: torch.Tensor) -> None:
    _collective(dist.all_reduce, param.grad)
    param.grad.div_(dist.get_world_size())


def _collective(op: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run collective `op`; a peer that went away becomes a one-line RankLost error."""
    try:
        return op(*args, **kwargs)
    except (RuntimeError, dist.DistError) as err:
        raise RankLost(_lost_message(err)) from None


def _lost_message(err: BaseException | None = None) -> str:
    reason = f" ({type(err).__name__})" if err is not None else ""
    return (f"another process of the distributed run stopped{reason}; the run folder holds the "
            f"last finished epoch: continue with --resume and the same number of processes")


@contextmanager
def peer_failures():
    """Turn the error a collective raises when another rank has gone away (a gloo or NCCL
    connection error, e.g. in DDP's backward pass) into a one-line RankLost."""
    try:
        yield
    except (RuntimeError, dist.DistError) as err:
        text = str(err)
        if not (isinstance(err, dist.DistError) or "gloo" in text or "NCCL" in text):
            raise
        raise RankLost(_lost_message(err)) from None


PEER_REPORT_SECONDS = 60.0
"""How long a rank other than 0 that stopped on an error waits for rank 0 to report it."""


def leave_report_to_rank_zero(message: str) -> None:
    """On a rank other than 0 that stopped on an error (every rank meets most errors): wait for
    rank 0, which reports it, to end (torchrun then stops this process), since a rank that ends
    first has torchrun stop rank 0, perhaps before its report. An error of this rank alone
    (rank 0 still running after `PEER_REPORT_SECONDS`) is reported here, with the rank."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # torchrun's stop ends this wait silently
    time.sleep(PEER_REPORT_SECONDS)
    print(f"hinas: error: rank {environment_rank()}: {message}", file=sys.stderr, flush=True)


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    """torchrun sends SIGTERM to the survivors when a rank dies: stop with one line."""
    raise RankLost(_lost_message())


def launch(cfg: Config, batch_size: int, resume: bool, other_batches: tuple[int, ...] = ()
           ) -> tuple[Config, Context]:
    """Join the process group torchrun describes (if any) for a run of `cfg` with global batch
    `batch_size` (and `other_batches`, e.g. the search's A-step batch, which every process shares
    alike); returns the config with `distributed` filled in and this process's context.
    On `resume` the world size must be the one `cfg` records; a CUDA device must exist if asked
    for."""
    world, rank = environment_world_size(), environment_rank()
    device = check_device(cfg.device)
    recorded = cfg.distributed.world_size
    if resume and recorded != world:
        raise HinasError(f"this run was made by {recorded} process(es); resume it with "
                         f"{recorded} (torchrun --nproc_per_node={recorded}), not {world}")
    if world == 1:
        return dataclasses.replace(cfg, distributed=dataclasses.replace(
            cfg.distributed, world_size=1)), Context(device=device)
    kind = device.type
    backend = cfg.distributed.backend or BACKENDS[kind][0]
    if backend not in BACKENDS[kind]:
        raise HinasError(f"distributed.backend {backend!r} does not run on {kind} devices; "
                         f"use {' or '.join(BACKENDS[kind])}")
    if not {"gloo": dist.is_gloo_available, "nccl": dist.is_nccl_available}[backend]():
        raise HinasError(f"this PyTorch build has no {backend} backend")
    for size in (batch_size, *other_batches):
        if size % world:
            raise HinasError(f"the batch size {size} is not divisible by the {world} "
                             f"processes (every process takes an equal share of each batch)")
    if kind == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world)
        atexit.register(dist.destroy_process_group)
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
    cfg = dataclasses.replace(cfg, distributed=dataclasses.replace(
        cfg.distributed, world_size=world, backend=backend))
    if rank == 0:
        print(f"hinas: {world} processes ({backend}), effective batch {batch_size} "
              f"({batch_size // world} per process)", file=sys.stderr, flush=True)
    return cfg, Context(rank, world, device)
