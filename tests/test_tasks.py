"""The restoration tasks: every registered task is a self-describing unit (levels, checks,
evaluation level, descriptions, convention, baseline, packaging tests, degradation), a new one is
one task class and one degradation, and the tasks beyond the paper's two (JPEG artefact removal,
camera noise) run end to end through the command line: search, train, eval, restore, their
baselines and their bad input."""

import dataclasses
import json
import math
from dataclasses import dataclass

import numpy as np
import pytest
import yaml
from numpy.lib.stride_tricks import sliding_window_view

from hinas.cli import build_parser, main
from hinas.config import TaskConfig, build_dataclass, resolve
from hinas.data.degradations import (
    DEGRADATIONS,
    draw_level,
    jpeg_roundtrip,
    level_values,
    poisson_gaussian,
    register_degradation,
    single_level,
    task_degradation,
)
from hinas.data.images import load_image
from hinas.errors import HinasError
from hinas.jobs.evaluate import load_test_images
from hinas.measures.metrics import Convention, psnr, ssim
from hinas.models.classical import METHODS, generalized_anscombe, inverse_generalized_anscombe
from hinas.runtime.scoring import make_pairs
from hinas.space.genotype import Genotype
from hinas.tasks import TASKS, level, option_fields, register_task
from tiny_runs import GRAY_PHOTOS, RGB_PHOTOS, tiny_genotype, train_tiny, write_photos

SHORT_SEARCH = ["--set", "search.epochs=2", "--set", "search.eval_from_epoch=2"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def rgb_photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("rgb"), RGB_PHOTOS[:3], size=64)


# --- every registered task -------------------------------------------------------------------


@pytest.mark.parametrize("name", TASKS.names())
def test_every_task_describes_itself(name):
    task = TaskConfig(name=name)
    task.validate()
    assert type(task) is TASKS.get(name) and task.name == name
    assert task.describe().startswith(name) and task.in_words().startswith(("gray ", "RGB "))
    assert task.channels == type(task).channels in (1, 3)
    evaluated = task.at_evaluation()
    evaluated.validate()
    assert not evaluated.blind and evaluated.at_evaluation() == evaluated
    assert isinstance(task.out_scale, int) and task.out_scale >= 1
    convention = Convention.for_task(name, task.out_scale)
    assert convention.task == name and convention.input_variant
    own = {f.name for f in dataclasses.fields(task)}
    assert set(task.result_fields()) <= own
    if not type(task).from_files:
        assert type(task).asks  # a classical method asks for what a new task lacks


@pytest.mark.parametrize("name", TASKS.names())
def test_every_task_has_its_degradation_and_baseline(name):
    task = TaskConfig(name=name)
    assert name in DEGRADATIONS.names()
    if not type(task).from_files:  # simulated: built from the task's own options
        assert task_degradation(task.at_evaluation()).scale == task.out_scale
    method, label = type(task).baseline
    assert name in METHODS.get(method).tasks and label


@pytest.mark.parametrize("name", TASKS.names())
def test_every_task_packaging_test_is_at_one_of_its_levels(name):
    for channels in (1, 3):
        task = TaskConfig(name=name, channels=channels)
        for test, fields in task.package_tests():
            at = task.at_evaluation().at_levels(fields)
            at.validate()
            assert test and all(at.result_fields()[k] == v for k, v in fields.items())


@pytest.mark.parametrize("name", TASKS.names())
def test_every_task_file_holds_only_its_own_fields(name):
    task = TaskConfig(name=name)
    written = dataclasses.asdict(task)
    assert set(written) == {f.name for f in dataclasses.fields(task)}
    assert build_dataclass(TaskConfig, written, "task") == task
    every_level = {n for t in TASKS.names() for n, _ in TASKS.get(t).levels()}
    older = {**{n: getattr(TaskConfig(name=t), n) for t in TASKS.names()
                for n, _ in TASKS.get(t).levels()}, **written}
    assert set(older) >= every_level  # a file of an older version: every task's fields
    assert build_dataclass(TaskConfig, older, "task") == task


@pytest.mark.parametrize("name", TASKS.names())
def test_every_task_command_line_level_parses_its_default(name):
    task = TaskConfig(name=name)
    given = {n: as_option(getattr(task, n)) for n, _ in task.options()}
    assert TaskConfig(name=name, **option_fields(name, given)) == task


