"""Scoring restoration models under the literature's conventions (docs/metrics.md), and whole-image
or tiled inference (docs/decisions.md §3).

Test inputs are made once per image: the noisy input from a generator seeded per image (so every
method scores the same noisy input), the SR low-resolution image by MATLAB bicubic of the modcropped
HR. Outputs are clipped and rounded to uint8 before scoring.

`evaluate_model` / `evaluate_classical` score a trained network or a classical method (see
`hinas.classical`) on a folder of test images and return an :class:`EvalReport` (table + JSON).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hinas.classical import get_method
from hinas.complexity import count_macs, count_params
from hinas.config import TaskConfig
from hinas.degradations import noisy_for_image, sr_pair_for_image
from hinas.errors import HinasError, NonFiniteError
from hinas.images import collect_images, file_channels, load_image, save_image, to_gray, to_rgb
from hinas.io import atomic_write_text
from hinas.metrics import SSIM_WINDOW, Convention, to_uint8
from hinas.runs import progress
from hinas.tiling import check_tiling, tiled_bands


@dataclass
class EvalPair:
    """One test image: its name, degraded input (0–255 float, HxWxC) and clean target (uint8)."""

    name: str
    lq: np.ndarray
    gt: np.ndarray


def center_crop(img: np.ndarray, size: int, multiple: int = 1) -> np.ndarray:
    """Central `size`×`size` window (clipped to the image, rounded down to `multiple`)."""
    h, w = img.shape[:2]
    ch, cw = min(size, h), min(size, w)
    ch, cw = ch - ch % multiple, cw - cw % multiple
    top, left = (h - ch) // 2, (w - cw) // 2
    return img[top:top + ch, left:left + cw]


def make_pairs(images: dict[Path, np.ndarray], task: TaskConfig, seed: int,
               crop: int = 0) -> list[EvalPair]:
    """Test pairs for `images` (uint8 HxWxC by path); `crop` > 0 scores central crops only."""
    pairs = []
    border = Convention.for_task(task.name, task.out_scale).crop_border
    for path, img in images.items():
        if crop:
            img = center_crop(img, crop, task.out_scale)
        h, w = img.shape[:2]
        if min(h - h % task.out_scale, w - w % task.out_scale) - 2 * border < SSIM_WINDOW:
            need = SSIM_WINDOW + 2 * border
            raise HinasError(f"{path}: {w}x{h} image is too small to score ({task.describe()} "
                             f"needs at least {need}x{need} for the {SSIM_WINDOW}x{SSIM_WINDOW} "
                             f"SSIM window)")
        name = Path(path).name
        if task.name == "denoise":
            pairs.append(EvalPair(name, noisy_for_image(img, task.eval_sigma, seed, name), img))
        else:
            hr, lr = sr_pair_for_image(img, task.scale)
            pairs.append(EvalPair(name, lr.astype(np.float64), hr))
    return pairs


@torch.no_grad()
def restore_array(model: nn.Module, lq: np.ndarray, scale: int, device: str | torch.device,
                  tile: int = 0, overlap: int = 32) -> np.ndarray:
    """Run `model` on one HxWxC image on the 0–255 scale; returns the float 0–255 output.

    With `tile` > 0 the input is cut into tile×tile windows overlapping by `overlap` pixels, and
    the outputs are blended with a linear ramp across each overlap (bounded memory).
    """
    check_tiling(tile, overlap)
    x = torch.from_numpy(np.ascontiguousarray(lq.transpose(2, 0, 1), dtype=np.float32) / 255.0)
    x = x.unsqueeze(0).to(device)
    if tile <= 0 or (lq.shape[0] <= tile and lq.shape[1] <= tile):
        y = model(x)
    else:
        y = torch.cat([band for _, band in tiled_bands(
            model, lambda top, left, h, w: x[:, :, top:top + h, left:left + w], *lq.shape[:2],
            scale, tile, overlap)], dim=2)
    return y[0].float().cpu().numpy().transpose(1, 2, 0).astype(np.float64) * 255.0


def score_model(model: nn.Module, pairs: list[EvalPair], task: TaskConfig,
                device: str | torch.device, tile: int = 0, overlap: int = 32,
                save_dir: str | Path | None = None, quiet: bool = True
                ) -> tuple[list[dict], dict[str, float]]:
    """Per-image rows (image, psnr, ssim, seconds) and their mean of `model` under the task's
    convention (a gray image through an RGB model: see `run_on_channels`); with `save_dir`, the
    outputs as 8-bit PNGs; a progress bar unless `quiet`."""
    was_training = model.training
    model.eval()

    def restore(lq: np.ndarray) -> np.ndarray:
        return run_on_channels(
            lambda x: restore_array(model, x, task.out_scale, device, tile, overlap), lq,
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


# --------------------------------------------------------------------------------------------
# Test sets, channels and the evaluation report
# --------------------------------------------------------------------------------------------

def load_test_images(folders: str | Path | list[str | Path], channels: int
                     ) -> tuple[dict[Path, np.ndarray], list[str]]:
    """The images of one or several `folders` as uint8 HxWxC for a method working on `channels`,
    and notes on the conversions made (docs/metrics.md, docs/data.md).

    For a gray method, RGB files are converted to gray (ITU-R 601-2 luma). For an RGB method, a
    gray file stays gray and is scored on its own values (Set14's `bridge`, as the MATLAB
    scripts do). A file that cannot be read is an error naming it: a test set is never silently
    shortened. Two images of the same file name are an error too, since the name seeds the test
    noise and names the row and the saved output.
    """
    images, converted, kept_gray = {}, 0, 0
    seen: dict[str, Path] = {}
    for path in collect_images(folders):
        if path.name in seen:
            raise HinasError(f"{path}: same file name as {seen[path.name]}; test images need "
                             f"distinct names")
        seen[path.name] = path
        native = file_channels(path)
        images[path] = load_image(path, 1 if native == 1 else channels)
        converted += native == 3 and channels == 1
        kept_gray += native == 1 and channels == 3
    notes = []
    if converted:
        notes.append(f"{converted} RGB image(s) converted to gray (ITU-R 601-2 luma)")
    if kept_gray:
        notes.append(f"{kept_gray} gray image(s) kept gray and scored on their own values")
    return images, notes


def run_on_channels(restore: Callable[[np.ndarray], np.ndarray], lq: np.ndarray,
                    channels: int) -> np.ndarray:
    """Output of `restore` (a method on `channels`-channel images) for `lq`: a gray image through
    an RGB method goes in as three equal channels and its output comes back as gray (601 luma)."""
    c = lq.shape[2]
    if c == channels:
        return restore(lq)
    if c == 1 and channels == 3:
        return to_gray(restore(to_rgb(lq)))
    raise HinasError(f"a {c}-channel image cannot go through a {channels}-channel method "
                     f"(convert it to gray first)")


def describe_device(device: str | torch.device) -> str:
    """The device in words, e.g. `cpu (AMD EPYC, 2 cores; torch 2.13.0, 2 threads)` or
    `cuda:0 (NVIDIA H100, torch 2.13.0)`."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)}, torch {torch.__version__})"
    return (f"{device} ({_cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads)")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass
