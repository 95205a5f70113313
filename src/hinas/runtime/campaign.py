"""A training campaign: one run trained in pieces of a stated length (`hinas train --budget 20m`,
then `hinas train --out RUN --resume --budget 20m`, ...) that together behave as one run, with a
record that says when more training stops paying (docs/training-recipes.md).

- Held-back scores: the validation images (held back from training) scored at every level of
  :meth:`hinas.tasks.TaskConfig.held_back_levels` (a blind denoiser at σ 15, 25 and 50 within
  its range, a blind JPEG model at qualities 10–40 within its range, else the evaluation level).
- `campaign.jsonl` in the run folder: a row when the run starts (iteration 0) and one at the end
  of every piece: piece, iteration, CPU and wall minutes of training so far, the held-back PSNR
  per level and their mean, the decay of the weight average scored (`ema`, 0: the raw weights),
  the gain over the last doubling of iterations (from the latest earlier piece at no more than
  half the iterations that scored the same weights), the learning rate, the phase (`start`,
  `train`, `decay`, `done`) and what the campaign stands at (`status`).
- Stop rule: the mean held-back PSNR gained less than `FLAT_GAIN_DB` since the last row at no
  more than half the iterations: the run has *flattened*. Under `train.schedule: constant` that
  starts the decay phase, which the next piece(s) run; then the run is done.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from hinas.config import TaskConfig
from hinas.runtime.runs import MetricsLog
from hinas.runtime.scoring import EvalPair, make_pairs, score_model

CAMPAIGN_FILE = "campaign.jsonl"
FLAT_GAIN_DB = 0.05
"""The stop rule: less held-back PSNR gained than this over the last doubling of iterations."""


class HeldBack:
    """The held-back images as test pairs at every level of the task's `held_back_levels`."""

    def __init__(self, images: dict[Path, np.ndarray], task: TaskConfig, seed: int, crop: int,
                 inputs: dict[Path, np.ndarray] | None = None):
        self.task = task
        self.levels: dict[str, tuple[TaskConfig, list[EvalPair]]] = {
            level.describe(): (level, make_pairs(images, level, seed, crop, inputs))
            for level in task.held_back_levels()}

    def score(self, net: nn.Module, device: str | torch.device) -> dict[str, float]:
        """Mean PSNR (dB) of `net` at every level, by the level's name (`denoise sigma=15`)."""
        return {name: score_model(net, pairs, level, device)[1]["psnr"]
                for name, (level, pairs) in self.levels.items()}


class CampaignLog(MetricsLog):
    """`campaign.jsonl`: the rows of a campaign, keyed by `iter`."""

    def __init__(self, folder: str | Path):
        super().__init__(Path(folder) / CAMPAIGN_FILE)

    def row(self, iteration: int, cpu_seconds: float, wall_seconds: float,
            psnr: dict[str, float], lr: float, ema: float = 0.0) -> dict:
        """The next row (not yet appended): its piece number, the scores of the weights scored
        (`ema`: the decay of the weight average scored, 0 the raw weights), and the gain over
        the last doubling of iterations (None without an earlier row of the same weights at
        ≤ half of `iteration`)."""
        rows = self.read()
        mean = float(np.mean(list(psnr.values())))
        return {"piece": rows[-1]["piece"] + 1 if rows and iteration else 0, "iter": iteration,
                "cpu_minutes": round(cpu_seconds / 60, 3),
                "wall_minutes": round(wall_seconds / 60, 3),
                "psnr": {k: round(v, 4) for k, v in psnr.items()}, "mean_psnr": round(mean, 4),
                "ema": ema, "gain_db": gain_over_doubling(rows, iteration, mean, ema), "lr": lr}


def gain_over_doubling(rows: list[dict], iteration: int, mean_psnr: float,
                       ema: float = 0.0) -> float | None:
    """Mean held-back PSNR gained since the latest of `rows` at no more than half `iteration`
    whose scores are of the same weights (`ema`; a row without it scored the raw weights), None
    when there is none but the untrained network's: from 0 no number of iterations is a
    doubling, and a young network's score can dip before it climbs. An average scores higher
    than the raw weights it follows, so a gain across the start of one is not the curve's."""
    earlier = [r for r in rows
               if 0 < r["iter"] <= iteration / 2 and r.get("ema", 0.0) == ema]
    return round(mean_psnr - earlier[-1]["mean_psnr"], 4) if earlier else None


def flattened(gain_db: float | None) -> bool:
    """The stop rule: the gain over the last doubling is known and below `FLAT_GAIN_DB`."""
    return gain_db is not None and gain_db < FLAT_GAIN_DB
