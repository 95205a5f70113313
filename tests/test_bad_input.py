"""Every bad input the CLI meets is one line `hinas: error: <file>: <problem>` and exit status 2:
images too small to score or too large to decode, outputs that cannot be written, malformed
overrides; and restoration of a huge image by tiles, all or nothing, with normal permissions."""

import errno
import json
import os
import shutil
import struct
import zlib

import numpy as np
import pytest
import torch
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
            "gray": gray, "rgb": rgb}


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


@pytest.fixture(scope="module")
def hostile(models, tmp_path_factory):
    """Everything the rows of `test_hostile_cli_inputs` name, in one folder: a training run and
    a search run to resume, photos, a nested input/output pair, broken genotypes and configs, a
    run that never wrote a checkpoint, a truncated image."""
    base = tmp_path_factory.mktemp("hostile")
    shutil.copytree(models["gray"], base / "gray")
    shutil.copytree(models["denoise"], base / "train-run")
    assert main(["search", "--preset", "tiny", "--quiet", "--data", str(base / "gray"), "--out",
                 str(base / "search-run"), "--set", "search.epochs=1"]) == 0
    (base / "X" / "sub").mkdir(parents=True)
    shutil.copy(base / "gray" / "camera.png", base / "X" / "x.png")
    shutil.copy(base / "gray" / "coins.png", base / "X" / "sub" / "x.png")
    genotype = tiny_genotype(TaskConfig(sigma=[25.0])).to_dict()
    text = json.dumps(genotype)
    (base / "huge.json").write_text(text.replace('"width": 2', '"width": ' + "9" * 5000))
    (base / "path.json").write_text(json.dumps({**genotype, "path": "10"}))
    (base / "huge.yaml").write_text("search:\n  epochs: " + "9" * 5000 + "\n")
    (base / "no-checkpoint").mkdir()
    shutil.copy(base / "search-run" / "config.yaml", base / "no-checkpoint")
    (base / "broken").mkdir()
    for name in ("a.png", "b.png"):  # RGB, through the gray model with --convert
        shutil.copy(models["rgb"] / "coffee.png", base / "broken" / name)
    whole = (base / "broken" / "b.png").read_bytes()
    (base / "broken" / "b.png").write_bytes(whole[: len(whole) // 2])
    return base




SKIP_WITH_CUDA = pytest.mark.skipif(torch.backends.cuda.is_built(), reason="this torch has CUDA")
HOSTILE = [
    # devices: named with what there is, before any work
    pytest.param("eval --model {run} --data {gray} --sigma 25 --device cuda",
                 "--device cuda requested but this torch has no CUDA", marks=SKIP_WITH_CUDA),
    pytest.param("restore --model {run} {gray} -o {base}/out --device cuda:7",
                 "--device cuda:7 requested but this torch has no CUDA", marks=SKIP_WITH_CUDA),
    pytest.param("search --preset tiny --data {gray} --out {base}/new --device cuda",
                 "--device cuda requested but this torch has no CUDA", marks=SKIP_WITH_CUDA),
    pytest.param("train --preset tiny --genotype {run}/genotype.json --data {gray} --out "
                 "{base}/new --device cuda:7", "--device cuda:7 requested", marks=SKIP_WITH_CUDA),
    ("eval --model {run} --data {gray} --sigma 25 --device meta",
     "--device meta: hinas runs on cpu or cuda[:N], not meta"),
    ("restore --model {run} {gray} -o {base}/out --device xyz", "--device xyz: not a device"),
    # camera noise: any finite a ≥ 0 works, anything else is refused
    ("eval --method noisy --task camera --noise-a nan --noise-b 0 --data {gray}",
     "task.noise_a must be a number ≥ 0"),
    # genotypes, configs and overrides
    ("arch show {base}/huge.json", "huge.json: not a genotype (a number of more than 4300"),
    ("train --preset tiny --genotype {base}/huge.json --data {gray} --out {base}/new",
     "huge.json: not a genotype (a number of more than 4300 digits)"),
    ("arch show {base}/path.json", "malformed genotype: path must be a list, got '10'"),
    ("search --preset tiny --data {gray} --out {base}/new --config {base}/huge.yaml",
     "huge.yaml: not a config (a number of more than 4300 digits)"),
    ("search --preset tiny --data {gray} --out {base}/new --set search.epochs={huge}",
     "override search.epochs=...: the value is a number of more than 4300 digits"),
    # resuming a folder of another kind, or with other settings
    ("search --resume --out {run}", "holds a training run, not a search"),
    ("train --resume --out {base}/search-run", "holds a search, not a training run"),
    ("search --resume --out {base}/search-run --task jpeg --quality 20",
     "task.name, task.quality cannot change on --resume"),
    ("search --resume --out {base}/search-run --sigma 15", "task.sigma cannot change"),
    ("search --resume --out {base}/search-run --seed 3", "seed cannot change"),
    ("train --resume --out {run} --preset cpu", "preset cannot change"),
    ("search --resume --out {base}/no-checkpoint", "the run never wrote a checkpoint"),
    # learning rates and the rest of the optimisation settings
    ("search --preset tiny --data {gray} --out {base}/new --set search.w_lr=.nan",
     "search.w_lr must be a finite learning rate > 0, got nan"),
    ("train --preset tiny --genotype {run}/genotype.json --data {gray} --out {base}/new --set "
     "train.lr_min=-1", "train.lr_min must be a finite learning rate in [0, train.lr]"),
    ("search --preset tiny --data {gray} --out {base}/new --set search.grad_clip=-1",
     "search.grad_clip must be a finite number ≥ 0"),
    ("search --preset tiny --data {gray} --out {base}/new --set search.loss=ssim",
     "search.loss must be one of mse, mse+ssim, l1, l1+ssim"),
    # restore: no output replaces an input; a failure leaves nothing
    ("restore --model {run} {base}/X -o {base}/X/sub", "would replace an image of the input"),
    ("restore --model {run} {base}/broken -o {base}/out/deep --convert", "cannot read image"),
    # eval: given inputs, but for a model that changes the size
    ("eval --model {sr} --task paired --data {gray} --lq {gray}", "(not 'paired' as asked)"),
]


def tree(folder):
    """Every path under `folder`, with the bytes of its files."""
    return {p: None if p.is_dir() else p.read_bytes() for p in folder.rglob("*")}


@pytest.mark.parametrize("command, message", HOSTILE)
def test_hostile_cli_inputs(hostile, models, capsys, monkeypatch, command, message):
    """Each row exits 2 with one line `hinas: error: ...` holding `message`, no traceback, and
    writes nothing (the whole fixture folder, where it runs, is as it was)."""
    monkeypatch.chdir(hostile)
    argv = command.format(base=hostile, run=hostile / "train-run", gray=hostile / "gray",
                          sr=models["sr"], huge="9" * 5000).split()
    before = tree(hostile)
    quiet = ["--quiet"] if argv[0] in ("restore", "search", "train", "eval") else []
    assert main(argv + quiet) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hinas: error: "), err
    assert message in err and "Traceback" not in err, err
    assert tree(hostile) == before
