"""Evaluation: the bicubic SR anchors through the CLI, the JSON report, baselines, shared noisy
inputs, channel handling of test sets."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

import hinas.models.classical as classical
from hinas.cli import main
from hinas.config import TaskConfig
from hinas.errors import HinasError
from hinas.jobs.evaluate import evaluate_model, load_test_images
from hinas.models.classical import METHODS, get_method
from hinas.runtime.inference import run_on_channels
from hinas.runtime.scoring import make_pairs
from tiny_runs import GRAY_PHOTOS, RGB_PHOTOS, tiny_genotype, train_tiny, write_photos

DENOISE = TaskConfig(name="denoise", sigma=[25.0], channels=1)

# paper Table 12 (and the SRCNN/VDSR tables): bicubic, Y channel, `scale` border pixels cropped
ANCHORS = {(2, "Set5"): (33.66, None), (2, "Set14"): (30.24, None),
           (4, "Set5"): (28.42, 0.8104), (4, "Set14"): (26.00, 0.7027)}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def run(tmp_path_factory, photos):
    return train_tiny(tmp_path_factory.mktemp("train") / "run", photos, tiny_genotype(DENOISE))


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train_sr")
    photos = write_photos(folder / "photos", RGB_PHOTOS)
    task = TaskConfig(name="sr", scale=4, channels=3)
    return train_tiny(folder / "run", photos, tiny_genotype(task), "--iters", "10")


def identity_model():
    """A 1×1 convolution with weight 1: returns its input."""
    conv = torch.nn.Conv2d(1, 1, 1, bias=False)
    torch.nn.init.ones_(conv.weight)
    return conv


@pytest.mark.parametrize("scale,name", sorted(ANCHORS))
def test_bicubic_anchors_through_the_cli(dataset, tmp_path, scale, name):
    out = tmp_path / "bicubic.json"
    assert main(["eval", "--method", "bicubic", "--task", "sr", "--scale", str(scale),
                 "--data", str(dataset(f"{name}/HR")), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    psnr, ssim = ANCHORS[scale, name]
    assert result["mean"]["psnr"] == pytest.approx(psnr, abs=0.05)
    if ssim is not None:
        assert result["mean"]["ssim"] == pytest.approx(ssim, abs=0.002)
    assert result["convention"]["test_y_channel"] and result["convention"]["crop_border"] == scale
    if name == "Set14":  # bridge.png is gray: kept gray, scored on its own values
        assert any("1 gray image(s) kept gray" in n for n in result["notes"])


def test_model_eval_json_and_table(run, photos, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["eval", "--model", str(run), "--data", str(photos), "--sigma", "50",
                 "--json", str(out), "--save-images", str(tmp_path / "restored")]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert {"method", "task", "data", "device", "seed", "images", "rows", "mean",
            "seconds_per_image", "params", "macs", "macs_input", "tile", "overlap", "notes",
            "convention"} <= set(result)
    assert result["task"]["sigma"] == [50.0] and result["images"] == len(GRAY_PHOTOS)
    assert {"image", "psnr", "ssim", "seconds"} == set(result["rows"][0])
    assert result["mean"]["psnr"] == pytest.approx(np.mean([r["psnr"] for r in result["rows"]]))
    assert result["params"] > 0 and result["macs"] > 0 and result["macs_input"] == [96, 96]
    assert result["convention"]["description"].startswith("denoise: PSNR/SSIM on all channels")
    assert result["device"].startswith("cpu")
    for row in result["rows"]:
        assert row["image"] in printed
    assert "parameters" in printed and "MACs" in printed and "s/image on cpu" in printed
    assert sorted(p.name for p in (tmp_path / "restored").iterdir()) == \
        sorted(f"{n}.png" for n in GRAY_PHOTOS)


def test_an_infinite_psnr_is_written_as_valid_json(photos, tmp_path, capsys):
    """Inputs identical to their ground truths score PSNR inf: the JSON says "inf" (JSON has
    no infinity) and is valid for a strict parser."""
    out = tmp_path / "r.json"
    assert main(["eval", "--method", "identity", "--data", str(photos), "--lq", str(photos),
                 "--json", str(out), "--quiet"]) == 0
    assert "mean            inf" in capsys.readouterr().out

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    report = json.loads(out.read_text(), parse_constant=refuse)
    assert report["mean"]["psnr"] == "inf" and float(report["rows"][0]["psnr"]) == np.inf


def test_eval_takes_several_folders(run, photos, tmp_path, capsys):
    more = write_photos(tmp_path / "more", RGB_PHOTOS[:2])
    out = tmp_path / "eval.json"
    assert main(["eval", "--model", str(run), "--data", str(photos), str(more), "--sigma", "50",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["images"] == len(GRAY_PHOTOS) + 2 and result["data"] == f"{photos} {more}"
    assert "2 RGB image(s) converted to gray" in result["notes"][0]
    captured = capsys.readouterr()
    assert "eval denoise sigma=50" in captured.err and "100%" in captured.err  # progress bar
    printed = captured.out.splitlines()
    assert printed[-2] == f"results written to {out}"
    assert printed[-1] == f"next: hinas restore --model {run} INPUT... -o OUTDIR"
    assert main(["eval", "--method", "noisy", "--sigma", "50", "--data", str(photos),
                 "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    write_photos(tmp_path / "again", GRAY_PHOTOS[:1])
    assert main(["eval", "--model", str(run), "--data", str(photos), str(tmp_path / "again"),
                 "--sigma", "50"]) == 2
    assert "same file name as" in capsys.readouterr().err


def test_every_method_sees_the_same_noisy_input(photos):
    images, _ = load_test_images(photos, 1)
    as_model = evaluate_model(identity_model(), DENOISE, images, seed=3)
    as_baseline = evaluate_model("noisy", DENOISE, images, seed=3)
    assert [r["psnr"] for r in as_model.rows] == [r["psnr"] for r in as_baseline.rows]
    other_seed = evaluate_model("noisy", DENOISE, images, seed=4)
    assert as_baseline.rows[0]["psnr"] != other_seed.rows[0]["psnr"]
    assert as_baseline.mean["psnr"] == pytest.approx(20.2, abs=0.5)  # σ = 25 on clean images


def test_bm3d_baseline(photos):
    pytest.importorskip("bm3d")
    images, _ = load_test_images(photos, 1)
    images = dict(list(images.items())[:2])
    noisy = evaluate_model("noisy", DENOISE, images)
    bm3d = evaluate_model("bm3d", DENOISE, images)
    assert bm3d.mean["psnr"] > noisy.mean["psnr"] + 5


def test_bm3d_missing_is_a_clear_error(photos, monkeypatch, capsys):
    real = classical.importlib.util.find_spec
    monkeypatch.setattr(classical.importlib.util, "find_spec",
                        lambda name, *a: None if name == "bm3d" else real(name, *a))
    with pytest.raises(HinasError, match=r"pip install 'hinas\[bm3d\]'"):
        get_method("bm3d")
    assert main(["eval", "--method", "bm3d", "--sigma", "25", "--data", str(photos)]) == 2
    assert "needs the package 'bm3d'" in capsys.readouterr().err


def test_eval_argument_errors(run, photos, capsys):
    cases = [
        (["--method", "bicubic", "--task", "denoise", "--sigma", "25"], "is for the 'sr' task"),
        (["--method", "noisy"], "give the noise level"),
        (["--method", "nope"], "unknown classical method 'nope'"),
        (["--model", str(run), "--task", "sr", "--scale", "2"], "built for denoise"),
        ([], "give one of --model RUNDIR, --pretrained NAME or --method NAME"),
    ]
    for args, message in cases:
        assert main(["eval", "--data", str(photos), *args]) == 2
        assert message in capsys.readouterr().err
    assert set(METHODS.names()) >= {"bicubic", "noisy", "bm3d"}


def test_test_set_channels(tmp_path):
    Image.fromarray(data.astronaut()[:64, :64]).save(tmp_path / "rgb.png")
    Image.fromarray(data.camera()[:64, :64]).save(tmp_path / "gray.png")
    gray_set, notes = load_test_images(tmp_path, 1)
    assert all(img.shape == (64, 64, 1) for img in gray_set.values())
    assert notes == ["1 RGB image(s) converted to gray (ITU-R 601-2 luma)"]
    rgb_set, notes = load_test_images(tmp_path, 3)
    assert [img.shape[2] for img in rgb_set.values()] == [1, 3]  # gray.png stays gray
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n0000")
    with pytest.raises(HinasError, match="broken.png: cannot read image"):
        load_test_images(tmp_path, 1)


def test_gray_image_through_an_rgb_method():
    gray = data.camera()[:32, :32, None].astype(np.float64)
    seen = []

    def rgb_method(x):
        seen.append(x.shape)
        return x + np.array([1.0, 2.0, 3.0])

    out = run_on_channels(rgb_method, gray, 3)
    assert seen == [(32, 32, 3)] and out.shape == (32, 32, 1)
    np.testing.assert_allclose(out, gray + 0.299 * 1 + 0.587 * 2 + 0.114 * 3)
    with pytest.raises(HinasError, match="3-channel image cannot go through a 1-channel"):
        run_on_channels(rgb_method, np.zeros((4, 4, 3)), 1)


def test_sr_eval_pairs_are_modcropped(dataset):
    images, _ = load_test_images(dataset("Set14/HR"), 3)
    task = TaskConfig(name="sr", scale=4, channels=3)
    for pair in make_pairs(images, task, 0):
        assert pair.gt.shape[0] == 4 * pair.lq.shape[0] and pair.gt.shape[1] == 4 * pair.lq.shape[1]


def test_sr_model_eval_with_a_gray_image_in_the_set(sr_run, dataset, tmp_path):
    out = tmp_path / "sr.json"
    assert main(["eval", "--model", str(sr_run), "--data", str(dataset("Set14/HR")),
                 "--json", str(out), "--save-images", str(tmp_path / "sr")]) == 0
    result = json.loads(out.read_text())
    assert result["task"]["scale"] == 4 and result["convention"]["crop_border"] == 4
    assert result["images"] == 14 and 15 < result["mean"]["psnr"] < 35
    with Image.open(tmp_path / "sr" / "bridge.png") as im:  # gray in, gray out, HR size
        assert im.mode == "L" and im.size == (512, 512)
    assert main(["eval", "--model", str(sr_run), "--data", str(dataset("Set5/HR")),
                 "--scale", "2"]) == 2


@pytest.mark.slow
def test_bm3d_matches_published_set12_numbers(dataset, tmp_path):
    # DnCNN paper (Zhang et al. 2017) Table 3, BM3D at sigma 25: C.man 29.45, House 32.85 dB
    pytest.importorskip("bm3d")
    for name in ("01.png", "02.png"):
        (tmp_path / name).symlink_to(dataset("Set12") / name)
    report = evaluate_model("bm3d", DENOISE, load_test_images(tmp_path, 1)[0])
    assert [r["psnr"] for r in report.rows] == pytest.approx([29.45, 32.85], abs=0.15)



@pytest.mark.parametrize("name", METHODS.names())
def test_every_classical_method_scores_each_of_its_simulated_tasks(name, photos):
    method = METHODS.get(name)
    if not method.available:
        pytest.skip(f"{name} needs the package {method.requires!r}")
    for task_name in method.tasks:
        task = TaskConfig(name=task_name).at_evaluation()
        if type(task).from_files:  # its inputs are the user's files: tests/test_paired.py
            continue
        report = evaluate_model(name, task, load_test_images(photos, task.channels)[0])
        assert len(report.rows) == len(GRAY_PHOTOS) and 10 < report.mean["psnr"] < 60
