"""TensorBoard scalars beside metrics.jsonl (`--tensorboard`, the optional `tensorboard` extra).

metrics.jsonl stays the record of a run; this only mirrors its numbers as TensorBoard scalars in
`RUNDIR/tensorboard/` so that runs can be watched live with `tensorboard --logdir RUNDIR`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hinas.errors import HinasError


class ScalarLog:
    """Writes the numeric fields of metric records as TensorBoard scalars (a no-op when off)."""

    def __init__(self, folder: str | Path, enabled: bool):
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise HinasError('--tensorboard needs the tensorboard package: '
                             'pip install "hinas[tensorboard]"') from None
        self.writer = SummaryWriter(str(folder))

    def add(self, record: dict[str, Any], step_key: str) -> None:
        """Write every finite number of `record` at step `record[step_key]`."""
        if self.writer is None:
            return
        step = record[step_key]
        for key, value in record.items():
            if key != step_key and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value):
                self.writer.add_scalar(key, value, step)
        self.writer.flush()
