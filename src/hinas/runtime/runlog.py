"""The plain-text log of a run (`run.log`, next to `metrics.jsonl`): one timestamped,
human-readable line per epoch, validation and event, for reading and grepping, e.g.

    2026-11-25 21:30:01  epoch 3/26  phase search  w_loss 0.0123  a_loss 0.013  w_lr 0.024
    val_psnr 23.12  val_ssim 0.6021  seconds 12.3  peak_rss_mb 512

(one line in the file). `metrics.jsonl` stays the machine-readable record.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

FORMATS = {"val_psnr": ".2f", "best_val_psnr": ".2f", "val_ssim": ".4f", "seconds": ".1f",
           "val_seconds": ".1f", "peak_rss_mb": ".0f"}
"""Number formats by metric name; any other number is written with 4 significant digits."""


class RunLog:
    """Appends lines to a run's `run.log`; a new run (not a resume) starts an empty file."""

    def __init__(self, path: str | Path, resume: bool = False):
        self.path = Path(path)
        if not resume:
            self.path.unlink(missing_ok=True)

    def write(self, text: str) -> None:
        """Append `text` as one timestamped line."""
        with open(self.path, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {text}\n")

    def record(self, record: dict[str, Any], step: str, total: int | None) -> None:
        """Append a metrics record as `step i/total  key value  ...` (`step i` when the run has
        no planned total; None values left out)."""
        fields = [f"{step} {record[step]}" + (f"/{total}" if total is not None else "")]
        fields += [f"{key} {_format(value, FORMATS.get(key, '.4g'))}"
                   for key, value in record.items() if key != step and value is not None]
        self.write("  ".join(fields))


def _format(value: Any, spec: str) -> str:
    """A number in `spec`, a list as `[a, b, …]` of its formatted items, anything else as str."""
    if isinstance(value, float):
        return format(value, spec)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format(v, spec) for v in value) + "]"
    return str(value)


def run_header(job: str, cfg, data, split: dict[str, list[str]], done: int, step: str) -> str:
    """The first log line of a run (or of a resumed part): job, task, preset, data folders (and
    those of paired inputs) and how their images were split, device."""
    folders = " ".join(map(str, [data] if isinstance(data, (str, Path)) else data))
    if cfg.data.lq:
        folders += f" with degraded inputs {' '.join(cfg.data.lq)}"
    images = ", ".join(f"{len(paths)} {name.upper()}" for name, paths in split.items())
    where = f"resumed after {step} {done}" if done else "started"
    return (f"{job} {where}: {cfg.task.describe()}, {cfg.task.channels} channel(s), preset "
            f"{cfg.preset or 'none'}, seed {cfg.seed}, device {cfg.device}; data {folders} "
            f"({images} images); config in config.yaml")
