"""Restoring users' images with a trained model (docs/decisions.md §3): `hinas restore`.

Inputs are image files or folders (searched recursively). Every output keeps its input's file name
and format; inputs found in a folder keep their path relative to it. A denoising model takes noisy
images; an SR model takes low-resolution images and returns them `scale` times larger.

Channels: an image must have the model's channel count. With `convert`, an RGB image goes through
a gray model as its ITU-R 601-2 luma, and a gray image through an RGB model as three equal
channels whose output is converted back to gray; either way the output is gray.

Bit depth: 16-bit inputs (gray PNG/TIFF, RGB PNG) are processed at full precision and written as
16-bit (see :mod:`hinas.data.images`). JPEG outputs are written at Pillow's default quality (75):
prefer PNG when quality matters.

Backends: `torch` (the trained PyTorch module) or `onnxruntime` (the model exported to ONNX, or
an ONNX file written by `hinas export`, run by ONNX Runtime; see :mod:`hinas.models.export`).

The torch backend runs the network's BatchNorm-folded inference copy
(:func:`hinas.models.fold.fold_batchnorm`): each conv → BN is one convolution.

Inference is whole-image by default; `tile` > 0 processes tile×tile windows overlapping by
`overlap` pixels and blends them linearly (equal to whole-image inference where the overlap
covers the network's receptive field). Memory: an input is decoded once in its compact form
(uint8/uint16) and the output is built in that form, band by band; besides those two, about one
row of tiles is held, so `--tile` bounds the float working memory whatever the image size. The
pixel limit (:func:`hinas.data.images.max_pixels`) is `TILED_FACTOR` (64) times higher with `tile` >
0.

All or nothing: every input's header is checked (readable, within the pixel limit, channels)
before any work, and outputs are written to temporary files that are renamed into place only
after every image has been restored; a failure leaves the output folder as it was (one it
created is removed).

Inputs are never replaced: an output whose path (resolved, symbolic links followed) is an input
file or any image of an input folder is refused before any work. When the output folder lies
inside an input folder, the images already inside it are not inputs (a second run does not
restore its own outputs); those it would replace are images of the input folder, so such a run
is refused rather than replace them.
"""

from __future__ import annotations

from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hinas.data.images import (
    IMAGE_EXTS,
    file_channels,
    list_images,
    read_input,
    save_image,
)
from hinas.errors import HinasError, NonFiniteError
from hinas.io import atomic_path
from hinas.measures.metrics import to_uint8
from hinas.models.export import onnx_model, onnx_task, require
from hinas.models.fold import fold_batchnorm
from hinas.models.folder import ModelSpec, load_model
from hinas.runtime.execution import check_device
from hinas.runtime.inference import (
    check_channels,
    check_tiling,
    match_channels,
    restore_array,
    restore_compact,
    run_on_channels,
    told,
)
from hinas.runtime.runs import progress
from hinas.tasks import TaskConfig

BACKENDS = ("torch", "onnxruntime")


