"""Paired images (`--lq DIR`): ground truths and the user's own degraded files, matched by name
stem, through search, training and evaluation; crops cut at the same place; every bad pairing a
one-line error that writes nothing."""

import json
import shutil

import numpy as np
import pytest
import yaml
from skimage import data

from hinas.cli import main
from hinas.config import TaskConfig
from hinas.data.datasets import PatchDataset, match_inputs
from hinas.data.degradations import (
    PairedFiles,
    build_degradation,
    sr_pair_for_image,
    task_degradation,
)
from hinas.data.images import collect_images, load_image, save_image
from hinas.errors import HinasError
from hinas.measures.metrics import to_uint8
from hinas.runtime.scoring import make_pairs
from hinas.space.genotype import Genotype
from tiny_runs import GRAY_PHOTOS, RGB_PHOTOS, tiny_genotype, write_photos

QUALITY = 20
TINY = ["--preset", "tiny", "--quiet"]
SHORT_SEARCH = ["--set", "search.epochs=2", "--set", "search.eval_from_epoch=2"]


def write_degraded(gt_dir, lq_dir, task: TaskConfig, suffix=".png"):
    """The degraded input of every ground truth of `gt_dir`, made by the repo's own degradation
    of `task` (`test_pair`) and written as 8-bit files of the same stem into `lq_dir`."""
    degradation = task_degradation(task.at_evaluation())
    for path in collect_images(gt_dir):
        lq, _ = degradation.test_pair(load_image(path, task.channels), 0, path.name)
        save_image(lq_dir / f"{path.stem}{suffix}", to_uint8(lq))
    return lq_dir


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Gray photographs and their JPEGs at quality 20, the inputs in a sub-folder (matching is
    recursive and by stem)."""
    root = tmp_path_factory.mktemp("pairs")
    gt = write_photos(root / "gt")
    write_degraded(gt, root / "lq" / "q20", TaskConfig(name="jpeg", quality=[QUALITY]))
    return gt, root / "lq"


@pytest.fixture(scope="module")
def sr_pairs(tmp_path_factory):
    """Colour photographs and their ×2 bicubic LR images (the repo's SR test pairs)."""
    root = tmp_path_factory.mktemp("sr-pairs")
    gt = write_photos(root / "hr", RGB_PHOTOS[:4], size=64)
    return gt, write_degraded(gt, root / "lr", TaskConfig(name="sr", scale=2, channels=3))


def test_paired_search_train_eval_end_to_end(pairs, tmp_path, capsys):
    gt, lq = pairs
    search, trained = tmp_path / "search", tmp_path / "trained"
    assert main(["search", "--task", "paired", "--data", str(gt), "--lq", str(lq), "--out",
                 str(search), *TINY, "--set", "search.epochs=1", "--set",
                 "search.warmup_epochs=0", "--set", "search.eval_from_epoch=1"]) == 0
    recorded = yaml.safe_load((search / "config.yaml").read_text())["data"]
    assert recorded["path"] == [str(gt)] and recorded["lq"] == [str(lq)]
    # --resume needs neither --data nor --lq: the run folder records both
    (search / "genotype.json").unlink()
    assert main(["search", "--out", str(search), "--resume", "--set", "search.epochs=2",
                 "--quiet"]) == 0
    assert f"--data {gt} --lq {lq} --preset tiny" in capsys.readouterr().out
    genotype = Genotype.load(search / "genotype.json")
    assert genotype.task.name == "paired"
    split = genotype.meta["data_split"]  # pairs are split, named by their ground truth
    assert sorted(n for part in split.values() for n in part) == sorted(
        f"{n}.png" for n in GRAY_PHOTOS)
    assert main(["train", "--genotype", str(search / "genotype.json"), "--data", str(gt),
                 "--lq", str(lq), "--out", str(trained), *TINY, "--iters", "10"]) == 0
    assert "--lq TEST_LQ_DIR" in capsys.readouterr().out
    assert json.loads((trained / "model.json").read_text())["meta"]["lq"] == [str(lq)]
    results = {}
    for name, how in (("model", ["--model", str(trained)]), ("identity", ["--method", "identity"]),
                      ("jpeg", ["--method", "jpeg", "--quality", str(QUALITY)])):
        inputs = [] if name == "jpeg" else ["--lq", str(lq)]
        assert main(["eval", *how, "--data", str(gt), *inputs, "--json",
                     str(tmp_path / f"{name}.json"), "--quiet"]) == 0
        results[name] = json.loads((tmp_path / f"{name}.json").read_text())
    table = capsys.readouterr().out
    assert f"on {gt} (inputs from {lq}): paired" in table
    model, identity = results["model"], results["identity"]
    assert model["convention"]["task"] == "paired" and model["convention"]["test_y_channel"]
    assert model["lq"] == str(lq) and len(model["rows"]) == len(GRAY_PHOTOS)
    assert 15 < model["mean"]["psnr"] < 45
    # the files scored as they are give exactly what the JPEG baseline makes of the same images
    assert identity["mean"]["psnr"] == pytest.approx(results["jpeg"]["mean"]["psnr"], abs=1e-9)
    assert 25 < identity["mean"]["psnr"] < 40


def test_sr_pairs_score_as_the_bicubic_baseline_and_train(sr_pairs, tmp_path):
    hr, lr = sr_pairs
    scores = []
    for inputs in (["--lq", str(lr)], []):
        out = tmp_path / f"bicubic{len(inputs)}.json"
        assert main(["eval", "--method", "bicubic", "--task", "sr", "--scale", "2", "--data",
                     str(hr), *inputs, "--json", str(out), "--quiet"]) == 0
        scores.append(json.loads(out.read_text())["mean"]["psnr"])
    assert scores[0] == pytest.approx(scores[1], abs=1e-9)  # the files are the bicubic LR
    genotype = tmp_path / "g.json"
    tiny_genotype(TaskConfig(name="sr", scale=2, channels=3)).save(genotype)
    assert main(["train", "--genotype", str(genotype), "--data", str(hr), "--lq", str(lr),
                 "--out", str(tmp_path / "t"), *TINY, "--iters", "4"]) == 0
    assert yaml.safe_load((tmp_path / "t" / "config.yaml").read_text())["data"]["lq"] == [
        str(lr)]


def blocky(photo: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """A ground truth made of `scale`×`scale` blocks of a photograph's pixels, and the photograph:
    an LQ crop is aligned with its GT crop exactly when it equals the GT crop's block values."""
    return np.kron(photo, np.ones((scale, scale, 1), np.uint8)), photo


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_training_crops_of_a_pair_come_from_the_same_place(scale):
    photos = [data.camera()[:60, :75, None], data.moon()[100:141, 50:97, None]]
    if scale == 1:  # same size: the input is the photograph's negative
        gts, lqs = photos, [255 - p for p in photos]
        degradation = PairedFiles()
    else:
        gts, lqs = zip(*(blocky(p, scale) for p in photos), strict=True)
        degradation = build_degradation("sr", scale=scale)
    dataset = PatchDataset(list(gts), 24, degradation, augment=True, length=64, seed=3,
                           inputs=list(lqs))
    for i in range(len(dataset)):
        lq, gt = (t.numpy() for t in dataset[i])
        assert lq.shape == (1, 24 // scale, 24 // scale) and gt.shape == (1, 24, 24)
        expected = 1 - gt if scale == 1 else gt[:, ::scale, ::scale]
        np.testing.assert_allclose(lq, expected, atol=1e-6)


def test_validation_crops_of_sr_pairs_are_aligned():
    gt, lq = blocky(data.camera()[:61, :80, None], 3)
    task = TaskConfig(name="sr", scale=3, channels=1)
    (pair,) = make_pairs({"camera.png": gt}, task, 0, crop=50, inputs={"camera.png": lq})
    assert pair.gt.shape == (48, 48, 1) and pair.lq.shape == (16, 16, 1)
    np.testing.assert_array_equal(pair.lq, pair.gt[::3, ::3])


def test_paired_task_simulates_nothing():
    with pytest.raises(HinasError, match="read from files"):
        PairedFiles()(np.zeros((8, 8, 1), np.float32), np.random.default_rng(0))
    with pytest.raises(HinasError, match="read from files"):
        PairedFiles().test_pair(np.zeros((8, 8, 1), np.uint8), 0, "x.png")


def test_inputs_are_matched_by_stem_recursively(pairs):
    gt, lq = pairs
    partners = match_inputs(collect_images(gt), lq)
    assert {(g.name, p.relative_to(lq).as_posix()) for g, p in partners.items()} == {
        (f"{n}.png", f"q20/{n}.png") for n in GRAY_PHOTOS}


def bad_pairs(kind, gt, lq, tmp):
    """Copies of good pairs broken one way; returns (ground-truth folder, input folder, the file
    the error names)."""
    g, q = tmp / "gt", tmp / "lq"
    shutil.copytree(gt, g)
    shutil.copytree(lq, q)
    sub = next(q.iterdir())
    if kind == "no input":
        (sub / "moon.png").unlink()
        return g, q, g / "moon.png"
    if kind == "no ground truth":
        (g / "moon.png").unlink()
        return g, q, sub / "moon.png"
    if kind == "size":
        save_image(sub / "moon.png", load_image(sub / "moon.png", 1)[:90])
        return g, q, sub / "moon.png"
    if kind == "channels":
        save_image(sub / "moon.png", np.repeat(load_image(sub / "moon.png", 1), 3, axis=2))
        return g, q, sub / "moon.png"
    if kind == "duplicate ground truth":
        save_image(g / "extra" / "moon.bmp", load_image(g / "moon.png", 1))
        return g, q, g / "extra" / "moon.bmp"
    if kind == "duplicate input":
        save_image(q / "moon.jpg", load_image(sub / "moon.png", 1))
        return g, q, q / "moon.jpg"
    raise ValueError(kind)


def assert_one_line_error(capsys, names=None):
    err = capsys.readouterr().err
    assert err.startswith("hinas: error: ") and err.count("\n") == 1, err
    if names is not None:
        assert str(names) in err, err
    return err


def commands(task_args, gt, lq, genotype, tmp):
    """search, train and eval of `task_args` on `gt`/`lq`: (argv, what it must not write)."""
    inputs = ["--data", str(gt)] + (["--lq", str(lq)] if lq else [])
    return [
        (["search", *task_args, *inputs, "--out", str(tmp / "s"), *TINY], tmp / "s"),
        (["train", "--genotype", str(genotype), *task_args, *inputs, "--out", str(tmp / "t"),
          *TINY], tmp / "t"),
        (["eval", "--method", "identity" if "paired" in task_args else "bicubic", *task_args,
          *inputs, "--json", str(tmp / "r.json")], tmp / "r.json"),
    ]


@pytest.mark.parametrize("kind", ["no input", "no ground truth", "size", "channels",
                                  "duplicate ground truth", "duplicate input"])
def test_bad_pairs_are_one_line_errors_naming_the_file(pairs, tmp_path, capsys, kind):
    gt, lq, named = bad_pairs(kind, *pairs, tmp_path)
    genotype = tmp_path / "g.json"
    tiny_genotype(TaskConfig(name="paired")).save(genotype)
    for argv, output in commands(["--task", "paired"], gt, lq, genotype, tmp_path):
        assert main(argv) == 2, argv
        assert_one_line_error(capsys, named)
        assert not output.exists()


def test_sr_inputs_must_match_the_scale(sr_pairs, tmp_path, capsys):
    hr, lr = sr_pairs
    genotype = tmp_path / "g.json"
    tiny_genotype(TaskConfig(name="sr", scale=3, channels=3)).save(genotype)
    for argv, output in commands(["--task", "sr", "--scale", "3"], hr, lr, genotype, tmp_path):
        assert main(argv) == 2, argv
        err = assert_one_line_error(capsys)
        assert "is 32x32 x 3 = 96x96, but its ground truth" in err, err
        assert not output.exists()


@pytest.mark.parametrize("task_args, with_lq, message", [
    (["--task", "denoise", "--sigma", "25"], True, "not 'denoise'"),
    (["--task", "jpeg", "--quality", "20"], True, "not 'jpeg'"),
    (["--task", "paired"], False, "give --lq DIR"),
])
def test_lq_and_the_task_go_together(pairs, tmp_path, capsys, task_args, with_lq, message):
    gt, lq = pairs
    genotype = tmp_path / "g.json"
    tiny_genotype(TaskConfig(name=task_args[1])).save(genotype)
    for argv, output in commands(task_args, gt, lq if with_lq else None, genotype, tmp_path):
        if argv[0] == "eval" and with_lq:
            continue  # eval takes given inputs for every task (test below)
        if argv[0] == "eval":  # a baseline of the task itself
            argv[2] = {"denoise": "noisy", "jpeg": "jpeg", "paired": "identity"}[task_args[1]]
        assert main(argv) == 2, argv
        assert message in assert_one_line_error(capsys)
        assert not output.exists()


def eval_json(tmp_path, name, *argv):
    """The JSON report of `hinas eval ARGV` (which must succeed)."""
    path = tmp_path / f"{name}.json"
    assert main(["eval", *map(str, argv), "--json", str(path), "--quiet"]) == 0
    return json.loads(path.read_text())


def test_a_jpeg_model_scores_given_pairs_as_its_synthetic_task(pairs, tmp_path):
    """JPEGs decoded and saved as PNG, given with --lq to the shipped JPEG model, score what the
    synthetic task scores at that quality (the same inputs), under the JPEG convention, and the
    report says they were given; `hinas restore` of those files writes the same outputs."""
    gt, lq = pairs
    given = eval_json(tmp_path, "given", "--pretrained", "jpeg-blind", "--data", gt, "--lq", lq,
                      "--save-images", tmp_path / "scored")
    made = eval_json(tmp_path, "made", "--pretrained", "jpeg-blind", "--data", gt,
                     "--quality", QUALITY)
    assert given["mean"]["psnr"] == pytest.approx(made["mean"]["psnr"], abs=0.05)
    assert given["inputs"] == "given" and made["inputs"] == "synthesised"
    assert given["convention"]["input_variant"].startswith("the degraded file")
    assert {k: given["convention"][k] for k in ("task", "test_y_channel", "crop_border")} == {
        k: made["convention"][k] for k in ("task", "test_y_channel", "crop_border")}
    assert main(["restore", "--pretrained", "jpeg-blind", str(lq), "-o",
                 str(tmp_path / "restored"), "--quiet"]) == 0
    for path in (tmp_path / "scored").iterdir():
        restored = load_image(tmp_path / "restored" / "q20" / path.name, 1)
        np.testing.assert_array_equal(restored, load_image(path, 1))
    as_paired = eval_json(tmp_path, "paired", "--pretrained", "jpeg-blind", "--task", "paired",
                          "--data", gt, "--lq", lq)
    assert as_paired["mean"]["psnr"] == pytest.approx(given["mean"]["psnr"], abs=1e-9)


def test_a_denoiser_scores_given_pairs_as_its_synthetic_task(dataset, tmp_path):
    """Set12 with its σ 25 test inputs saved as 8-bit PNGs, given to the shipped blind denoiser
    (no --sigma needed), scores within 0.05 dB of the synthetic (float) inputs."""
    set12 = dataset("Set12")
    write_degraded(set12, tmp_path / "noisy", TaskConfig(sigma=[25.0]))
    given = eval_json(tmp_path, "given", "--pretrained", "denoise-gray-blind", "--data", set12,
                      "--lq", tmp_path / "noisy")
    made = eval_json(tmp_path, "made", "--pretrained", "denoise-gray-blind", "--data", set12,
                     "--sigma", 25)
    assert given["inputs"] == "given" and given["convention"]["test_y_channel"] is False
    assert given["mean"]["psnr"] == pytest.approx(made["mean"]["psnr"], abs=0.05)


def test_pairs_made_from_the_shared_set5(dataset, tmp_path):
    """Set5 with its ×4 bicubic LR images as files scores the published bicubic anchor."""
    hr_dir, lr_dir = tmp_path / "hr", tmp_path / "lr"
    for path in collect_images(dataset("Set5/HR")):
        hr, lr = sr_pair_for_image(load_image(path, 3), 4)
        save_image(hr_dir / f"{path.stem}.png", hr)
        save_image(lr_dir / f"{path.stem}.png", lr)
    assert main(["eval", "--method", "bicubic", "--task", "sr", "--scale", "4", "--data",
                 str(hr_dir), "--lq", str(lr_dir), "--json", str(tmp_path / "r.json"),
                 "--quiet"]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["mean"]["psnr"] == pytest.approx(28.42, abs=0.05)


def test_pairs_through_the_python_api(pairs, tmp_path):
    import hinas
    from hinas.config import resolve

    gt, lq = pairs
    cfg = resolve("paired", "tiny", overrides=["search.epochs=1", "search.warmup_epochs=0",
                                               "search.eval_from_epoch=1", "train.iters=4"])
    genotype = hinas.search(cfg, gt, tmp_path / "s", quiet=True, lq=lq)
    assert genotype.task.name == "paired"
    spec = hinas.train(cfg, gt, tmp_path / "t", genotype, quiet=True, lq=[lq])
    assert spec.meta["lq"] == [str(lq)]
    assert f"with degraded inputs {lq}" in (tmp_path / "t" / "run.log").read_text()
    with pytest.raises(HinasError, match="give --lq DIR"):
        hinas.train(cfg, gt, tmp_path / "t2", genotype, quiet=True)
    assert not (tmp_path / "t2").exists()
