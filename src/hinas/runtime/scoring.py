"""Scoring a restoration method under the literature's conventions (docs/metrics.md): the test
pairs of a set of images, and the per-image PSNR/SSIM of a model or of any `restore` function.

Test inputs are made once per image by the task's degradation at its evaluation level
(`test_pair`): the noisy input from a generator seeded per image (so every method scores the same
noisy input), the SR low-resolution image by MATLAB bicubic of the modcropped HR, the JPEG
decoded at the evaluation quality; or, for paired data, the user's degraded file itself. Outputs
are clipped and rounded to uint8 before scoring. Search and training validate with the same
functions as `hinas eval`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hinas.config import TaskConfig
from hinas.data.degradations import task_degradation
from hinas.data.images import save_image
from hinas.errors import HinasError, NonFiniteError
from hinas.measures.metrics import SSIM_WINDOW, Convention, to_uint8
from hinas.runtime.inference import restore_array, run_on_channels, told
from hinas.runtime.runs import progress


@dataclass
class EvalPair:
    """One test image: its name, degraded input (0–255 float, HxWxC) and clean target (uint8)."""

    name: str
    lq: np.ndarray
    gt: np.ndarray


def center_window(h: int, w: int, size: int, multiple: int = 1, grid: int = 1
                  ) -> tuple[slice, slice]:
    """Rows and columns of the central `size`×`size` window of an h×w image (clipped to the
    image, its sides rounded down to `multiple`, its corner on multiples of `grid`)."""
    ch, cw = min(size, h), min(size, w)
    ch, cw = ch - ch % multiple, cw - cw % multiple
    top, left = (h - ch) // 2, (w - cw) // 2
    top, left = top - top % grid, left - left % grid
    return slice(top, top + ch), slice(left, left + cw)


def center_crop(img: np.ndarray, size: int, multiple: int = 1) -> np.ndarray:
    """Central `size`×`size` window (clipped to the image, rounded down to `multiple`)."""
    return img[center_window(*img.shape[:2], size, multiple)]


def make_pairs(images: dict[Path, np.ndarray], task: TaskConfig, seed: int,
               crop: int = 0, inputs: dict[Path, np.ndarray] | None = None) -> list[EvalPair]:
    """Test pairs for `images` (uint8 HxWxC by path); `crop` > 0 scores central crops only.
    `inputs` (paired data: the degraded image of each path, `task.out_scale` times smaller) are
    the inputs as they are, cropped at the same place, instead of the task's degradation."""
    pairs = []
    s = task.out_scale
    border = Convention.for_task(task.name, s).crop_border
    degradation = None if inputs is not None else task_degradation(task.at_evaluation())
    for path, img in images.items():
        lq = None if inputs is None else inputs[path]
        if crop:
            rows, cols = center_window(*img.shape[:2], crop, s, grid=1 if lq is None else s)
            img = img[rows, cols]
            if lq is not None:
                lq = lq[rows.start // s:rows.stop // s, cols.start // s:cols.stop // s]
        h, w = img.shape[:2]
        if min(h - h % s, w - w % s) - 2 * border < SSIM_WINDOW:
            need = SSIM_WINDOW + 2 * border
            raise HinasError(f"{path}: {w}x{h} image is too small to score ({task.describe()} "
                             f"needs at least {need}x{need} for the {SSIM_WINDOW}x{SSIM_WINDOW} "
                             f"SSIM window)")
        name = Path(path).name
        if lq is None:
            pairs.append(EvalPair(name, *degradation.test_pair(img, seed, name)))
        else:
            pairs.append(EvalPair(name, lq.astype(np.float64), img))
    return pairs


def score_model(model: nn.Module, pairs: list[EvalPair], task: TaskConfig,
                device: str | torch.device, tile: int = 0, overlap: int = 32,
                save_dir: str | Path | None = None, quiet: bool = True
                ) -> tuple[list[dict], dict[str, float]]:
    """Per-image rows (image, psnr, ssim, seconds) and their mean of `model` under the task's
    convention (a gray image through an RGB model: see `run_on_channels`; a noise-map model told
    the task's level: see `told`); with `save_dir`, the
    outputs as 8-bit PNGs; a progress bar unless `quiet`."""
    was_training = model.training
    model.eval()
    network = told(model, task)

    def restore(lq: np.ndarray) -> np.ndarray:
        return run_on_channels(
            lambda x: restore_array(network, x, task.out_scale, device, tile, overlap), lq,
            task.channels)

    try:
        return score_outputs(restore, pairs, task, save_dir, quiet)
    finally:
        model.train(was_training)


def score_outputs(restore: Callable[[np.ndarray], np.ndarray], pairs: list[EvalPair],
                  task: TaskConfig, save_dir: str | Path | None = None, quiet: bool = True
                  ) -> tuple[list[dict], dict[str, float]]:
    """Per-image rows (image, psnr, ssim, seconds) and their mean of any method
    `restore(lq) -> output` (0–255 float HxWxC arrays); with `save_dir`, the outputs (clipped and
    rounded, as scored) as `<image stem>.png`; a progress bar unless `quiet`. An output
    holding NaN or inf is a failure (NonFiniteError), never a score."""
    convention = Convention.for_task(task.name, task.out_scale)
    rows = []
    with progress(len(pairs), 0, quiet, f"eval {task.describe()}") as bar:
        for pair in pairs:
            start = time.perf_counter()
            out = restore(pair.lq)
            seconds = time.perf_counter() - start
            if not np.isfinite(out).all():
                raise NonFiniteError(f"{pair.name}: the restored image holds non-finite values "
                                     f"(NaN or inf)")
            rows.append({"image": pair.name, **convention.score(out, pair.gt),
                         "seconds": seconds})
            if save_dir is not None:
                save_image(Path(save_dir) / f"{Path(pair.name).stem}.png", to_uint8(out))
            bar.update(1)
    return rows, mean_scores(rows)


def mean_scores(rows: list[dict]) -> dict[str, float]:
    """Mean of every numeric column of per-image rows."""
    keys = [k for k, v in rows[0].items() if isinstance(v, float)] if rows else []
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}
