"""The demo: the main job end to end on scikit-image's own photographs, in its tiny form."""

import json
import re
from pathlib import Path

import pytest
import skimage
from PIL import Image

from hinas.cli import main
from hinas.demo import DEMO_TASKS, TEST_IMAGES, TRAIN_IMAGES, demo_task, skimage_image


def test_demo_photographs_ship_with_scikit_image():
    assert not set(TRAIN_IMAGES) & set(TEST_IMAGES)
    folder = Path(skimage.__file__).parent / "data"
    for name in (*TRAIN_IMAGES, *TEST_IMAGES):
        assert list(folder.glob(f"{name}.*")), name  # in the wheel: no download needed
        img = skimage_image(name)
        assert img.ndim == 3 and img.shape[2] == 1 and min(img.shape[:2]) >= 256


@pytest.mark.slow
def test_tiny_demo_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HINAS_DEMO_TINY", "1")  # same as --tiny
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    assert f"demo report written to {out / 'report.md'}" in capsys.readouterr().out
    report = (out / "report.md").read_text()
    assert "(tiny smoke run)" in report
    assert "| noisy input |" in report and "| hinas (found and trained) |" in report
    assert "| hinas pretrained (denoise-gray-blind) |" in report
    methods = ["noisy", "hinas", "pretrained"] + (["bm3d"] if (out / "eval" / "bm3d.json")
                                                  .exists() else [])
    for method in methods:
        result = json.loads((out / "eval" / f"{method}.json").read_text())
        assert sorted(r["image"] for r in result["rows"]) == sorted(f"{n}.png" for n in TEST_IMAGES)
        mean = f"{result['mean']['psnr']:.2f}"
        assert re.search(rf"\| {mean} \|", report), (method, mean)
    # every picture the report shows exists; before/after strips hold one panel per method
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report):
        assert (out / link).is_file(), link
    for name in TEST_IMAGES:
        with Image.open(out / "images" / f"{name}.png") as im:
            assert im.size == (96 * (len(methods) + 1) + 4 * len(methods), 96)
    assert "<table" in (out / "report.html").read_text()
    # the test images were used neither in the search nor in training
    trained = json.loads((out / "train" / "model.json").read_text())["meta"]["data_split"]
    searched = json.loads((out / "search" / "genotype.json").read_text())["meta"]["data_split"]
    used = {Path(p).stem for part in (*trained.values(), *searched.values()) for p in part}
    assert used == set(TRAIN_IMAGES)
    assert main(["demo", "--out", str(out), "--quiet"]) == 2
    assert "holds a demo already" in capsys.readouterr().err


def test_demo_task_is_denoising_unless_asked(tmp_path, capsys):
    assert demo_task(None) is DEMO_TASKS["denoise"]
    assert demo_task("jpeg").methods == ("jpeg",) and demo_task("jpeg").pretrained == "jpeg-blind"
    assert main(["demo", "--task", "camera", "--out", str(tmp_path / "d"), "--tiny"]) == 2
    err = capsys.readouterr().err
    assert err == "hinas: error: no demo for task 'camera'; known: denoise, jpeg\n"
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_tiny_jpeg_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--task", "jpeg", "--tiny", "--out", str(out), "--quiet"]) == 0
    assert "next: hinas search --task jpeg --quality 10:40" in capsys.readouterr().out
    report = (out / "report.md").read_text()
    assert report.startswith("# hinas demo: gray JPEG artefact removal, quality 10-40 (tiny")
    assert "| JPEG input |" in report and "| hinas (found and trained) |" in report
    assert "| hinas pretrained (jpeg-blind) |" in report and "BM3D" not in report
    assert "(jpeg-blind: gray JPEG artefact removal, quality 10–40 (blind)," in report
    results = {m: json.loads((out / "eval" / f"{m}.json").read_text())
               for m in ("jpeg", "hinas", "pretrained")}
    for result in results.values():
        assert result["task"]["name"] == "jpeg" and result["task"]["quality"] == [10, 40]
        assert result["convention"]["task"] == "jpeg"
        assert re.search(rf"\| {result['mean']['psnr']:.2f} \|", report)
    assert 20 < results["jpeg"]["mean"]["psnr"] < 40  # the decoded JPEG at quality 25
    config = json.loads((out / "train" / "model.json").read_text())["task"]
    assert (config["name"], config["channels"]) == ("jpeg", 1)
    for name in TEST_IMAGES:
        with Image.open(out / "images" / f"{name}.png") as im:  # JPEG | hinas | pretrained | clean
            assert im.size == (96 * 4 + 4 * 3, 96)
