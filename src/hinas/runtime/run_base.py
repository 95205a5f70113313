"""What a search and a training run do alike in their run folder (docs/run-folders.md): join the
process group and seed, put the network on its device in the job's precision with the job's loss,
start fresh (config.yaml written, old logs removed) or resume from `last.pt` (settings a resume
may change accepted and recorded, the logs cut back to the checkpoint), write `last.pt`
atomically, stop on a non-finite value with a one-line error, and keep the run's logs
(metrics.jsonl, run.log, TensorBoard scalars) and its progress bar."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from hinas.config import Config, JobConfig, save_config
from hinas.errors import HinasError
from hinas.measures.losses import build_loss
from hinas.runtime.distributed import launch
from hinas.runtime.execution import Precision, memory_format
from hinas.runtime.runlog import RunLog, run_header
from hinas.runtime.runs import (
    MetricsLog,
    load_checkpoint,
    progress,
    record_resume_changes,
    resume_changes,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from hinas.runtime.scalars import ScalarLog
from hinas.runtime.scoring import score_model


class Run:
    """A run of the job whose settings are config section `section` (`search`, `train`), in run
    folder `out`, counting its progress in `unit`s (`epoch`, `iteration`; `step` is the key of
    its metrics records, checkpoint best and resume records).

    A subclass builds its data and network (placed by `_place`), then calls `_open`; it says
    what its checkpoint holds beyond the model, the best score, the RNG states and the config
    (`_own_state`, `_load_own_state`), how a resume takes changed settings (`_resume_with`), and
    how its divergence error reads (`_diverged`).
    """

    section: ClassVar[str]
    step: ClassVar[str]
    unit: ClassVar[str]
    not_compared: ClassVar[tuple[str, ...]] = ()
    """Config key prefixes a resume does not compare with the checkpoint's (another job's)."""

    def __init__(self, cfg: Config, out: str | Path, resume: bool, quiet: bool,
                 other_batches: tuple[int, ...] = ()):
        cfg, self.dist = launch(cfg, getattr(cfg, self.section).batch_size, resume,
                                other_batches)
        self.cfg, self.out, self.resumed = cfg, Path(out), resume
        self.quiet, self.device = quiet or not self.dist.is_main, self.dist.device
        if resume and not self.last.exists():
            raise HinasError(f"{self.out}: nothing to resume (no last.pt)")
        self.best = {"psnr": -math.inf, "ssim": 0.0, self.step: 0}
        self.saved = 0  # the progress last.pt holds
        seed_everything(cfg.seed)

    @property
    def job(self) -> JobConfig:
        """The job's settings (`cfg.search` or `cfg.train`)."""
        return getattr(self.cfg, self.section)

    @property
    def last(self) -> Path:
        """The checkpoint a resume continues from."""
        return self.out / "last.pt"

    @property
    def done(self) -> int:
        """Epochs or iterations completed."""
        raise NotImplementedError

    def _place(self, net: nn.Module) -> nn.Module:
        """`net` on the run's device in the job's memory format; sets the job's precision and
        loss."""
        self.precision = Precision(self.job.amp, self.device)
        self.loss_fn = build_loss(self.job.loss, self.job.ssim_weight)
        return net.to(self.device, memory_format=memory_format(self.job.channels_last))

    def _open(self, job: str, data: Any, split: dict[str, list[str]], logs: tuple = (),
              arch_params: list[nn.Parameter] | None = None, find_unused: bool = False) -> None:
        """Open the logs (metrics.jsonl and `logs`, each cut back on resume and removed on a
        fresh start), resume from last.pt or write config.yaml, wrap the network for the weight
        steps (`arch_params` left out, see :meth:`Context.wrap`) and write the run's first log
        line (`job` names it; `data` and `split`, its images)."""
        self.metrics = MetricsLog(self.out / "metrics.jsonl")
        self.logs = (self.metrics, *logs)
        self.log = RunLog(self.out / "run.log", self.resumed or not self.dist.is_main)
        self.scalars = ScalarLog(self.out / "tensorboard",
                                 self.cfg.runtime.tensorboard and self.dist.is_main)
        if self.resumed:
            self._restore(load_checkpoint(self.last))
        elif self.dist.is_main:
            save_config(self.cfg, self.out / "config.yaml")
            self._record_start()
            for log in self.logs:
                log.path.unlink(missing_ok=True)
        self.model = self.dist.wrap(self.net, arch_params, find_unused)
        if self.dist.is_main:
            self.log.write(run_header(job, self.cfg, data, split, self.done, self.unit))
        self.dist.barrier()

    def _record_start(self) -> None:
        """Write what a fresh run records besides config.yaml (rank 0)."""

    def _state(self) -> dict[str, Any]:
        """Everything an exact resume needs (what `last.pt` holds)."""
        return {"model": self.net.state_dict(), **self._own_state(), "best": dict(self.best),
                "rng": rng_state(), "config": self.cfg.to_dict()}

    def _own_state(self) -> dict[str, Any]:
        """The subclass's part of the checkpoint: optimizers, schedulers, progress."""
        raise NotImplementedError

    def _load_own_state(self, state: dict[str, Any]) -> None:
        """Take back what `_own_state` saved."""
        raise NotImplementedError

    def _restore(self, state: dict[str, Any]) -> None:
        """Continue from checkpoint `state`: refuse settings a resume may not change, load the
        state, cut the logs back to it, take the changed settings and record them."""
        changes = resume_changes(state["config"], self.cfg.to_dict(), self.last,
                                 self.not_compared)
        self.net.load_state_dict(state["model"])
        self._load_own_state(state)
        self.best, self.saved = state["best"], self.done
        set_rng_state(state["rng"])
        for log in self.logs if self.dist.is_main else ():
            log.truncate(self.done, self.step)
        changes = self._resume_with(changes)
        if changes and self.dist.is_main:
            record_resume_changes(self.out, {self.step: self.done}, changes, self.cfg.to_dict())

    def _resume_with(self, changes: dict[str, tuple[Any, Any]]) -> dict[str, tuple[Any, Any]]:
        """Apply the settings changed on resume (`{key: (old, new)}`) to the optimizers and
        schedules; returns the changes as they were applied."""
        raise NotImplementedError

    def _save_last(self) -> None:
        """Write last.pt (rank 0) and note the progress it holds."""
        if self.dist.is_main:
            save_checkpoint(self.last, self._state())
        self.saved = self.done

    @contextmanager
    def _guarded(self, where: str, problem: str = "") -> Iterator[None]:
        """Stop the run with its one-line divergence error when a non-finite value
        (FloatingPointError) comes up inside, at `where` (`problem` goes before the value)."""
        try:
            yield
        except FloatingPointError as err:
            raise self._diverged(f"{problem}{err}", where) from None

    def _diverged(self, problem: str, where: str) -> HinasError:
        """The error of a run stopped by `problem` at `where`: which checkpoint is kept and what
        to try."""
        raise NotImplementedError

    def _score_validation(self) -> dict[str, float]:
        """PSNR / SSIM of the network on the validation pairs (rank 0 scores, all get them)."""
        return self.dist.on_main(
            lambda: score_model(self.evaluated, self.val_pairs, self.cfg.task, self.device)[1])

    @property
    def evaluated(self) -> nn.Module:
        """The network that validation scores."""
        return self.net

    def _log(self, record: dict[str, Any], total: int | None) -> None:
        """Add a metrics record to metrics.jsonl, run.log (`step` of `total`) and the scalars."""
        self.metrics.append(record)
        self.log.record(record, self.step, total)
        self.scalars.add(record, self.step)

    def _bar(self, total: int | None, initial: int, what: str):
        """The run's progress bar over `total` steps, `initial` of them done (`what` and the task
        name it)."""
        return progress(total, initial, self.quiet, f"{what} {self.cfg.task.describe()}")
