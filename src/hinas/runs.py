"""The run folder as the record of an experiment: JSONL metrics, atomic checkpoints that hold every
piece of state needed for an exact resume (model, optimizers, schedulers, RNG states, progress)."""

from __future__ import annotations

import json
import pickle
import random
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from hinas.errors import HinasError
from hinas.io import atomic_write


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20


def rng_state() -> dict[str, Any]:
    """The state of every global random generator (Python, NumPy, torch), as tensors and plain
    values only (so a checkpoint loads with `weights_only=True`)."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(),
            "numpy": {"kind": kind, "key": torch.from_numpy(key.astype(np.int64)), "pos": pos,
                      "has_gauss": has_gauss, "cached_gaussian": cached},
            "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by `rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically (temp file + rename). `state` must hold only tensors and
    plain values (dict, list, tuple, str, int, float, bool, None): checkpoints are read back
    with `weights_only=True`."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`, with a one-line error if unusable.

    Only tensors and plain values are unpickled (`weights_only=True`): a file that holds any
    other object, such as one crafted to run code when loaded, is refused and nothing in it runs.
    """
    path = Path(path)
    if not path.exists():
        raise HinasError(f"{path}: no checkpoint to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise HinasError(f"{path}: refused: the checkpoint holds objects other than tensors and "
                         f"plain values (not written by hinas; loading it could run code)"
                         ) from None
    except Exception as err:  # torch raises many types for a corrupt file
        raise HinasError(f"{path}: unreadable checkpoint ({type(err).__name__})") from None
    if not isinstance(state, dict):
        raise HinasError(f"{path}: not a hinas checkpoint")
    return state


class MetricsLog:
    """Append-only JSONL log; on resume, lines beyond the resumed point are dropped."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def truncate(self, keep: int, key: str) -> None:
        """Keep only records whose `key` is ≤ `keep` (drop work the resume will redo)."""
        records = [r for r in self.read() if r.get(key, 0) <= keep]
        atomic_write(self.path, lambda f: f.write(
            "".join(json.dumps(r) + "\n" for r in records).encode()))

    def append(self, record: dict[str, Any]) -> None:
        """Add one record as a JSON line."""
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def read(self) -> list[dict[str, Any]]:
        """All records, skipping a torn last line."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out


def progress(total: int, initial: int, quiet: bool, desc: str) -> tqdm:
    """A progress bar with ETA (disabled with `quiet`)."""
    return tqdm(total=total, initial=initial, disable=quiet, desc=desc, dynamic_ncols=True,
                smoothing=0.1, file=sys.stderr)


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


class Timer:
    """Wall-clock seconds since construction."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        """Elapsed seconds."""
        return time.perf_counter() - self.start
