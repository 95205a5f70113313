"""Restoring users' images: names and formats kept, 16-bit in/out, channel and corrupt-file errors,
tiled inference agreeing with whole-image inference (denoising and SR)."""

import numpy as np
import png
import pytest
from PIL import Image
from skimage import data

import hinas
from hinas.cli import main
from hinas.config import TaskConfig
from hinas.data.degradations import noisy_for_image, sr_pair_for_image
from hinas.measures.metrics import psnr, to_uint8
from hinas.runtime.inference import restore_array
from tiny_runs import RGB_PHOTOS, tiny_genotype, train_tiny, write_photos


@pytest.fixture(scope="module")
def denoiser(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    task = TaskConfig(name="denoise", sigma=[25.0], channels=1)
    return train_tiny(folder / "run", write_photos(folder / "photos"), tiny_genotype(task))


@pytest.fixture(scope="module")
def upscaler(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train_sr")
    task = TaskConfig(name="sr", scale=2, channels=3)
    photos = write_photos(folder / "photos", RGB_PHOTOS)
    return train_tiny(folder / "run", photos, tiny_genotype(task), "--iters", "10")


@pytest.fixture(scope="module")
def noisy_camera():
    """The cameraman with σ = 25 noise, as an 8-bit image file would hold it."""
    return to_uint8(noisy_for_image(data.camera()[..., None], 25, 0, "camera.png"))


def test_restore_files_and_folders_keep_names_and_formats(denoiser, noisy_camera, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(noisy_camera[..., 0]).save(src / "camera.png")
    Image.fromarray(noisy_camera[:200, :300, 0]).save(src / "sub" / "crop.bmp")
    Image.fromarray(noisy_camera[:100, :120, 0]).save(tmp_path / "single.jpg")
    rc = main(["restore", "--model", str(denoiser), str(src), str(tmp_path / "single.jpg"),
               "-o", str(tmp_path / "out"), "--quiet"])
    assert rc == 0
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*")) == \
        ["camera.png", "single.jpg", "sub/crop.bmp"]
    with Image.open(out / "sub" / "crop.bmp") as im:
        assert (im.format, im.mode, im.size) == ("BMP", "L", (300, 200))
    with Image.open(out / "single.jpg") as im:
        assert im.format == "JPEG"
    restored = np.asarray(Image.open(out / "camera.png"))
    expected = restore_array(hinas.load_model(denoiser), noisy_camera.astype(np.float64), 1,
                             "cpu")
    np.testing.assert_array_equal(restored, to_uint8(expected)[..., 0])


def test_16bit_in_16bit_out(denoiser, noisy_camera, tmp_path):
    wide = noisy_camera[:128, :128, 0].astype(np.uint16) * 257 + 100
    Image.fromarray(wide).save(tmp_path / "wide.png")
    assert main(["restore", "--model", str(denoiser), str(tmp_path / "wide.png"), "-o",
                 str(tmp_path / "out"), "--quiet"]) == 0
    with Image.open(tmp_path / "out" / "wide.png") as im:
        assert im.mode == "I;16"
        out16 = np.asarray(im).astype(np.float64)
    expected = restore_array(hinas.load_model(denoiser), wide[..., None] / 257.0, 1, "cpu")
    np.testing.assert_allclose(out16, np.clip(expected[..., 0], 0, 255) * 257, atol=0.51)
    assert len(np.unique(out16 % 257)) > 1  # real 16-bit values, not 8-bit ones scaled up


def test_16bit_rgb_png_in_16bit_rgb_png_out(upscaler, tmp_path):
    lr = data.astronaut()[100:164, 150:220]
    wide = (lr.astype(np.uint16) * 257 + 200).astype(np.uint16)  # low bytes carry information
    h, w, _ = wide.shape
    with open(tmp_path / "wide.png", "wb") as f:
        png.Writer(w, h, greyscale=False, bitdepth=16).write(f, wide.reshape(h, -1).tolist())
    assert main(["restore", "--model", str(upscaler), str(tmp_path / "wide.png"), "-o",
                 str(tmp_path / "out"), "--quiet"]) == 0
    with open(tmp_path / "out" / "wide.png", "rb") as f:
        width, height, rows, info = png.Reader(file=f).read()
        out16 = np.array([list(r) for r in rows], np.float64).reshape(height, width, 3)
    assert (width, height, info["bitdepth"], info["planes"]) == (2 * w, 2 * h, 16, 3)
    expected = restore_array(hinas.load_model(upscaler), wide / 257.0, 2, "cpu")
    np.testing.assert_allclose(out16, np.clip(expected, 0, 255) * 257, atol=0.51)
    assert len(np.unique(out16 % 257)) > 1  # real 16-bit values, not 8-bit ones scaled up


def test_wrong_channels_need_convert(denoiser, tmp_path, capsys):
    Image.fromarray(data.astronaut()[:64, :64]).save(tmp_path / "rgb.png")
    out = tmp_path / "out"
    assert main(["restore", "--model", str(denoiser), str(tmp_path / "rgb.png"), "-o",
                 str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"hinas: error: {tmp_path / 'rgb.png'}: RGB image, but the model restores "
                   f"gray images; pass --convert to convert it")
    assert not out.exists()
    assert main(["restore", "--model", str(denoiser), str(tmp_path / "rgb.png"), "-o",
                 str(out), "--quiet", "--convert"]) == 0
    with Image.open(out / "rgb.png") as im:
        assert im.mode == "L" and im.size == (64, 64)


def test_corrupt_file_is_named_and_nothing_is_written(denoiser, noisy_camera, tmp_path, capsys):
    Image.fromarray(noisy_camera[:64, :64, 0]).save(tmp_path / "a_good.png")
    (tmp_path / "b_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    assert main(["restore", "--model", str(denoiser), str(tmp_path), "-o",
                 str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{tmp_path / 'b_broken.png'}: cannot read image" in err
    assert not (tmp_path / "out").exists()  # every input is checked before any output


def test_restore_errors(denoiser, tmp_path, capsys):
    assert main(["restore", "--model", str(denoiser), str(tmp_path / "nope.png"), "-o",
                 str(tmp_path)]) == 2
    assert "nope.png: no such file or folder" in capsys.readouterr().err
    assert main(["restore", "--model", str(tmp_path), str(tmp_path), "-o", str(tmp_path)]) == 2
    assert "not a trained model" in capsys.readouterr().err
    Image.fromarray(data.camera()[:64, :64]).save(tmp_path / "cam.png")
    assert main(["restore", "--model", str(denoiser), str(tmp_path / "cam.png"), "-o",
                 str(tmp_path / "out"), "--tile", "32", "--overlap", "32", "--quiet"]) == 2
    assert "tile overlap must be in 0..31 for 32-pixel tiles" in capsys.readouterr().err
    assert main(["restore", "--model", str(denoiser), str(tmp_path / "cam.png"), "-o",
                 str(tmp_path)]) == 2
    assert "would replace the input" in capsys.readouterr().err


def snapshot(folder):
    """Every file under `folder` with its bytes (a symbolic link as where it points)."""
    return {p.relative_to(folder): p.readlink() if p.is_symlink() else p.read_bytes()
            for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


def test_no_output_replaces_an_input_in_a_nested_output_folder(denoiser, tmp_path, capsys):
    (tmp_path / "X" / "sub").mkdir(parents=True)
    Image.fromarray(data.camera()[:64, :64]).save(tmp_path / "X" / "x.png")
    Image.fromarray(data.coins()[:64, :64]).save(tmp_path / "X" / "sub" / "x.png")
    before = snapshot(tmp_path)
    assert main(["restore", "--model", str(denoiser), str(tmp_path / "X"), "-o",
                 str(tmp_path / "X" / "sub"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and (f"{tmp_path / 'X' / 'sub' / 'x.png'}: the output of "
                                     f"{tmp_path / 'X' / 'x.png'} would replace an image of "
                                     f"the input folder {tmp_path / 'X'}") in err
    assert snapshot(tmp_path) == before


def test_a_second_run_into_a_nested_folder_never_restores_its_outputs(denoiser, tmp_path,
                                                                      capsys):
    photos = write_photos(tmp_path / "D", ("camera", "coins"), 48)
    assert main(["restore", "--model", str(denoiser), str(photos), "-o",
                 str(photos / "restored"), "--quiet"]) == 0
    assert sorted(p.name for p in (photos / "restored").iterdir()) == ["camera.png", "coins.png"]
    before = snapshot(tmp_path)
    assert main(["restore", "--model", str(denoiser), str(photos), "-o",
                 str(photos / "restored"), "--quiet"]) == 2
    assert "outputs never replace inputs" in capsys.readouterr().err
    assert snapshot(tmp_path) == before  # no restored/restored/, no rewritten output
    (photos / "restored" / "camera.png").unlink()  # a free name: the earlier outputs are no
    (photos / "restored" / "coins.png").rename(photos / "restored" / "old.png")  # inputs
    assert main(["restore", "--model", str(denoiser), str(photos), "-o",
                 str(photos / "restored"), "--quiet"]) == 0
    assert sorted(p.name for p in (photos / "restored").iterdir()) == [
        "camera.png", "coins.png", "old.png"]


def test_an_output_that_is_a_link_to_an_input_is_refused(denoiser, tmp_path, capsys):
    Image.fromarray(data.camera()[:64, :64]).save(tmp_path / "x.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.png").symlink_to(tmp_path / "x.png")
    before = snapshot(tmp_path)
    assert main(["restore", "--model", str(denoiser), str(tmp_path / "x.png"), "-o",
                 str(tmp_path / "out"), "--quiet"]) == 2
    assert "would replace the input" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_a_failed_convert_leaves_no_output_folder(denoiser, tmp_path, capsys):
    rgb = tmp_path / "in" / "rgb.png"
    rgb.parent.mkdir()
    Image.fromarray(data.coffee()[:64, :64]).save(tmp_path / "in" / "a.png")  # restored first
    Image.fromarray(data.astronaut()[:64, :64]).save(rgb)
    whole = rgb.read_bytes()
    rgb.write_bytes(whole[: len(whole) // 2])  # header fine, pixels cut off
    assert main(["restore", "--model", str(denoiser), str(rgb.parent), "-o",
                 str(tmp_path / "out" / "deep"), "--convert", "--quiet"]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_tiled_matches_whole_image_denoising(denoiser, noisy_camera):
    model = hinas.load_model(denoiser)
    clean, lq = data.camera()[..., None], noisy_camera.astype(np.float64)
    whole = restore_array(model, lq, 1, "cpu")
    tiled = restore_array(model, lq, 1, "cpu", tile=128, overlap=32)
    seams = restore_array(model, lq, 1, "cpu", tile=128, overlap=0)
    assert abs(psnr(to_uint8(whole), clean) - psnr(to_uint8(tiled), clean)) <= 0.01
    assert np.abs(whole - tiled).max() < 1.0  # 0-255 scale: no visible seams
    assert np.abs(whole - seams).max() > 3 * np.abs(whole - tiled).max()  # blending matters


def test_tiled_matches_whole_image_sr(upscaler, tmp_path):
    model = hinas.load_model(upscaler)
    hr, lr = sr_pair_for_image(data.astronaut()[:200, :250], 2)
    whole = restore_array(model, lr.astype(np.float64), 2, "cpu")
    tiled = restore_array(model, lr.astype(np.float64), 2, "cpu", tile=64, overlap=24)
    assert whole.shape == tiled.shape == hr.shape
    assert abs(psnr(to_uint8(whole), hr, 2, True) - psnr(to_uint8(tiled), hr, 2, True)) <= 0.01
    Image.fromarray(lr).save(tmp_path / "lr.png")
    assert main(["restore", "--model", str(upscaler), str(tmp_path / "lr.png"), "-o",
                 str(tmp_path / "out"), "--tile", "64", "--overlap", "24", "--quiet"]) == 0
    with Image.open(tmp_path / "out" / "lr.png") as im:
        assert im.size == (hr.shape[1], hr.shape[0]) and im.mode == "RGB"
