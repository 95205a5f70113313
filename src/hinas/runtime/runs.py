"""The run folder as the record of an experiment: JSONL metrics, atomic checkpoints that hold every
piece of state needed for an exact resume (model, optimizers, schedulers, RNG states, progress)."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pickle
import random
import resource
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from hinas.config import flatten
from hinas.errors import HinasError, warn
from hinas.io import atomic_write, atomic_write_text
from hinas.models.folder import GENOTYPE_FILE, SPEC_FILE, check_finite
from hinas.runtime.distributed import is_main_process


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
    with `weights_only=True`. Non-finite model weights (`state["model"]`) are never written:
    NonFiniteError."""
    check_finite(state.get("model", {}), "the weights")
    blob = io.BytesIO()  # torch hides the OSError of a failed write: write the bytes ourselves
    torch.save(state, blob)
    atomic_write(path, lambda f: f.write(blob.getbuffer()))


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


LOCK_FILE = ".hinas.lock"
RUN_KINDS = {"search": "a search", "train": "a training run"}
"""The commands that keep a run folder, and how messages name the run each one holds."""
START_FILES = frozenset({"config.yaml", "run.log", "metrics.jsonl", "arch_history.jsonl",
                         "resumes.jsonl", "campaign.jsonl", SPEC_FILE, GENOTYPE_FILE})
"""What a run writes before its first checkpoint: a folder holding only these (genotype.json
only beside model.json, as a training run writes them at its start; a search writes its
genotype last) is a run that never wrote a checkpoint, reused by a new run."""


def run_kind(path: Path) -> str | None:
    """The key of `RUN_KINDS` of the run that folder `path` holds: `train` (a training run
    writes model.json when it starts), `search` (a config.yaml without it), or None."""
    if (path / SPEC_FILE).is_file():
        return "train"
    return "search" if (path / "config.yaml").is_file() else None


def check_resumable(path: str | Path, kind: str) -> None:
    """HinasError unless folder `path` holds a run of `kind` (a key of `RUN_KINDS`) that
    `--resume` can continue: one of that kind, with a checkpoint."""
    path = Path(path)
    held = run_kind(path)
    if held is None:
        raise HinasError(f"{path}: nothing to resume (no run in it: no config.yaml)")
    if held != kind:
        raise HinasError(f"{path}: holds {RUN_KINDS[held]}, not {RUN_KINDS[kind]}; resume it "
                         f"with `hinas {held} --resume --out {path}`, or choose another --out")
    if not (path / "last.pt").is_file():
        raise HinasError(f"{path}: nothing to resume: the run never wrote a checkpoint (no "
                         f"last.pt); start it again without --resume (a folder that holds no "
                         f"checkpoint is reused)")


def _never_checkpointed(path: Path, held: set[str]) -> bool:
    """Whether folder `path`, holding the entries `held`, is a run that never wrote a
    checkpoint."""
    return ("config.yaml" in held and held <= START_FILES
            and (GENOTYPE_FILE not in held or SPEC_FILE in held)
            and all((path / name).is_file() for name in held))


class RunFolder:
    """A run folder held by one process for the length of a run: `with RunFolder(...)` takes an
    exclusive lock on its `.hinas.lock` file, released (and the file removed) on leaving; the
    kernel releases it if the process dies first, and the next run reuses the file.

    Claiming it refuses a path that is a file, a folder another run holds, for `resume` a
    folder without a run of `kind` (a key of `RUN_KINDS`) to continue (:func:`check_resumable`),
    and, for a new run, a folder with anything in it (a stale checkpoint or log of another run
    would otherwise be mixed into this one) except the files of a run that never wrote a
    checkpoint (`START_FILES`), which are removed: such a run can only start again. Temporary
    files left by a killed run are removed. In a distributed run only rank 0 (the one that
    writes) claims the folder; the other ranks pass.
    """

    def __init__(self, path: str | Path, resume: bool, kind: str):
        self.path, self._lock, self.created = Path(path), None, False
        if not is_main_process():
            return
        if self.path.exists() and not self.path.is_dir():
            raise HinasError(f"{self.path}: is a file; --out takes a run folder")
        self.created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise HinasError(f"{self.path}: cannot create the run folder ({err.strerror})"
                             ) from None
        self._lock = self._take_lock()
        for stale in self.path.glob(".*.tmp*"):
            stale.unlink(missing_ok=True)
        held = sorted(p.name for p in self.path.iterdir() if p.name != LOCK_FILE)
        if resume:
            try:
                check_resumable(self.path, kind)
            except HinasError:
                self.__exit__()
                raise
        elif _never_checkpointed(self.path, set(held)):
            warn(f"{self.path}: holds a run that never wrote a checkpoint ({', '.join(held)}); "
                 f"it is replaced")
            for name in held:
                (self.path / name).unlink()
        elif held:
            self.release()
            if "last.pt" in held:
                raise HinasError(f"{self.path}: holds {RUN_KINDS[run_kind(self.path) or kind]} "
                                 f"already; use --resume or another --out")
            raise HinasError(f"{self.path}: not empty (holds {', '.join(held[:3])}"
                             f"{', ...' if len(held) > 3 else ''}); a new run needs a new or "
                             f"empty folder: choose another --out")

    def _take_lock(self):
        """The open, locked lock file; a file that a finishing run removed while this one
        waited for it is no lock, so it is opened again."""
        for _ in range(5):
            try:
                lock = open(self.path / LOCK_FILE, "a")  # held open for the whole run
            except OSError as err:
                raise HinasError(f"{self.path}: cannot create the run folder ({err.strerror})"
                                 ) from None
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()
                break
            if self._is_current(lock):
                return lock
            lock.close()
        raise HinasError(f"{self.path}: another hinas run is using this folder; wait for it to "
                         f"end or choose another --out")

    def _is_current(self, lock) -> bool:
        try:
            return os.fstat(lock.fileno()).st_ino == (self.path / LOCK_FILE).stat().st_ino
        except OSError:
            return False

    def release(self) -> None:
        """Let other runs use the folder (the lock file is removed)."""
        if self._lock is not None:
            if self._is_current(self._lock):
                (self.path / LOCK_FILE).unlink(missing_ok=True)
            self._lock.close()
            self._lock = None

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        """Release the folder; one this run created and left empty (a failed input check) is
        removed."""
        self.release()
        if self.created:
            with suppress(OSError):
                self.path.rmdir()  # only if empty


