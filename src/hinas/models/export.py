"""Leaving Python: a trained model exported to ONNX, and ONNX Runtime as an inference backend.

`export_onnx` writes a network as an ONNX file whose input `x` (N, C, H, W; for a noise-map model
also `noise_map`, N×C×H×W) has a dynamic batch, height and width, at opset `OPSET`, with the
model's description in the file's metadata (`hinas_model`: model.json's content, `opset`,
`hinas_version`, and `size_multiple`, the grid its tiles must follow), so an exported file alone
says what it restores. `OnnxModel` runs such a file with ONNX Runtime and is called like the
PyTorch module (tensor in, tensor out), so tiling and the restore loop work unchanged.

Needs the optional `onnx` extra (`pip install "hinas[onnx]"`: onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

import importlib
import json
import logging
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hinas import __version__
from hinas.config import TaskConfig, build_dataclass
from hinas.errors import HinasError
from hinas.io import atomic_path
from hinas.models.fold import fold_batchnorm
from hinas.models.folder import ModelSpec, load_model

OPSET = 18
"""ONNX opset of exported files (the PyTorch exporter's native one)."""
INPUT, MAP_INPUT, OUTPUT = "x", "noise_map", "y"
EXTRA = 'pip install "hinas[onnx]"'


def require(module: str, purpose: str) -> Any:
    """Import `module` of the `onnx` extra, or HinasError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise HinasError(f"{purpose} needs the {module} package: {EXTRA}") from None


@contextmanager
def _quiet_exporter():
    """Silence the exporter's chatter (torchvision ops it skips, its own deprecation notes)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            # image and noise map share their dimensions, which the exporter mentions
            warnings.filterwarnings("ignore", message="# The axis name")
            yield
    finally:
        logger.setLevel(level)


class MapInput(nn.Module):
    """A noise-map network with the image and its noise-level map as two inputs (what an
    exported file takes) instead of one tensor holding both."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, noise_map: torch.Tensor) -> torch.Tensor:
        """The output for image `x` and its map (both N×C×H×W)."""
        return self.net(torch.cat([x, noise_map], 1))


def export_onnx(model: nn.Module, path: str | Path, channels: int,
                metadata: dict[str, str] | None = None, opset: int = OPSET,
                noise_map: bool = False) -> Path:
    """Export `model` (taking `channels`-channel images; with `noise_map`, followed by their
    noise-level map, which becomes the file's second input `noise_map`, N×C×H×W) to the ONNX
    file `path`, atomically, with dynamic batch, height and width and `metadata` added to the
    file's metadata. What is exported is the BatchNorm-folded inference copy
    (:func:`hinas.models.fold.fold_batchnorm`): one convolution where the network has conv → BN."""
    require("onnxscript", "ONNX export")
    onnx = require("onnx", "ONNX export")
    # a copy (the caller's module stays where it is), in the plain memory format ONNX describes
    model = fold_batchnorm(model).cpu().to(memory_format=torch.contiguous_format)
    size_multiple = getattr(model, "size_multiple", 1)
    examples = [torch.rand(1, channels, 32, 40) for _ in range(1 + noise_map)]
    dims = {0: torch.export.Dim("batch", min=1), 2: torch.export.Dim("height", min=1),
            3: torch.export.Dim("width", min=1)}
    names = [INPUT, MAP_INPUT][:len(examples)]
    if noise_map:
        model = MapInput(model).eval()
    with _quiet_exporter(), torch.no_grad():
        try:
            program = torch.onnx.export(model, tuple(examples), dynamo=True, opset_version=opset,
                                        input_names=names, output_names=[OUTPUT],
                                        dynamic_shapes=(dims,) * len(examples), verbose=False)
        except Exception as err:  # the exporter raises many types; say which step failed
            raise HinasError(f"{path}: ONNX export failed ({type(err).__name__}: "
                             f"{str(err).strip().splitlines()[0][:200]})") from None
    proto = program.model_proto
    info = {"opset": str(opset), "hinas_version": __version__,
            "size_multiple": str(size_multiple), **(metadata or {})}
    for key, value in info.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    path = Path(path)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))
    return path


def export_model(model_dir: str | Path, path: str | Path, opset: int = OPSET) -> Path:
    """Export the trained model of folder `model_dir` (written by `hinas train`) to `path`."""
    spec = ModelSpec.load(model_dir)
    model = load_model(model_dir)
    return export_onnx(model, path, spec.task.channels,
                       {"hinas_model": json.dumps(spec.to_dict())}, opset, spec.task.needs_level)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata an ONNX file carries (HinasError if it is not a readable ONNX file)."""
    onnx = require("onnx", "reading an ONNX file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf raises DecodeError and friends
        raise HinasError(f"{path}: not a readable ONNX file ({type(err).__name__})") from None
    return {p.key: p.value for p in proto.metadata_props}


def onnx_task(path: str | Path) -> TaskConfig:
    """The task an ONNX file written by `hinas export` restores (from its metadata)."""
    meta = read_metadata(path)
    if "hinas_model" not in meta:
        raise HinasError(f"{path}: not exported by hinas (no hinas_model metadata); export it "
                         f"with `hinas export`")
    try:
        task = build_dataclass(TaskConfig, json.loads(meta["hinas_model"])["task"], "task")
    except (KeyError, TypeError, ValueError) as err:
        raise HinasError(f"{path}: malformed hinas_model metadata ({err})") from None
    task.validate()
    return task


class OnnxModel:
    """An ONNX file run by ONNX Runtime on the CPU, called like the PyTorch module it came from:
    a float (N, C, H, W) tensor in, the restored tensor out (on the input's device)."""

    def __init__(self, path: str | Path, threads: int = 0):
        ort = require("onnxruntime", "the onnxruntime backend")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as err:  # ORT raises its own exception types
            raise HinasError(f"{path}: ONNX Runtime cannot load it ({type(err).__name__})"
                             ) from None
        self.inputs = [i.name for i in self.session.get_inputs()]
        custom = self.session.get_modelmeta().custom_metadata_map
        self.size_multiple = int(custom.get("size_multiple", "1"))  # tiles follow its grid

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The model's output for `x` (of a noise-map model: the image followed by its map, as
        the PyTorch module takes them)."""
        parts = x.chunk(len(self.inputs), 1)
        feed = {name: np.ascontiguousarray(part.detach().cpu().numpy(), dtype=np.float32)
                for name, part in zip(self.inputs, parts, strict=True)}
        return torch.from_numpy(self.session.run(None, feed)[0]).to(x.device)


def onnx_model(model: str | Path | nn.Module, threads: int = 0) -> OnnxModel:
    """The ONNX Runtime model of `model`: an ONNX file from `hinas export`, a trained model
    folder, or a network as hinas builds it (its `built_for` task says what it takes); the
    latter two exported on the fly to a temporary file."""
    if not isinstance(model, nn.Module) and Path(model).is_file():
        return OnnxModel(model, threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        if isinstance(model, nn.Module):
            task = model.built_for
            export_onnx(model, path, task.channels, noise_map=task.needs_level)
        else:
            export_model(model, path)
        return OnnxModel(path, threads)
