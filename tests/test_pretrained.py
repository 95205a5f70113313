"""Pretrained models shipped inside the package: listing, checksum, loading, CLI use, errors."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import hinas
import hinas.models.pretrained as pretrained
from hinas.cli import main
from hinas.errors import HinasError
from hinas.models.folder import WEIGHTS_FILE
from hinas.models.pretrained import (
    CARD_FILE,
    INFO_FILE,
    list_pretrained,
    model_card,
    pretrained_folder,
    pretrained_info,
    sha256_file,
)

SHIPPED = sorted(p.name for p in (Path(hinas.__file__).parent / "weights").iterdir()
                 if p.is_dir())
"""The model folders the package ships, read from its weights folder (not from the code under
test)."""


def test_the_shipped_models_are_the_weights_folders():
    assert SHIPPED and list_pretrained() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_are_complete_small_and_measured(name):
    assert name in list_pretrained()
    folder = pretrained_folder(name)
    info = pretrained_info(name)
    assert (folder / WEIGHTS_FILE).stat().st_size <= 2 * 2**20
    assert info["sha256"] == sha256_file(folder / WEIGHTS_FILE)
    assert (folder / CARD_FILE).read_text() == model_card(info)  # the card is generated
    assert info["results"] and all(r["psnr"] > 20 and 0 < r["ssim"] < 1
                                   for r in info["results"])
    model = hinas.load_pretrained(name)
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == info["params"]


def test_blind_denoiser_restores_real_noise_at_several_levels():
    from skimage import data

    from hinas.measures.metrics import psnr

    model = hinas.load_pretrained("denoise-gray-blind")
    clean = data.camera()[128:256, 128:256].astype(np.float32) / 255
    for sigma in (15, 50):
        noisy = clean + np.random.default_rng(sigma).normal(0, sigma / 255, clean.shape)
        with torch.no_grad():
            out = model(torch.from_numpy(noisy.astype(np.float32))[None, None])[0, 0].numpy()
        before = psnr(np.clip(noisy * 255, 0, 255), clean * 255)
        after = psnr(np.clip(out * 255, 0, 255), clean * 255)
        assert after > before + 3, (sigma, before, after)


def test_jpeg_model_removes_real_jpeg_artefacts_at_several_qualities():
    from skimage import data

    from hinas.data.degradations import jpeg_roundtrip
    from hinas.measures.metrics import psnr

    model = hinas.load_pretrained("jpeg-blind")
    clean = data.camera()[96:288, 96:288, None]
    for quality in (10, 30):
        coded = jpeg_roundtrip(clean, quality).astype(np.float32) / 255
        with torch.no_grad():
            out = model(torch.from_numpy(coded[None, None, ..., 0]))[0, 0].numpy()
        before = psnr(coded[..., 0] * 255, clean[..., 0].astype(np.float64))
        after = psnr(np.clip(out * 255, 0, 255), clean[..., 0].astype(np.float64))
        assert after > before + 0.3, (quality, before, after)


def test_models_command_prints_the_table(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in SHIPPED:
        info = pretrained_info(name)
        assert f"{name}: " in out and f"params {info['params']:,}" in out
        assert info["training"]["command"] in out
    assert "Set12 σ=25" in out and "Set14 ×4" in out
    lines = out.splitlines()
    assert "denoise-gray-blind: gray denoising σ 0–55 (blind) (hinas); Set12 σ=50: 26.25 dB " \
           "(BM3D 26.72 published)" in lines
    assert "sr-x4: RGB super-resolution ×4 (hinas); Set5 ×4: 30.61 dB (FSRCNN 30.71 published)" \
           in lines
    assert "sr-x2: RGB super-resolution ×2 (hinas); Set5 ×2: 37.15 dB (FSRCNN 37.05 published)" \
           in lines


@pytest.mark.parametrize("name", SHIPPED)
def test_headline_anchor_is_the_published_figure_of_the_card(name):
    info = pretrained_info(name)
    head = info["headline"]
    result = next(r for r in info["results"] if pretrained.result_label(r)
                  == pretrained.result_label(head))
    if head["anchor_source"] == "measured":  # the classical baseline scored beside it
        assert head["anchor_psnr"] == result["baseline_psnr"]
    else:
        assert f"{head['anchor']} {head['anchor_psnr']:.2f}" in result["reference"]
        assert "published" in result["reference"]
    assert pretrained.headline({k: v for k, v in info.items() if k != "headline"}) == ""


def test_restore_and_eval_with_a_pretrained_model(tmp_path, capsys):
    from skimage import data

    Image.fromarray(data.astronaut()[:40, :48]).save(tmp_path / "lr.png")
    assert main(["restore", "--pretrained", "sr-x4", str(tmp_path / "lr.png"), "-o",
                 str(tmp_path / "out"), "--quiet"]) == 0
    with Image.open(tmp_path / "out" / "lr.png") as im:
        assert im.size == (192, 160)
    (tmp_path / "test").mkdir()
    Image.fromarray(data.camera()[:64, :64]).save(tmp_path / "test" / "cam.png")
    assert main(["eval", "--pretrained", "denoise-gray-blind", "--data", str(tmp_path / "test"),
                 "--sigma", "25", "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["task"]["sigma"] == [25.0] and report["mean"]["psnr"] > 25
    capsys.readouterr()


@pytest.mark.parametrize("argv,message", [
    (["eval", "--pretrained", "nope", "--data", "."],
     "unknown pretrained model 'nope'; available: " + ", ".join(sorted(list_pretrained()))),
    (["eval", "--pretrained", "sr-x4", "--task", "denoise", "--sigma", "25", "--data", "."],
     "pretrained model sr-x4: built for sr x4 with 3 channel(s) (not 'denoise' as asked)"),
    (["eval", "--pretrained", "sr-x4", "--scale", "2", "--data", "."],
     "(not sr x2 as asked)"),
    (["eval", "--pretrained", "denoise-gray-blind", "--data", "."],
     "trained blind (denoise sigma=0:55): give the noise level"),
    (["eval", "--pretrained", "sr-x4", "--model", "x", "--data", "."],
     "give one of --model RUNDIR, --pretrained NAME or --method NAME"),
    (["restore", "--pretrained", "nope", "x.png", "-o", "out"],
     "unknown pretrained model 'nope'; available: " + ", ".join(sorted(list_pretrained()))),
    (["train", "--genotype", str(pretrained.weights_root() / "sr-x4" / "genotype.json"),
      "--data", ".", "--out", "never-written", "--init-from", "pretrained:nope"],
     "unknown pretrained model 'nope'; available: " + ", ".join(sorted(list_pretrained()))),
    (["restore", "x.png", "-o", "out"], "give either --model RUNDIR or --pretrained NAME"),
])
def test_pretrained_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_unknown_name_from_python_lists_the_known_ones():
    with pytest.raises(HinasError) as err:
        hinas.load_pretrained("denoise-colour")
    assert str(err.value) == ("unknown pretrained model 'denoise-colour'; available: "
                              + ", ".join(SHIPPED))


def test_wrong_channel_count_is_one_line(tmp_path, capsys):
    from skimage import data

    Image.fromarray(data.camera()[:32, :32]).save(tmp_path / "gray.png")
    assert main(["restore", "--pretrained", "sr-x4", str(tmp_path / "gray.png"), "-o",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "gray image, but the model restores RGB images" in err and err.count("\n") == 1


def test_corrupted_weights_are_refused(tmp_path, monkeypatch, capsys):
    shutil.copytree(pretrained.weights_root(), tmp_path / "weights")
    monkeypatch.setattr(pretrained, "weights_root", lambda: tmp_path / "weights")
    weights = tmp_path / "weights" / "sr-x4" / WEIGHTS_FILE
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF  # one flipped byte inside a tensor: still loadable, but not the model
    weights.write_bytes(bytes(blob))
    with pytest.raises(HinasError, match="corrupted weights"):
        hinas.load_pretrained("sr-x4")
    assert main(["restore", "--pretrained", "sr-x4", str(tmp_path), "-o",
                 str(tmp_path / "o")]) == 2
    assert "corrupted weights (SHA-256" in capsys.readouterr().err
    weights.unlink()
    with pytest.raises(HinasError, match="missing weights"):
        pretrained_folder("sr-x4")
    (tmp_path / "weights" / "sr-x4" / INFO_FILE).write_text("{")
    with pytest.raises(HinasError, match="unreadable model metadata"):
        pretrained_folder("sr-x4")


def test_the_readme_table_is_every_shipped_model_as_its_card_measured_it():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("## Shipped models against their anchors")[1].split("\n\n**")[0]
    rows, model = {}, None
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) >= 3 and cells[1] and cells[2][:1].isdigit():
            model = cells[0].strip("`") or model
            rows.setdefault(model, {})[cells[1]] = float(cells[2])
    assert sorted(rows) == SHIPPED
    for name, measured in rows.items():
        card = {pretrained.result_label(r): r["psnr"] for r in pretrained_info(name)["results"]}
        assert {label: round(card[label], 2) for label in measured} == measured
