"""The noise-level map input: a network told the noise of its input (FFDNet) is trained on a
range with the map of the level each crop drew, and told the level asked for when it evaluates,
restores (tiled or not) and runs from ONNX; a noise-map model given no level, or a blind one
given a level, is refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hinas.cli import main
from hinas.config import TaskConfig
from hinas.data.datasets import PatchDataset
from hinas.data.degradations import build_degradation, noise_map
from hinas.data.images import load_image, save_image
from hinas.errors import HinasError
from hinas.jobs.restore import restore_image, told_task
from hinas.models.architectures import MODELS
from hinas.models.folder import ModelSpec, load_model
from hinas.runtime.inference import NoiseLevelInput, restore_array
from hinas.tasks import noise_map_tasks
from tiny_runs import tiny_genotype, write_photos

MAPPED = [TaskConfig(name="denoise", sigma=[0.0, 55.0], sigma_sampling="uniform",
                     noise_map=True),
          TaskConfig(name="camera", noise_a=[0.0, 0.02], noise_b=[0.0, 0.001], noise_map=True,
                     channels=3)]


def test_the_map_is_the_noise_deviation_at_every_pixel():
    """Gaussian noise: σ/255 everywhere; camera noise: sqrt(a·max(y, 0) + b), for NumPy and
    torch alike."""
    y = np.array([[-0.1, 0.0, 0.25, 1.2]])
    assert np.allclose(noise_map(y, 0.0, (25 / 255) ** 2), 25 / 255)
    assert np.allclose(noise_map(y, 0.01, 0.0004), np.sqrt(0.01 * np.clip(y, 0, None) + 0.0004))
    assert torch.allclose(noise_map(torch.tensor(y), 0.01, 0.0004),
                          torch.tensor(noise_map(y, 0.01, 0.0004)))


@pytest.mark.parametrize("task", MAPPED, ids=lambda t: t.name)
def test_training_crops_carry_the_map_of_the_level_drawn(task):
    """Each crop's map is that of its own level, and the noisy image is the one a blind model
    would get from the same seed."""
    from hinas.data.degradations import task_degradation

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 40, task.channels), dtype=np.uint8)]
    degradation = task_degradation(task)
    mapped = PatchDataset(images, 16, degradation, length=6, seed=1, noise_map=True)
    blind = PatchDataset(images, 16, degradation, length=6, seed=1)
    maps = []
    for k in range(6):
        (lq, _), (plain, _) = mapped[k], blind[k]
        c = task.channels
        assert lq.shape[0] == 2 * c and torch.equal(lq[:c], plain)
        maps.append(float(lq[c:].mean()))
    assert len({round(m, 6) for m in maps}) == 6  # a level per crop
    if task.name == "denoise":
        assert all(float(mapped[k][0][1:].std()) < 1e-6 for k in range(6))  # constant σ/255


def test_a_map_needs_simulated_noise():
    with pytest.raises(HinasError, match="simulated noise"):
        PatchDataset([np.zeros((32, 32, 1), np.uint8)], 16, build_degradation("sr", scale=2),
                     noise_map=True)


@pytest.mark.parametrize("arch", ["hinas", "ffdnet", "dncnn"])
@pytest.mark.parametrize("task", MAPPED, ids=lambda t: t.name)
def test_every_architecture_takes_the_map(arch, task):
    """The network takes image and map (2C channels) and returns the image's C; told a level it
    takes the image alone."""
    genotype = tiny_genotype(TaskConfig(name=task.name, channels=task.channels))
    entry = MODELS.get(arch)
    if entry.tasks is not None and task.name not in entry.tasks:
        pytest.skip(f"{arch} is not for {task.name}")
    options = {"depth": 5, "width": 8} if arch == "dncnn" else {}
    net = ModelSpec(arch, task, options, genotype if entry.needs_genotype else None).build()
    x = torch.rand(1, task.channels, 17, 22)
    told = NoiseLevelInput(net.eval(), (0.0, (25 / 255) ** 2))
    assert told(x).shape == x.shape
    assert net(torch.cat([x, x], 1)).shape == x.shape


def test_levels_are_checked():
    task = MAPPED[0]
    assert told_task(task, {"sigma": 25}, "m").noise_variance() == (0.0, (25 / 255) ** 2)
    with pytest.raises(HinasError, match="give --sigma S"):
        told_task(task, {}, "m")
    with pytest.raises(HinasError, match="give --sigma S"):
        told_task(task, {"noise_a": 0.01}, "m")
    with pytest.raises(HinasError, match="no noise-map input"):
        told_task(TaskConfig(), {"sigma": 25}, "m")
    camera = told_task(MAPPED[1], {"noise_a": 0.01, "noise_b": 0.0004}, "m")
    assert camera.noise_variance() == (0.01, 0.0004)
    assert noise_map_tasks() == ["camera", "denoise"]


@pytest.fixture(scope="module")
def mapped_model(tmp_path_factory):
    """A tiny blind noise-map denoiser trained from the command line."""
    tmp = tmp_path_factory.mktemp("mapped")
    photos = write_photos(tmp / "photos", size=64)
    genotype = tiny_genotype(TaskConfig())
    genotype.save(tmp / "g.json")
    out = tmp / "train"
    assert main(["train", "--genotype", str(tmp / "g.json"), "--sigma", "0:55", "--noise-map",
                 "--data", str(photos), "--out", str(out), "--preset", "tiny", "--quiet"]) == 0
    return out, photos


def test_noise_map_model_end_to_end(mapped_model, tmp_path, capsys):
    """Train (above), evaluate at two σ, restore told σ (tiled and whole alike), export to ONNX
    and restore with ONNX Runtime: the same output."""
    out, photos = mapped_model
    spec = ModelSpec.load(out)
    assert spec.task.noise_map and "noise-level map" in spec.task.in_words()
    scores = {}
    for sigma in (15, 50):
        path = tmp_path / f"e{sigma}.json"
        assert main(["eval", "--model", str(out), "--data", str(photos), "--sigma", str(sigma),
                     "--quiet", "--json", str(path)]) == 0
        scores[sigma] = json.loads(path.read_text())["mean"]["psnr"]
    assert scores[15] > scores[50]
    noisy = tmp_path / "noisy"
    img = load_image(sorted(photos.iterdir())[0], 1).astype(np.float64)
    save_image(noisy / "n.png", np.clip(img + np.random.default_rng(0).normal(0, 25, img.shape),
                                        0, 255).round().astype(np.uint8))
    outputs = {}
    for name, extra in (("whole", []), ("tiled", ["--tile", "32", "--overlap", "16"]),
                        ("onnx", ["--backend", "onnxruntime"])):
        if name == "onnx":
            pytest.importorskip("onnxruntime")
            pytest.importorskip("onnxscript")
        assert main(["restore", "--model", str(out), str(noisy), "-o", str(tmp_path / name),
                     "--sigma", "25", "--quiet", *extra]) == 0
        outputs[name] = load_image(tmp_path / name / "n.png", 1).astype(int)
    assert np.abs(outputs["whole"] - outputs["onnx"]).max() <= 1
    assert np.abs(outputs["whole"] - outputs["tiled"]).max() <= 1
    model = load_model(out)
    direct = restore_image(model, load_image(noisy / "n.png", 1), levels={"sigma": 25})
    assert np.abs(direct.astype(int) - outputs["whole"]).max() <= 1
    told15 = restore_array(NoiseLevelInput(model.eval(), (0.0, (15 / 255) ** 2)),
                           load_image(noisy / "n.png", 1).astype(np.float64), 1, "cpu")
    assert not np.allclose(told15, outputs["whole"], atol=1)  # the level matters


def test_onnx_file_takes_the_map_as_an_input(mapped_model, tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    out, _ = mapped_model
    assert main(["export", "--model", str(out), "-o", str(tmp_path / "m.onnx")]) == 0
    names = [i.name for i in onnx.load(str(tmp_path / "m.onnx")).graph.input]
    assert names == ["x", "noise_map"]


@pytest.mark.parametrize("args,message", [
    ([], "a noise-map model is told the noise level of its inputs: give --sigma S"),
    (["--noise-a", "0.01"], "give --sigma S"),
])
def test_restore_without_its_level_is_refused(mapped_model, tmp_path, capsys, args, message):
    out, photos = mapped_model
    assert main(["restore", "--model", str(out), str(photos), "-o", str(tmp_path / "o"),
                 *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(out) in err[0]
    assert not (tmp_path / "o").exists()


def test_eval_of_a_blind_map_model_needs_its_level(mapped_model, capsys):
    out, photos = mapped_model
    assert main(["eval", "--model", str(out), "--data", str(photos)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "give --sigma S" in err[0]


def test_a_blind_model_given_a_level_is_refused(tmp_path, capsys):
    photos = write_photos(tmp_path / "photos", size=48)
    genotype = tiny_genotype(TaskConfig())
    genotype.save(tmp_path / "g.json")
    assert main(["train", "--genotype", str(tmp_path / "g.json"), "--sigma", "25", "--data",
                 str(photos), "--out", str(tmp_path / "t"), "--preset", "tiny", "--quiet",
                 "--iters", "2"]) == 0
    assert main(["restore", "--model", str(tmp_path / "t"), str(photos), "-o",
                 str(tmp_path / "o"), "--sigma", "25"]) == 2
    assert "no noise-map input" in capsys.readouterr().err


def test_noise_map_is_only_for_noise_tasks(tmp_path, capsys):
    photos = write_photos(tmp_path / "photos", size=48)
    assert main(["train", "--arch", "ffdnet", "--task", "jpeg", "--noise-map", "--data",
                 str(photos), "--out", str(tmp_path / "t"), "--preset", "tiny"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "noise_map" in err[0]


@pytest.mark.parametrize("extra", [["--set", "search.select=oneshot"], ["--strategy", "random"]])
def test_a_noise_map_search_builds_noise_map_genotypes(tmp_path, extra):
    """The supernet takes the map too; one-shot scoring and RSWS tell it the validation σ."""
    photos = write_photos(tmp_path / "photos", size=48)
    out = tmp_path / "search"
    assert main(["search", "--sigma", "0:55", "--noise-map", "--data", str(photos), "--out",
                 str(out), "--preset", "tiny", "--quiet", *extra]) == 0
    genotype = json.loads((out / "genotype.json").read_text())
    assert genotype["task"]["noise_map"] is True
