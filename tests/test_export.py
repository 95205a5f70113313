"""ONNX export of trained models (denoising and SR) and the ONNX Runtime restore backend."""

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from hinas.cli import main
from hinas.config import TaskConfig
from hinas.models.export import OPSET, OnnxModel, onnx_model, onnx_task, read_metadata
from hinas.models.folder import ModelSpec, load_model
from tiny_runs import RGB_PHOTOS, tiny_genotype, train_tiny, write_photos

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
pytest.importorskip("onnxscript", reason="the onnx extra is not installed")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    gray = write_photos(folder / "gray")
    rgb = write_photos(folder / "rgb", RGB_PHOTOS)
    return {
        "denoise": train_tiny(folder / "den", gray,
                              tiny_genotype(TaskConfig(name="denoise", sigma=[25.0]))),
        "sr": train_tiny(folder / "sr", rgb,
                         tiny_genotype(TaskConfig(name="sr", scale=3, channels=3)),
                         "--iters", "10"),
    }


@pytest.fixture(scope="module")
def exported(models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    files = {}
    for name, run in models.items():
        files[name] = folder / f"{name}.onnx"
        assert main(["export", "--model", str(run), "-o", str(files[name])]) == 0
    return files


@pytest.mark.parametrize("name", ["denoise", "sr"])
def test_exported_model_matches_pytorch_on_three_sizes(models, exported, name, capsys):
    model = load_model(models[name])
    channels = ModelSpec.load(models[name]).task.channels
    onnx = OnnxModel(exported[name])
    for h, w in [(32, 40), (57, 33), (96, 121)]:
        x = torch.rand(1, channels, h, w, generator=torch.Generator().manual_seed(h))
        with torch.no_grad():
            expected = model(x)
        got = onnx(x)
        assert got.shape == expected.shape
        assert (got - expected).abs().max().item() < 1e-4


def test_file_metadata_names_opset_and_task(models, exported, capsys):
    meta = read_metadata(exported["sr"])
    assert meta["opset"] == str(OPSET)
    assert onnx_task(exported["sr"]) == ModelSpec.load(models["sr"]).task
    out = exported["denoise"].parent / "again.onnx"
    assert main(["export", "--model", str(models["denoise"]), "-o", str(out)]) == 0
    assert f"ONNX opset {OPSET}" in capsys.readouterr().out and out.is_file()


def test_a_network_in_memory_runs_as_its_exported_file(models, exported):
    x = torch.rand(1, 1, 40, 52, generator=torch.Generator().manual_seed(0))
    in_memory = onnx_model(load_model(models["denoise"]), threads=1)
    assert torch.allclose(in_memory(x), OnnxModel(exported["denoise"])(x), atol=1e-6)


def test_restore_with_onnxruntime_matches_torch(models, exported, tmp_path):
    rng = np.random.default_rng(0)
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(rng.integers(0, 256, (45, 61), dtype=np.uint8)).save(src / "a.png")
    outputs = {}
    for label, model, backend in [("torch", models["denoise"], "torch"),
                                  ("folder", models["denoise"], "onnxruntime"),
                                  ("file", exported["denoise"], "onnxruntime")]:
        assert main(["restore", str(src), "--model", str(model), "-o", str(tmp_path / label),
                     "--backend", backend, "--quiet"]) == 0
        outputs[label] = np.asarray(Image.open(tmp_path / label / "a.png"), dtype=int)
    assert np.abs(outputs["folder"] - outputs["torch"]).max() <= 1
    assert np.array_equal(outputs["folder"], outputs["file"])


def test_missing_onnxruntime_is_a_one_line_error(models, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    rc = main(["restore", str(tmp_path), "--model", str(models["denoise"]), "-o",
               str(tmp_path / "out"), "--backend", "onnxruntime"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "onnxruntime" in err and 'pip install "hinas[onnx]"' in err


def test_export_errors(tmp_path, capsys):
    assert main(["export", "--model", str(tmp_path), "-o", str(tmp_path / "m.onnx")]) == 2
    assert "not a trained model" in capsys.readouterr().err
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    assert main(["restore", str(tmp_path), "--model", str(bad), "-o", str(tmp_path / "o"),
                 "--backend", "onnxruntime"]) == 2
    assert "not a readable ONNX file" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