def as_option(value):
    """A level as its command-line option takes it: `10`, `10:40`, an int for a choice."""
    return ":".join(str(v) for v in value) if isinstance(value, list) else value


def test_task_fields_of_other_tasks_are_dropped_and_unknown_ones_refused():
    sr = TaskConfig(name="sr", scale=2, sigma=[25.0], quality=[10])
    assert sr == TaskConfig(name="sr", scale=2) and not hasattr(sr, "sigma")
    assert dataclasses.replace(TaskConfig(name="jpeg", quality=[20]), name="camera") == \
        TaskConfig(name="camera")
    with pytest.raises(HinasError, match="unknown config key.*in task: bogus; known: channels, "
                                         "name, scale"):
        build_dataclass(TaskConfig, {"name": "sr", "bogus": 1}, "task")
    with pytest.raises(HinasError, match="task.name must be one of camera, denoise, jpeg"):
        resolve("deblur", "tiny")


# --- a new task: one task class, one degradation --------------------------------------------


def gaussian_blur(img: np.ndarray, width: float) -> np.ndarray:
    """`img` (HxWxC) blurred by a Gaussian of standard deviation `width` px, edges mirrored."""
    r = max(1, math.ceil(3 * width))
    kernel = np.exp(-0.5 * (np.arange(-r, r + 1) / width) ** 2)
    kernel /= kernel.sum()
    x = np.pad(np.asarray(img, dtype=np.float64), ((r, r), (r, r), (0, 0)), mode="reflect")
    x = sliding_window_view(x, 2 * r + 1, axis=0) @ kernel
    return sliding_window_view(x, 2 * r + 1, axis=1) @ kernel


@dataclass
class Blur(TaskConfig):
    """Gaussian blur of standard deviation `blur` pixels, one value or a range (blind)."""

    blur: list[float] = level([1.5], "blur standard deviation in pixels", "a number > 0",
                              lambda w: w > 0, metavar="W", tag="w=", label="w=",
                              example="0.5:2")

    title = "deblurring, width {blur}"
    asks = "the blur to evaluate at: --blur W (pixels)"
    input_text = "8-bit image blurred by a Gaussian of the evaluation width, in float"


class GaussianBlur:
    """The degradation of `Blur`."""

    scale = 1

    def __init__(self, blur):
        self.widths = level_values(blur, "blur", "blur", lambda w: w > 0, "a number > 0")

    def __call__(self, hr, rng):
        return gaussian_blur(hr, draw_level(self.widths, rng)).astype(np.float32)

    def lq_size(self, hr_h, hr_w):
        return hr_h, hr_w

    def test_pair(self, clean, seed, image_key):
        (width,) = single_level(self.widths, "blur: blur")
        return gaussian_blur(clean, width), clean


@pytest.fixture
def blur_task():
    register_task("blur")(Blur)
    register_degradation("blur")(GaussianBlur)
    yield Blur
    TASKS.remove("blur")
    DEGRADATIONS.remove("blur")


def test_a_new_task_is_one_class_and_its_degradation(blur_task, photos, tmp_path, capsys):
    cfg = resolve("blur", "tiny", task={"blur": [1.0, 2.0]})
    assert cfg.task.describe() == "blur w=1:2" and cfg.task.at_evaluation().blur == [1.5]
    assert cfg.task.in_words() == "gray deblurring, width 1–2 (blind)" and cfg.space.layers == 2
    with pytest.raises(HinasError, match="task.blur must be a number > 0"):
        resolve("blur", "tiny", task={"blur": [0.0]})
    assert not Convention.for_task("blur").test_y_channel
    pair = make_pairs(load_test_images(photos, 1)[0], cfg.task, 0)[0]
    assert psnr(pair.lq, pair.gt) < 40  # blurred at σ 1.5
    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["search"]
                         .format_help().split())
    assert "--blur W blur standard deviation in pixels: one value or a range" in help_text
    search = tmp_path / "search"
    assert main(["search", "--task", "blur", "--blur", "0.5:2", "--data", str(photos),
                 "--out", str(search), "--preset", "tiny", "--quiet", *SHORT_SEARCH]) == 0
    assert Genotype.load(search / "genotype.json").task == TaskConfig(name="blur",
                                                                      blur=[0.5, 2.0])
    assert main(["eval", "--method", "noisy", "--task", "blur", "--data", str(photos)]) == 2
    assert "give the blur to evaluate at: --blur W" in capsys.readouterr().err
    assert main(["eval", "--method", "noisy", "--task", "blur", "--blur", "1", "--data",
                 str(photos)]) == 2
    assert "is for the 'denoise' / 'camera' task" in capsys.readouterr().err