def collect_inputs(inputs: list[str | Path], out_dir: Path) -> list[tuple[Path, Path]]:
    """(image file, output path relative to the output folder `out_dir`) for every input file or
    folder; images of a folder that lie inside `out_dir` (earlier outputs, when it is inside the
    folder) are not inputs."""
    out_root = out_dir.resolve()
    pairs = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = [p for p in list_images(item) if not _inside(p, out_root)]
            if not found:
                raise HinasError(f"{item}: no images outside the output folder {out_dir}")
            pairs.extend((p, p.relative_to(item)) for p in found)
        elif item.is_file():
            if item.suffix.lower() not in IMAGE_EXTS:
                raise HinasError(f"{item}: not an image file (png/jpg/bmp/tif)")
            pairs.append((item, Path(item.name)))
        else:
            raise HinasError(f"{item}: no such file or folder")
    seen: dict[Path, Path] = {}
    for src, rel in pairs:
        if rel in seen:
            raise HinasError(f"{src}: same output name as {seen[rel]} ({rel})")
        seen[rel] = src
    return pairs


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path`, resolved, lies in `folder` (a resolved path)."""
    return folder in path.resolve().parents


def check_outputs(inputs: list[str | Path], pairs: list[tuple[Path, Path]], out_dir: Path
                  ) -> None:
    """HinasError unless every output path of `pairs` under `out_dir` is free to write: no
    output may replace an input file or any image of an input folder (resolved, so a symbolic
    link to one counts as that file), nor a folder."""
    protected = {}
    for item in map(Path, inputs):
        for path in list_images(item) if item.is_dir() else [item]:
            protected.setdefault(path.resolve(), (path, item))
    for src, rel in pairs:
        target = out_dir / rel
        if target.is_dir():
            raise HinasError(f"{target}: a folder is in the way of the output")
        if target.resolve() in protected:
            path, item = protected[target.resolve()]
            where = "the input" if path == item else f"an image of the input folder {item}"
            raise HinasError(f"{target}: the output of {src} would replace {where} ({path}); "
                             f"outputs never replace inputs: choose another -o")


def new_folders(out_dir: Path, pairs: list[tuple[Path, Path]]) -> list[Path]:
    """The folders that writing the outputs of `pairs` under `out_dir` creates, deepest
    first."""
    new: set[Path] = set()
    for _, rel in pairs:
        folder = (out_dir / rel).parent
        while not folder.exists() and folder not in new:
            new.add(folder)
            folder = folder.parent
    return sorted(new, key=lambda p: len(p.parts), reverse=True)


def check_input(path: Path, channels: int, convert: bool, tiled: bool) -> None:
    """Check an input image's header (readable, within the pixel limit, a supported mode with
    the model's channels or `convert`) without decoding its pixels."""
    check_channels(file_channels(path, tiled), channels, convert, str(path), "--convert")


def told_task(task: TaskConfig, levels: dict[str, Any] | None, source: str) -> TaskConfig:
    """The task of a model (built for `task`, named `source` in errors) restoring inputs of
    the noise `levels` (level name → one value, e.g. `{"sigma": 25}`): a noise-map model needs
    every level of its task, a model that is not one takes none (HinasError)."""
    levels = dict(levels or {})
    if not task.needs_level:
        if levels:
            flags = " ".join(f"--{n.replace('_', '-')}" for n in levels)
            raise HinasError(f"{source}: {flags} tells a noise-map model the noise of its "
                             f"inputs; this model has no noise-map input ({task.describe()})")
        return task
    own = [n for n, _ in task.options()]
    if sorted(levels) != sorted(own):
        raise HinasError(f"{source}: a noise-map model is told the noise level of its inputs: "
                         f"give {task.level_options()}")
    told_level = task.at_evaluation().at_levels(levels)
    told_level.validate()
    return told_level


def restore_images(model_dir: str | Path, inputs: list[str | Path], out_dir: str | Path, *,
                   tile: int = 0, overlap: int = 32, convert: bool = False,
                   device: str | torch.device = "cpu", quiet: bool = False,
                   backend: str = "torch", levels: dict[str, Any] | None = None) -> list[Path]:
    """Restore every input image with the trained model of `model_dir` (with the `onnxruntime`
    backend also an ONNX file from `hinas export`) into `out_dir`; returns the written paths.
    A noise-map model is told the noise `levels` of the inputs (:func:`told_task`).
    All or nothing: outputs are written to temporary files and renamed into place only once every
    image has been restored."""
    check_tiling(tile, overlap)
    check_device(device)
    if backend not in BACKENDS:
        raise HinasError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if backend == "onnxruntime":
        require("onnxruntime", "the onnxruntime backend")
    if backend == "onnxruntime" and Path(model_dir).is_file():
        task = onnx_task(model_dir)
    else:
        task = ModelSpec.load(model_dir).task
    task = told_task(task, levels, str(model_dir))
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise HinasError(f"{out_dir}: is a file; -o takes an output folder")
    pairs = collect_inputs(inputs, out_dir)
    check_outputs(inputs, pairs, out_dir)
    for src, _ in pairs:
        check_input(src, task.channels, convert, tile > 0)
    model = told(load_model(model_dir, device, fold=True) if backend == "torch"
                 else onnx_model(model_dir), task)
    written = []
    created = new_folders(out_dir, pairs)
    bar = progress(len(pairs), 0, quiet, "restore")
    try:
        with ExitStack() as outputs:
            for src, rel in pairs:
                image, depth = read_input(src, tile > 0)
                try:
                    out = restore_compact(model, image, depth, task.channels, task.out_scale,
                                          tile, overlap, device)
                except NonFiniteError as err:
                    raise NonFiniteError(f"{src}: {err}") from None
                del image
                save_image(outputs.enter_context(atomic_path(out_dir / rel)), out,
                           bit_depth=depth)
                written.append(out_dir / rel)
                bar.update(1)
    except BaseException:
        for folder in created:  # left empty by the failure: the outputs were never renamed in
            with suppress(OSError):
                folder.rmdir()
        raise
    finally:
        bar.close()
    return written


def restore_image(model: torch.nn.Module | str | Path, image: np.ndarray, *, tile: int = 0,
                  overlap: int = 32, convert: bool = False,
                  levels: dict[str, Any] | None = None) -> np.ndarray:
    """Restore one uint8 image (HxW gray, HxWx1 or HxWx3, any size) with `model` (a network, e.g.
    from :func:`hinas.load_model`, or a trained-model folder); returns the output as uint8,
    clipped and rounded, in the input's layout (an SR model's output is `scale` times larger).

    The image must have the model's channel count; with `convert`, an RGB image goes through a
    gray model as its ITU-R 601-2 luma, and a gray image through an RGB model as three equal
    channels (either way the output is gray). `tile` > 0 restores overlapping tiles (bounded
    memory), as `hinas restore --tile`. A noise-map model is told the noise `levels` of the
    image (e.g. `{"sigma": 25}`, see :func:`told_task`). The image goes through the network's
    BatchNorm-folded inference copy (the given module is left as it is, in its mode).
    """
    model = load_model(model, fold=True) if isinstance(model, (str, Path)) \
        else fold_batchnorm(model)
    built_for = getattr(model, "built_for", None)
    if built_for is not None:
        model = told(model, told_task(built_for, levels, "restore_image"))
    elif levels:
        raise HinasError("restore_image: levels are for a noise-map model (from "
                         "hinas.load_model), which this network is not")
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (
            array.ndim == 3 and array.shape[2] not in (1, 3)):
        raise HinasError(f"restore_image takes a uint8 HxW, HxWx1 or HxWx3 array, got "
                         f"{array.dtype} of shape {array.shape}")
    lq = array.astype(np.float64).reshape(*array.shape[:2], -1)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    if not convs:
        raise HinasError("restore_image: the model has no convolution to read its channels from")
    channels = built_for.channels if built_for is not None else convs[0].in_channels
    lq = match_channels(lq, channels, convert, "restore_image", "convert=True")
    device = next(model.parameters()).device
    scale = 1
    if tile:
        with torch.no_grad():
            scale = model(torch.zeros(1, channels, 8, 8, device=device)).shape[-1] // 8
    out = run_on_channels(lambda x: restore_array(model, x, scale, device, tile, overlap),
                          lq, channels)
    out = to_uint8(out)
    return out[..., 0] if array.ndim == 2 and out.shape[2] == 1 else out