class EvalReport:
    """One method scored on one test set: per-image rows, mean, cost, and the convention used."""

    method: str
    task: TaskConfig
    data: str
    device: str
    seed: int
    rows: list[dict]
    mean: dict[str, float]
    params: int | None = None
    macs: int | None = None
    macs_input: tuple[int, int] | None = None
    tile: int = 0
    overlap: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def convention(self) -> Convention:
        """The metric convention of the task."""
        return Convention.for_task(self.task.name, self.task.out_scale)

    def to_dict(self) -> dict:
        """JSON-ready dict: the table's content plus the convention."""
        return {"method": self.method, "task": asdict(self.task), "data": self.data,
                "device": self.device, "seed": self.seed, "images": len(self.rows),
                "rows": self.rows, "mean": self.mean,
                "seconds_per_image": self.mean.get("seconds"),
                "params": self.params, "macs": self.macs,
                "macs_input": list(self.macs_input) if self.macs_input else None,
                "tile": self.tile, "overlap": self.overlap, "notes": self.notes,
                "convention": self.convention.as_dict()}

    def save_json(self, path: str | Path) -> None:
        """Write `to_dict()` as indented JSON, atomically."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")

    def table(self) -> str:
        """The per-image and mean table with cost, device and convention, as text."""
        width = max([len("mean"), *(len(r["image"]) for r in self.rows)])
        lines = [f"{self.method} on {self.data}: {self.task.describe()}, "
                 f"{self.task.channels} channel(s)",
                 f"{'image':<{width}}  {'PSNR':>7}  {'SSIM':>7}  {'seconds':>8}"]
        for r in [*self.rows, {"image": "mean", **self.mean}]:
            lines.append(f"{r['image']:<{width}}  {r['psnr']:7.2f}  {r['ssim']:7.4f}  "
                         f"{r['seconds']:8.3f}")
        cost = []
        if self.params is not None:
            cost.append(f"parameters {self.params:,} ({self.params / 1e6:.4f} M)")
        if self.macs is not None and self.macs_input:
            cost.append(f"MACs {self.macs / 1e9:.3f} G at {self.macs_input[0]}x"
                        f"{self.macs_input[1]} input")
        cost.append(f"{self.mean['seconds']:.3f} s/image on {self.device}")
        if self.tile:
            cost.append(f"tiles {self.tile} px, overlap {self.overlap} px")
        lines.append("; ".join(cost))
        lines.extend(f"note: {n}" for n in self.notes)
        lines.append(f"convention: {self.convention.describe()}")
        return "\n".join(lines)


def evaluate_model(model: nn.Module, task: TaskConfig, images: dict[Path, np.ndarray], *,
                   method: str = "model", data: str = "", seed: int = 0,
                   device: str | torch.device = "cpu", tile: int = 0, overlap: int = 32,
                   save_dir: str | Path | None = None, notes: list[str] | None = None,
                   quiet: bool = False) -> EvalReport:
    """Score `model` (restoring `task`, with `task.channels`) on `images` under the task's
    convention, with parameters and MACs at the first image's input size (a progress bar unless
    `quiet`)."""
    pairs = make_pairs(images, task, seed)
    if not pairs:
        raise HinasError(f"{data or 'test set'}: no test images")
    model = model.to(device)
    h, w = pairs[0].lq.shape[:2]
    macs = count_macs(model, task.channels, h, w)
    rows, mean = score_model(model, pairs, task, device, tile, overlap, save_dir, quiet)
    return EvalReport(method, task, data, describe_device(device), seed, rows, mean,
                      count_params(model), macs, (w, h), tile, overlap if tile else 0,
                      list(notes or []))


def evaluate_classical(name: str, task: TaskConfig, images: dict[Path, np.ndarray], *,
                      data: str = "", seed: int = 0, save_dir: str | Path | None = None,
                      notes: list[str] | None = None, quiet: bool = False) -> EvalReport:
    """Score the classical method `name` (see `hinas.classical`) on `images` exactly as a model
    would be scored (same seeded noisy inputs, same LR images, same convention; a progress bar
    unless `quiet`)."""
    method = get_method(name, task)
    pairs = make_pairs(images, task, seed)
    if not pairs:
        raise HinasError(f"{data or 'test set'}: no test images")
    rows, mean = score_outputs(lambda lq: method.restore(lq, task), pairs, task, save_dir,
                               quiet)
    return EvalReport(name, task, data, "cpu (numpy)", seed, rows, mean, notes=list(notes or []))
