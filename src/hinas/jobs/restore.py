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
after every image has been restored; a failure leaves the output folder as it was.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

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
)
from hinas.runtime.runs import progress

BACKENDS = ("torch", "onnxruntime")


def collect_inputs(inputs: list[str | Path]) -> list[tuple[Path, Path]]:
    """(image file, output path relative to the output folder) for every input file or folder."""
    pairs = []
    for item in map(Path, inputs):
        if item.is_dir():
            pairs.extend((p, p.relative_to(item)) for p in list_images(item))
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


def check_input(path: Path, channels: int, convert: bool, tiled: bool) -> None:
    """Check an input image's header (readable, within the pixel limit, a supported mode with
    the model's channels or `convert`) without decoding its pixels."""
    check_channels(file_channels(path, tiled), channels, convert, str(path), "--convert")


def restore_images(model_dir: str | Path, inputs: list[str | Path], out_dir: str | Path, *,
                   tile: int = 0, overlap: int = 32, convert: bool = False,
                   device: str | torch.device = "cpu", quiet: bool = False,
                   backend: str = "torch") -> list[Path]:
    """Restore every input image with the trained model of `model_dir` (with the `onnxruntime`
    backend also an ONNX file from `hinas export`) into `out_dir`; returns the written paths.
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
    pairs = collect_inputs(inputs)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise HinasError(f"{out_dir}: is a file; -o takes an output folder")
    for src, rel in pairs:
        check_input(src, task.channels, convert, tile > 0)
        if (out_dir / rel).resolve() == src.resolve():
            raise HinasError(f"{src}: the output would overwrite the input; choose another -o")
        if (out_dir / rel).is_dir():
            raise HinasError(f"{out_dir / rel}: a folder is in the way of the output")
    model = (load_model(model_dir, device, fold=True) if backend == "torch"
             else onnx_model(model_dir))
    written = []
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
    finally:
        bar.close()
    return written


def restore_image(model: torch.nn.Module | str | Path, image: np.ndarray, *, tile: int = 0,
                  overlap: int = 32, convert: bool = False) -> np.ndarray:
    """Restore one uint8 image (HxW gray, HxWx1 or HxWx3, any size) with `model` (a network, e.g.
    from :func:`hinas.load_model`, or a trained-model folder); returns the output as uint8,
    clipped and rounded, in the input's layout (an SR model's output is `scale` times larger).

    The image must have the model's channel count; with `convert`, an RGB image goes through a
    gray model as its ITU-R 601-2 luma, and a gray image through an RGB model as three equal
    channels (either way the output is gray). `tile` > 0 restores overlapping tiles (bounded
    memory), as `hinas restore --tile`. The image goes through the network's BatchNorm-folded
    inference copy (the given module is left as it is, in its mode).
    """
    model = load_model(model, fold=True) if isinstance(model, (str, Path)) \
        else fold_batchnorm(model)
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (
            array.ndim == 3 and array.shape[2] not in (1, 3)):
        raise HinasError(f"restore_image takes a uint8 HxW, HxWx1 or HxWx3 array, got "
                         f"{array.dtype} of shape {array.shape}")
    lq = array.astype(np.float64).reshape(*array.shape[:2], -1)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    if not convs:
        raise HinasError("restore_image: the model has no convolution to read its channels from")
    channels = convs[0].in_channels
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
