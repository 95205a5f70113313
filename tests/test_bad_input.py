"""Every bad input the CLI meets is one line `hinas: error: <file>: <problem>` and exit status 2:
images too small to score or too large to decode, outputs that cannot be written, malformed
overrides; and restoration of a huge image by tiles, all or nothing, with normal permissions."""

import errno
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import hinas
import hinas.io
from hinas.cli import main
from hinas.config import TaskConfig
from hinas.measures.metrics import to_uint8
from hinas.runtime.inference import restore_array
from tiny_runs import GRAY_PHOTOS, RGB_PHOTOS, tiny_genotype, train_tiny, write_photos


def blank_png(path, width, height):
    """A gray PNG that declares width×height, written row by row (a few hundred KB)."""

    def chunk(kind, payload):
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    z = zlib.compressobj(9)
    row = bytes(width + 1)
    data = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad")
    gray = write_photos(base / "gray", GRAY_PHOTOS[:4], 48)
    rgb = write_photos(base / "rgb", RGB_PHOTOS[:4], 48)
    return {"denoise": train_tiny(base / "den", gray, tiny_genotype(TaskConfig(sigma=[25.0])),
                                  "--iters", "4"),
            "sr": train_tiny(base / "sr", rgb, tiny_genotype(TaskConfig("sr", scale=2, channels=3)),
                             "--task", "sr", "--scale", "2", "--iters", "4"),
            "gray": gray}


def fails(capsys, argv, *expected):
    quiet = ["--quiet"] if argv[0] in ("restore", "search", "train", "eval") else []
    assert main([str(a) for a in argv] + quiet) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hinas: error: "), err
    for text in expected:
        assert text in err, err


def test_eval_on_an_image_under_the_ssim_window(models, tmp_path, capsys):
    Image.fromarray(np.zeros((8, 9), np.uint8)).save(tmp_path / "a.png")
    fails(capsys, ["eval", "--model", models["denoise"], "--data", tmp_path, "--sigma", "25"],
          f"{tmp_path / 'a.png'}: 9x8 image is too small to score", "11x11 SSIM window")


def test_sr_eval_on_a_one_pixel_image(models, tmp_path, capsys):
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "a.png")
    fails(capsys, ["eval", "--model", models["sr"], "--data", tmp_path],
          f"{tmp_path / 'a.png'}: 1x1 image is too small to score (sr x2 needs at least 15x15")


def test_eval_on_a_decompression_bomb(models, tmp_path, capsys):
    blank_png(tmp_path / "bomb.png", 14000, 14000)
    fails(capsys, ["eval", "--model", models["denoise"], "--data", tmp_path, "--sigma", "25"],
          f"{tmp_path / 'bomb.png'}: 14000x14000 image (196.0 MP) is over the limit of 4.2 MP")


def test_whole_image_restore_over_the_pixel_limit(models, tmp_path, capsys, monkeypatch):
    big = blank_png(tmp_path / "in" / "big.png", 3000, 1500)
    fails(capsys, ["restore", big, "--model", models["denoise"], "-o", tmp_path / "out"],
          f"{big}: 3000x1500 image (4.5 MP) is over the limit of 4.2 MP; restore it with --tile")
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv("HINAS_MAX_PIXELS", "1000")
    fails(capsys, ["restore", big, "--model", models["denoise"], "-o", tmp_path / "out",
                   "--tile", "256"], "is over the limit of 0.1 MP; raise HINAS_MAX_PIXELS")
    monkeypatch.setenv("HINAS_MAX_PIXELS", "lots")
    fails(capsys, ["restore", big, "--model", models["denoise"], "-o", tmp_path / "out"],
          "HINAS_MAX_PIXELS must be a whole number of pixels, got 'lots'")


def test_tiled_restore_writes_what_tiled_inference_computes(models, tmp_path):
    noisy = np.asarray(Image.open(models["gray"] / "camera.png"))
    Image.fromarray(np.tile(noisy, (3, 2))).save(tmp_path / "in.png")
    assert main(["restore", str(tmp_path / "in.png"), "--model", str(models["denoise"]), "-o",
                 str(tmp_path / "out"), "--tile", "40", "--overlap", "8", "--quiet"]) == 0
    expected = restore_array(hinas.load_model(models["denoise"]),
                             np.tile(noisy, (3, 2))[..., None].astype(np.float64), 1, "cpu",
                             tile=40, overlap=8)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "in.png")),
                                  to_uint8(expected)[..., 0])


def test_restore_into_an_existing_file(models, tmp_path, capsys):
    (tmp_path / "taken").write_text("mine")
    fails(capsys, ["restore", models["gray"] / "camera.png", "--model", models["denoise"],
                   "-o", tmp_path / "taken"], f"{tmp_path / 'taken'}: is a file")
    assert (tmp_path / "taken").read_text() == "mine"


def test_restore_is_all_or_nothing(models, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.open(models["gray"] / "camera.png").save(src / "a.png")
    whole = (models["gray"] / "coins.png").read_bytes()
    (src / "b.png").write_bytes(whole[: len(whole) // 2])  # header fine, pixels cut off
    fails(capsys, ["restore", src, "--model", models["denoise"], "-o", tmp_path / "out"],
          f"{src / 'b.png'}: cannot read image")
    assert not (tmp_path / "out").exists()


def test_restored_images_get_the_usual_permissions(models, tmp_path):
    assert main(["restore", str(models["gray"] / "camera.png"), "--model",
                 str(models["denoise"]), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "out" / "camera.png").stat().st_mode & 0o777 == 0o666 & ~mask


def test_eval_json_into_a_folder(models, tmp_path, capsys):
    fails(capsys, ["eval", "--model", models["denoise"], "--data", models["gray"], "--sigma",
                   "25", "--json", tmp_path], f"{tmp_path}: is a folder; give a file name")


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "No space left on device"),
                                         (errno.EROFS, "Read-only file system")])
def test_a_full_or_read_only_disk(models, tmp_path, capsys, monkeypatch, code, words):
    def broken(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(hinas.io.os, "fsync", broken)
    fails(capsys, ["eval", "--model", models["denoise"], "--data", models["gray"], "--sigma",
                   "25", "--json", tmp_path / "r.json"], f"{tmp_path / 'r.json'}: cannot write "
          f"({words})")
    monkeypatch.setattr(hinas.io.tempfile, "mkstemp", broken)
    fails(capsys, ["restore", models["gray"] / "camera.png", "--model", models["denoise"],
                   "-o", tmp_path / "out"], f"{tmp_path / 'out' / 'camera.png'}: cannot write "
          f"({words})")
    assert not list(tmp_path.glob("**/.*.tmp*"))


def test_arch_show_plot_to_an_unknown_format(models, capsys):
    fails(capsys, ["arch", "show", models["denoise"] / "genotype.json", "--plot", "x.xyz"],
          "x.xyz: cannot draw to a .xyz file; use .png, .svg or .pdf")


@pytest.mark.parametrize("override, problem", [
    ("search.epochs=[1", "override 'search.epochs=[1': the value is not valid YAML"),
    ("search.batch_size=100000000", "search.batch_size must be in 1..4096, got 100000000"),
    ("space.ops=[conv_3x3,conv_9x9]", "space.ops: unknown operation(s) ['conv_9x9']; known: "),
    ("space.ops=[none]", "space.ops must hold at least one operation other than 'none'"),
])
def test_malformed_or_absurd_overrides(models, tmp_path, capsys, override, problem):
    fails(capsys, ["search", "--preset", "tiny", "--data", models["gray"], "--out",
                   tmp_path / "r", "--set", override], problem)
    assert not (tmp_path / "r").exists()