def test_jpeg_search_train_eval_restore_through_the_cli(photos, tmp_path, capsys):
    search, trained = tmp_path / "search", tmp_path / "search-train"
    assert main(["search", "--task", "jpeg", "--quality", "10:40", "--data", str(photos),
                 "--out", str(search), "--preset", "tiny", "--quiet", *SHORT_SEARCH]) == 0
    genotype = Genotype.load(search / "genotype.json")
    assert (genotype.task.name, genotype.task.quality) == ("jpeg", [10, 40])
    # training takes the task and its quality range from the genotype
    assert main(["train", "--genotype", str(search / "genotype.json"), "--data", str(photos),
                 "--out", str(trained), "--preset", "tiny", "--quiet", "--iters", "10"]) == 0
    task = yaml.safe_load((trained / "config.yaml").read_text())["task"]
    assert (task["name"], task["quality"]) == ("jpeg", [10, 40])
    capsys.readouterr()
    assert main(["eval", "--model", str(trained), "--data", str(photos), "--quiet",
                 "--json", str(tmp_path / "r.json")]) == 0
    assert "jpeg q=10:40 (evaluated at jpeg q=25)" in capsys.readouterr().out
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["convention"]["test_y_channel"] and result["convention"]["crop_border"] == 0
    assert len(result["rows"]) == len(GRAY_PHOTOS) and 15 < result["mean"]["psnr"] < 45
    assert main(["restore", "--model", str(trained), str(photos / "camera.png"), "-o",
                 str(tmp_path / "restored"), "--quiet"]) == 0
    assert load_image(tmp_path / "restored" / "camera.png", 1).shape == (96, 96, 1)


def test_colour_jpeg_through_the_python_api(rgb_photos, tmp_path):
    import hinas
    from hinas.config import resolve

    cfg = resolve("jpeg", "tiny", task={"quality": [20], "channels": 3}, overrides=[
        "train.iters=5", "search.epochs=1", "search.warmup_epochs=0", "search.eval_from_epoch=1"])
    genotype = hinas.search(cfg, rgb_photos, tmp_path / "search", quiet=True)
    assert genotype.task.describe() == "jpeg q=20" and genotype.task.channels == 3
    hinas.train(cfg, rgb_photos, tmp_path / "train", genotype, quiet=True)
    clean = load_image(rgb_photos / "astronaut.png", 3)
    restored = hinas.restore_image(hinas.load_model(tmp_path / "train"), jpeg_roundtrip(clean, 20))
    assert restored.shape == clean.shape and restored.dtype == np.uint8


@pytest.mark.parametrize("channels", [1, 3])
def test_eval_method_jpeg_scores_the_jpeg_itself(photos, rgb_photos, tmp_path, channels):
    folder = photos if channels == 1 else rgb_photos
    out = tmp_path / "jpeg.json"
    assert main(["eval", "--method", "jpeg", "--quality", "20", "--channels", str(channels),
                 "--data", str(folder), "--json", str(out), "--quiet"]) == 0
    rows = {r["image"]: r for r in json.loads(out.read_text())["rows"]}
    images, _ = load_test_images(folder, channels)
    for path, clean in images.items():
        decoded = jpeg_roundtrip(clean, 20)
        row = rows[path.name]
        assert row["psnr"] == pytest.approx(psnr(decoded, clean, 0, test_y_channel=True), abs=1e-9)
        assert row["ssim"] == pytest.approx(ssim(decoded, clean, 0, test_y_channel=True), abs=1e-9)
        if channels == 3:  # scored on the BT.601 Y channel, not on R, G, B
            assert row["psnr"] != pytest.approx(psnr(decoded, clean), abs=1e-3)


