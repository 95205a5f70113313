"""Conv→BatchNorm folding: the inference copy computes the trained network's output (within 1e-5
on photographs), has no BatchNorm left behind a convolution, never trains, and is what
restoration, evaluation and ONNX export run."""

import numpy as np
import pytest
import torch
from skimage import data
from torch import nn

import hinas
from hinas.config import TaskConfig
from hinas.errors import HinasError
from hinas.jobs.restore import restore_image
from hinas.models.fold import FOLDED, fold_batchnorm
from hinas.models.folder import ModelSpec
from hinas.models.pretrained import list_pretrained, pretrained_folder
from tiny_runs import tiny_genotype

TOLERANCE = 1e-5
DENOISE = TaskConfig(name="denoise", channels=1)
SR = TaskConfig(name="sr", scale=3, channels=3)
NETWORKS = {
    "hinas-denoise": ModelSpec("hinas", DENOISE, {"width_multiplier": 2.0},
                               tiny_genotype(DENOISE)),
    "hinas-sr": ModelSpec("hinas", SR, {"width_multiplier": 2.0}, tiny_genotype(SR)),
    "dncnn": ModelSpec("dncnn", DENOISE, {"depth": 6, "width": 16}),
    "fsrcnn": ModelSpec("fsrcnn", SR, {"d": 16, "s": 8, "m": 2, "residual": True}),
    "dncnn-rgb": ModelSpec("dncnn", TaskConfig(name="denoise", channels=3),
                           {"depth": 4, "width": 8}),
}


def photo(channels: int, size: int = 64) -> torch.Tensor:
    """A central crop of a real photograph, 1×C×size×size in [0, 1]."""
    img = np.asarray(data.camera() if channels == 1 else data.astronaut(), np.float32) / 255
    h, w = img.shape[:2]
    img = img[(h - size) // 2:(h + size) // 2, (w - size) // 2:(w + size) // 2]
    x = torch.from_numpy(img)
    return x[None, None] if channels == 1 else x.permute(2, 0, 1)[None]


def trained_like(spec: ModelSpec) -> nn.Module:
    """`spec`'s network with BatchNorm statistics and affine terms away from their initial
    values (running statistics from training-mode passes over photographs), in eval mode."""
    torch.manual_seed(0)
    net = spec.build()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    net.train()
    with torch.no_grad():
        for size in (40, 48, 56):
            net(photo(spec.task.channels, size))
    return net.eval()


def max_difference(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return (a(x) - b(x)).abs().max().item()


def conv_bn_pairs(model: nn.Module) -> int:
    """Number of BatchNorms right behind a convolution in an nn.Sequential of `model`."""
    return sum(isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d)
               for m in model.modules() if isinstance(m, nn.Sequential)
               for a, b in zip(m, list(m)[1:], strict=False))


@pytest.mark.parametrize("name", NETWORKS)
def test_folded_copy_computes_the_trained_output_without_batchnorm(name):
    spec = NETWORKS[name]
    net = trained_like(spec)
    had = sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    folded = fold_batchnorm(net)
    assert conv_bn_pairs(folded) == 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == had  # original kept
    assert (had > 0) == (name != "fsrcnn")
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last)
               for m in folded.modules() if isinstance(m, nn.Conv2d))
    x = photo(spec.task.channels, 72)
    assert max_difference(net, folded, x) < TOLERANCE
    assert max_difference(net, folded, photo(spec.task.channels, 37)) < TOLERANCE


@pytest.mark.parametrize("name", list_pretrained())
def test_shipped_models_fold_within_tolerance(name):
    net = hinas.load_pretrained(name)
    folded = hinas.load_pretrained(name, fold=True)
    assert getattr(folded, FOLDED) and conv_bn_pairs(folded) == 0
    x = photo(ModelSpec.load(pretrained_folder(name)).task.channels, 96)
    assert max_difference(net, folded, x) < TOLERANCE


def test_folded_copy_never_trains():
    net = trained_like(NETWORKS["hinas-denoise"])
    folded = fold_batchnorm(net)
    assert not any(p.requires_grad for p in folded.parameters())
    assert all(p.requires_grad for p in net.parameters())
    folded.train()
    with pytest.raises(HinasError, match="folded for inference and cannot train"):
        folded(photo(1, 16))
    again = fold_batchnorm(folded.eval())  # folding twice changes nothing
    assert max_difference(again, folded, photo(1, 24)) == 0


def test_restore_image_runs_the_folded_copy_and_leaves_the_module_as_it_was():
    net = trained_like(NETWORKS["dncnn"]).train()
    img = data.camera()[100:164, 200:264]
    out = restore_image(net, img)
    assert net.training and any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    with torch.no_grad():
        expected = net.eval()(torch.from_numpy(img / np.float32(255))[None, None])
    reference = np.clip(np.round(expected[0, 0].numpy() * 255), 0, 255)
    assert np.abs(out.astype(float) - reference).max() <= 1  # rounding at most one level


@pytest.mark.parametrize("name", ["hinas-denoise", "dncnn", "hinas-sr"])
def test_exported_onnx_is_folded_and_matches(name, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    onnx = pytest.importorskip("onnx")
    from hinas.models.export import OnnxModel, export_onnx

    spec = NETWORKS[name]
    net = trained_like(spec)
    path = export_onnx(net, tmp_path / "m.onnx", spec.task.channels)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "BatchNormalization" not in ops
    x = photo(spec.task.channels, 48)
    with torch.no_grad():
        assert (OnnxModel(path)(x) - net(x)).abs().max().item() < TOLERANCE
