"""`hinas eval`: a trained network or a classical method scored on a folder of test images under
the literature's conventions (docs/metrics.md; the scoring itself is :mod:`hinas.runtime.scoring`).

`evaluate_model` scores a trained network or a classical method (see `hinas.models.classical`)
on a folder of test images and returns an :class:`EvalReport` (table + JSON); :func:`evaluate`
is the whole of `hinas eval` (which model or method, at which task, on which files).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hinas.config import TaskConfig
from hinas.data.datasets import load_inputs, match_inputs
from hinas.data.images import collect_images, file_channels, load_image
from hinas.errors import HinasError
from hinas.io import atomic_write_text
from hinas.measures.complexity import count_macs, count_params
from hinas.measures.metrics import Convention
from hinas.models.classical import get_method
from hinas.models.fold import fold_batchnorm
from hinas.runtime.execution import check_device, describe_device
from hinas.runtime.scoring import EvalPair, make_pairs, score_model, score_outputs
from hinas.tasks import check_lq, task_class


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


def evaluation_task(base: TaskConfig | None, name: str | None, fields: dict[str, Any],
                    channels: int | None, source: str, lq: bool = False) -> TaskConfig:
    """The task to score: the model's (`base`, errors naming `source`) with the levels `fields`
    (e.g. of `--sigma`) overriding its own and `name` its task (a model of another task is
    refused later, by :func:`hinas.models.folder.check_task`); or, for a classical method
    (`base` None), task `name` of `channels` (default: the task's), every level of which
    `fields` must give. A blind model of a task that evaluates at no level of its own
    (`asks_blind`) needs its level too, unless its degraded inputs are given (`lq`)."""
    name = name or base.name
    unit = task_class(name)
    given = set(fields) & {n for n, _ in unit.options()}
    if base is None:
        if len(given) < len(unit.options()):
            raise HinasError(f"give {unit.asks}")
        base = TaskConfig(name=name, channels=channels or unit.channels)
    elif channels and channels != base.channels:
        raise HinasError(f"{source}: restores {base.channels}-channel images; "
                         f"test images are converted to that (drop --channels)")
    if base.name == name and base.needs_level and not given and (base.blind or lq):
        raise HinasError(f"{source}: a noise-map model is told the noise level of its inputs: "
                         f"give {unit.level_options()}")
    if base.name == name and unit.asks_blind and base.blind and not given and not lq:
        raise HinasError(f"{source}: trained blind ({base.describe()}): give {unit.asks}")
    task = dataclasses.replace(base, name=name, **fields)
    task.validate()
    return task


def load_test_inputs(images: dict[Path, np.ndarray],
                     lq_folders: str | Path | list[str | Path] | None, task: TaskConfig
                     ) -> dict[Path, np.ndarray] | None:
    """The degraded inputs of the test images `images` (:func:`load_test_images`) read from
    `lq_folders`, matched by file-name stem and checked (channels; size × the task's scale is
    the image's); None without folders. Every task takes them (they replace the degradation its
    test recipe would make; an SR task's are the low-resolution images); the paired task needs
    them (HinasError without)."""
    folders = [lq_folders] if isinstance(lq_folders, (str, Path)) else list(lq_folders or [])
    if not folders:
        check_lq(task.name, [])
        return None
    return load_inputs(images, match_inputs(list(images), folders), task.out_scale)


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
    lq: str = ""

    @property
    def convention(self) -> Convention:
        """The metric convention of the task (with inputs read from the folders `lq`, when it
        names any)."""
        return Convention.for_task(self.task.name, self.task.out_scale,
                                   from_files=bool(self.lq))

    def to_dict(self) -> dict:
        """JSON-ready dict: the table's content plus the convention."""
        return {"method": self.method, "task": asdict(self.task), "data": self.data,
                "lq": self.lq or None, "inputs": "given" if self.lq else "synthesised",
                "device": self.device, "seed": self.seed, "images": len(self.rows),
                "rows": self.rows, "mean": self.mean,
                "seconds_per_image": self.mean.get("seconds"),
                "params": self.params, "macs": self.macs,
                "macs_input": list(self.macs_input) if self.macs_input else None,
                "tile": self.tile, "overlap": self.overlap, "notes": self.notes,
                "convention": self.convention.as_dict()}

    def save_json(self, path: str | Path) -> None:
        """Write `to_dict()` as indented, valid JSON, atomically: a PSNR that is infinite (an
        output identical to its ground truth) is the string `"inf"`, which JSON has no number
        for (`float("inf")` reads it back)."""
        atomic_write_text(path, json.dumps(_json_numbers(self.to_dict()), indent=1,
                                           allow_nan=False) + "\n")

    def table(self) -> str:
        """The per-image and mean table with cost, device and convention, as text."""
        width = max([len("mean"), *(len(r["image"]) for r in self.rows)])
        evaluated = self.task.at_evaluation().describe()
        at = f" (evaluated at {evaluated})" if evaluated != self.task.describe() else ""
        if self.lq and not self.task.from_files:  # a task of files alone says nothing more
            at = " (inputs given, not synthesised)"
        given = f" (inputs from {self.lq})" if self.lq else ""
        lines = [f"{self.method} on {self.data}{given}: {self.task.describe()}{at}, "
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


def _json_numbers(value):
    """`value` with every non-finite float, nested anywhere, as the string `"inf"`, `"-inf"` or
    `"nan"`."""
    if isinstance(value, dict):
        return {k: _json_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_numbers(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def evaluate_model(model: nn.Module | str, task: TaskConfig, images: dict[Path, np.ndarray],
                   *, method: str | None = None, data: str = "", seed: int = 0,
                   device: str | torch.device = "cpu", tile: int = 0, overlap: int = 32,
                   save_dir: str | Path | None = None, notes: list[str] | None = None,
                   quiet: bool = False, inputs: dict[Path, np.ndarray] | None = None,
                   lq: str = "") -> EvalReport:
    """Score `model`, a network or the name of a classical method (see `hinas.models.classical`),
    restoring `task` (with `task.channels`) on `images` under the task's convention, as the row
    `method` (default: the classical method's name, else "model"; a progress bar unless `quiet`);
    `inputs` (from the folders `lq`, :func:`load_test_inputs`) are the degraded inputs of paired
    data. Networks and methods see the same seeded noisy inputs and LR images. A network runs on
    `device` (in tiles of `tile` px if given) as its BatchNorm-folded inference copy
    (:func:`hinas.models.fold.fold_batchnorm`), with the trained network's parameters and MACs at
    the first image's input size; a classical method runs on the CPU."""
    if isinstance(model, str):
        classical = get_method(model, task)
        pairs = _test_pairs(images, task, seed, inputs, data)
        rows, mean = score_outputs(lambda degraded: classical.restore(degraded, task), pairs,
                                   task, save_dir, quiet)
        return EvalReport(method or model, task, data, "cpu (numpy)", seed, rows, mean,
                          notes=list(notes or []), lq=lq)
    check_device(device)
    pairs = _test_pairs(images, task, seed, inputs, data)
    model = model.to(device)
    h, w = pairs[0].lq.shape[:2]
    macs = count_macs(model, task.input_channels, h, w)
    rows, mean = score_model(fold_batchnorm(model), pairs, task, device, tile, overlap, save_dir,
                             quiet)
    return EvalReport(method or "model", task, data, describe_device(device), seed, rows, mean,
                      count_params(model), macs, (w, h), tile, overlap if tile else 0,
                      list(notes or []), lq)


def _test_pairs(images: dict[Path, np.ndarray], task: TaskConfig, seed: int,
                inputs: dict[Path, np.ndarray] | None, data: str) -> list[EvalPair]:
    """The test pairs of `images` (HinasError naming the test set `data` if there are none)."""
    pairs = make_pairs(images, task, seed, inputs=inputs)
    if not pairs:
        raise HinasError(f"{data or 'test set'}: no test images")
    return pairs


def evaluate(data: str | Path | list[str | Path], *, model: str | Path | None = None,
             pretrained: str | None = None, method: str | None = None, task: str | None = None,
             levels: dict[str, Any] | None = None, channels: int | None = None,
             lq: str | Path | list[str | Path] | None = None, seed: int = 0,
             device: str | torch.device = "cpu", tile: int = 0, overlap: int = 32,
             save_dir: str | Path | None = None, quiet: bool = False) -> EvalReport:
    """`hinas eval`: score a trained model folder (`model`), a shipped model (`pretrained`) or a
    classical method (`method`; exactly one of them) on the test images of `data` (and their
    degraded inputs in `lq`), at the task :func:`evaluation_task` makes of the model's or
    method's task, `task`, the task fields `levels` (e.g. `{"sigma": [25.0]}`) and
    `channels`."""
    from hinas.models.folder import ModelSpec, check_task, load_model
    from hinas.models.pretrained import model_folder

    if sum(x is not None for x in (model, pretrained, method)) != 1:
        raise HinasError("give one of --model RUNDIR, --pretrained NAME or --method NAME")
    check_device(device)
    levels = levels or {}
    if method is None:
        folder, source = model_folder(model, pretrained)
        spec = ModelSpec.load(folder)
        scored = evaluation_task(spec.task, task, levels, channels, source, lq=bool(lq))
        check_task(spec.task, scored, source)
    else:
        scored = evaluation_task(None, task or get_method(method).tasks[0], levels, channels,
                                 f"method {method}")
    folders = [data] if isinstance(data, (str, Path)) else list(data)
    images, notes = load_test_images(folders, scored.channels)
    lq_folders = [lq] if isinstance(lq, (str, Path)) else list(lq or [])
    common = {"data": " ".join(map(str, folders)), "seed": seed, "save_dir": save_dir,
              "notes": notes, "quiet": quiet, "inputs": load_test_inputs(images, lq, scored),
              "lq": " ".join(map(str, lq_folders))}
    if method is not None:
        return evaluate_model(method, scored, images, **common)
    return evaluate_model(load_model(folder, device), scored, images,
                          method=f"{spec.arch} ({source})", device=device, tile=tile,
                          overlap=overlap, **common)