def test_camera_training_and_its_baselines(photos, tmp_path, capsys):
    task = TaskConfig(name="camera", noise_a=[0.002, 0.02], noise_b=[0.0, 0.001])
    run = train_tiny(tmp_path / "camera", photos, tiny_genotype(task), "--iters", "10")
    capsys.readouterr()
    assert main(["eval", "--model", str(run), "--data", str(photos), "--quiet"]) == 0
    assert "(evaluated at camera a=0.011 b=0.0005)" in capsys.readouterr().out
    scores = {}
    methods = ["noisy", "bm3d"] if METHODS.get("bm3d").available else ["noisy"]
    for method in methods:
        out = tmp_path / f"{method}.json"
        assert main(["eval", "--method", method, "--task", "camera", "--noise-a", "0.011",
                     "--noise-b", "0.0005", "--data", str(photos), "--json", str(out),
                     "--quiet"]) == 0
        result = json.loads(out.read_text())
        assert not result["convention"]["test_y_channel"]
        scores[method] = result["mean"]["psnr"]
    assert 20 < scores["noisy"] < 30
    if "bm3d" in scores:
        assert scores["bm3d"] > scores["noisy"] + 3


def test_generalized_anscombe_closed_form_inverse_is_about_unbiased():
    # the exact unbiased inverse maps E[f(z) | x] back to x; its closed form is within a few
    # thousandths of a count of it above a few counts (Mäkitalo & Foi 2013)
    a, b = 0.01, 0.0004
    rng = np.random.default_rng(0)
    for x in (0.05, 0.2, 0.5, 0.9):
        z = poisson_gaussian(np.full(400_000, x), a, b, rng)
        mean_transformed = generalized_anscombe(z, a, b).mean()
        assert inverse_generalized_anscombe(mean_transformed, a, b) == pytest.approx(x, abs=2e-3)
        assert generalized_anscombe(z, a, b).std() == pytest.approx(1.0, abs=0.05)
    assert inverse_generalized_anscombe(np.array([0.1, math.sqrt(1.5)]), a, b).max() == 0


@pytest.mark.parametrize("task, options", [
    ("jpeg", ["--quality", "0"]),
    ("jpeg", ["--quality", "101"]),
    ("jpeg", ["--quality", "10.5"]),
    ("jpeg", ["--quality", "high"]),
    ("jpeg", ["--quality", "40:10"]),
    ("jpeg", ["--quality", "1:2:3"]),
    ("camera", ["--noise-a", "-0.01"]),
    ("camera", ["--noise-b=-1e-4"]),
    ("camera", ["--noise-a", "0.02:0.001"]),
    ("camera", ["--noise-a", "lots"]),
])
def test_bad_levels_are_one_line_errors(photos, tmp_path, capsys, task, options):
    genotype = tmp_path / "g.json"
    tiny_genotype(TaskConfig(name=task)).save(genotype)
    commands = {
        "search": ["search", "--data", str(photos), "--preset", "tiny"],
        "train": ["train", "--genotype", str(genotype), "--data", str(photos), "--preset",
                  "tiny"],
    }
    for name, argv in commands.items():
        out = tmp_path / name
        assert main([*argv, "--task", task, *options, "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("hinas: error: ") and err.count("\n") == 1, err
        assert not out.exists()
    method = "jpeg" if task == "jpeg" else "noisy"
    levels = ["--quality", "20"] if task == "jpeg" else ["--noise-a", "0.01", "--noise-b", "0"]
    assert main(["eval", "--method", method, "--task", task, *levels, *options, "--data",
                 str(photos), "--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hinas: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("argv, message", [
    (["--method", "jpeg"], "give the JPEG quality to evaluate at: --quality Q"),
    (["--method", "noisy", "--task", "camera", "--noise-a", "0.01"], "give the camera noise"),
    (["--method", "jpeg", "--task", "denoise", "--sigma", "25"], "is for the 'jpeg' task"),
    (["--method", "bicubic", "--task", "camera", "--noise-a", "0.01", "--noise-b", "0"],
     "is for the 'sr' task"),
])
def test_eval_needs_the_level_of_a_new_task(photos, capsys, argv, message):
    assert main(["eval", "--data", str(photos), *argv]) == 2
    assert message in capsys.readouterr().err