RESUME_CHANGEABLE = ("search.epochs", "search.w_lr", "search.w_lr_min", "search.a_lr",
                     "search.amp", "train.iters", "train.lr", "train.lr_min", "train.amp",
                     "train.decay_from", "train.decay_iters", "train.ema", "device",
                     "data.workers")
"""Settings a resumed run may change: learning rates, the length of the run and of its decay,
the weight average (a run may start averaging), where and in which precision it runs.
Any other change would make the resumed run a different experiment."""


def resume_changes(saved: dict[str, Any], current: dict[str, Any], source: str | Path,
                   irrelevant: tuple[str, ...] = ()) -> dict[str, tuple[Any, Any]]:
    """The settings of `current` (a config dict) that differ from `saved` (the checkpoint's), as
    {key: (old, new)}; HinasError naming `source` for any not in `RESUME_CHANGEABLE`. Settings
    the checkpoint does not hold (added by a later hinas) and those under an `irrelevant` prefix
    (e.g. `search.` for a training run) are not changes, but for the levels of another task
    (a task holds only its own fields: those of a changed task are changes too)."""
    old, new = flatten(saved), flatten(current)
    other_task = old.get("task.name") != new.get("task.name")
    changes = {key: (old.get(key), value) for key, value in new.items()
               if (key in old or (other_task and key.startswith("task.")))
               and old.get(key) != value and not key.startswith(irrelevant)}
    refused = sorted(set(changes) - set(RESUME_CHANGEABLE))
    if refused:
        raise HinasError(f"{source}: {', '.join(refused)} cannot change on --resume (only "
                         f"{', '.join(RESUME_CHANGEABLE)} can); start a new run in another --out")
    return changes


def record_resume_changes(out: Path, at: dict[str, int], changes: dict[str, tuple[Any, Any]],
                          config: dict[str, Any]) -> None:
    """Log settings changed on resume: a warning line, a record in `resumes.jsonl` (`at` says
    where the run resumed), and the run folder's config.yaml rewritten with the new values."""
    warn("resumed with changed settings: " + ", ".join(
        f"{key} {old} -> {new}" for key, (old, new) in changes.items()))
    MetricsLog(out / "resumes.jsonl").append(
        {**at, "changes": {key: list(pair) for key, pair in changes.items()}})
    atomic_write_text(out / "config.yaml", yaml.safe_dump(config, sort_keys=False))


def set_learning_rate(optimizer: torch.optim.Optimizer,
                      scheduler: torch.optim.lr_scheduler.LRScheduler, base: float,
                      current: float) -> None:
    """Give every group of `optimizer` the base rate `base` (also `scheduler`'s) and the current
    rate `current`: a resumed run whose learning rate or length was changed."""
    scheduler.base_lrs = [base for _ in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["initial_lr"], group["lr"] = base, current


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
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as err:
            raise HinasError(f"{self.path}: cannot write ({err.strerror or err})") from None

    def read(self) -> list[dict[str, Any]]:
        """All records, skipping a torn last line."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:  # a torn last line (or a number Python will not convert)
                continue
        return out


def progress(total: int, initial: int, quiet: bool, desc: str) -> tqdm:
    """A progress bar with ETA (disabled with `quiet`)."""
    return tqdm(total=total, initial=initial, disable=quiet, desc=desc, dynamic_ncols=True,
                smoothing=0.1, file=sys.stderr)


class Timer:
    """Wall-clock seconds since construction."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        """Elapsed seconds."""
        return time.perf_counter() - self.start
