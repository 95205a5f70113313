"""Configs: presets resolve per task, overrides are typed and validated, unknown keys rejected."""

import re
import subprocess
import sys

import pytest

from hinas.config import (
    LOSSES,
    PRESETS,
    TASKS,
    TaskConfig,
    from_dict,
    load_yaml,
    parse_override,
    resolve,
    save_config,
)
from hinas.errors import HinasError


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("task", TASKS)
def test_every_preset_resolves(preset, task):
    cfg = resolve(task, preset)
    assert cfg.task.name == task and cfg.preset == preset


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("task", [t for t in TASKS if TaskConfig(name=t).out_scale == 1])
def test_same_size_tasks_take_the_denoising_settings(preset, task):
    cfg, denoise = resolve(task, preset), resolve("denoise", preset)
    assert (cfg.space, cfg.search, cfg.train) == (denoise.space, denoise.search, denoise.train)
    assert cfg.task.channels == 1 and cfg.task.out_scale == 1


def test_jpeg_and_camera_levels():
    jpeg = resolve("jpeg", "tiny", task={"quality": [10, 40]}).task
    assert jpeg.describe() == "jpeg q=10:40" and jpeg.eval_quality == 25
    assert jpeg.at_evaluation().describe() == "jpeg q=25"
    assert resolve("jpeg", "tiny", task={"quality": 10}).task.describe() == "jpeg q=10"
    camera = resolve("camera", "tiny", task={"noise_a": [0.001, 0.02], "noise_b": 0}).task
    assert camera.describe() == "camera a=0.001:0.02 b=0" and camera.eval_noise == (0.0105, 0.0)
    assert TaskConfig(name="camera").describe() == "camera a=0.01 b=0.0004"


@pytest.mark.parametrize("task, override, message", [
    ("jpeg", "task.quality=0", "task.quality must be an integer from 1 to 100"),
    ("jpeg", "task.quality=101", "task.quality must be an integer from 1 to 100"),
    ("jpeg", "task.quality=[40, 10]", "with low < high, got [40, 10]"),
    ("jpeg", "task.quality=[]", "task.quality must be"),
    ("jpeg", "task.quality=10.5", "task.quality must be an integer, got 10.5"),
    ("camera", "task.noise_a=-0.01", "task.noise_a must be a number ≥ 0"),
    ("camera", "task.noise_b=[0.002, 0.001]", "task.noise_b must be"),
    ("camera", "task.noise_a=0", "both 0"),
])
def test_bad_task_levels(task, override, message):
    overrides = [override, "task.noise_b=0"] if override == "task.noise_a=0" else [override]
    with pytest.raises(HinasError, match=re.escape(message)):
        resolve(task, "tiny", overrides=overrides)


def test_paper_preset_is_the_paper():
    d, s = resolve("denoise", "paper"), resolve("sr", "paper")
    assert (d.space.layers, d.space.nodes, d.search.batch_size) == (3, 4, 8)
    assert (s.space.layers, s.space.nodes, s.search.batch_size) == (2, 3, 24)
    assert (d.search.epochs, d.search.warmup_epochs, d.search.eval_from_epoch) == (100, 20, 61)
    assert (d.search.w_lr, d.search.w_lr_min, d.search.w_weight_decay) == (0.025, 0.001, 3e-4)
    assert (d.search.a_lr, d.search.a_weight_decay) == (1e-3, 0.0)
    assert d.search.loss == "mse+ssim" and d.search.ssim_weight == 0.6
    assert (d.train.iters, s.train.iters, d.train.batch_size, d.train.lr) == (
        400_000, 600_000, 24, 0.05)
    for t in (d.train, s.train):  # the paper's training recipe, whatever the cpu preset does
        assert (t.optimizer, t.lr, t.momentum, t.batch_size, t.crop, t.warmup_iters) == (
            "sgd", 0.05, 0.9, 24, 64, 0)


def test_cpu_preset_trains_with_the_measured_recipe():
    for task in ("denoise", "sr"):
        t = resolve(task, "cpu").train
        assert (t.optimizer, t.lr, t.warmup_iters, t.grad_clip) == ("adamw", 1e-3, 50, 0.0)


def test_overrides_are_typed():
    cfg = resolve("denoise", "tiny", overrides=["search.epochs=7", "search.w_lr=1e-2",
                                                "space.cell_sharing=false",
                                                "task.sigma=[15, 25]"])
    assert cfg.search.epochs == 7 and cfg.search.w_lr == 0.01
    assert cfg.space.cell_sharing is False and cfg.task.sigma == [15.0, 25.0]
    assert parse_override("a.b.c=3") == {"a": {"b": {"c": 3}}}


@pytest.mark.parametrize("override, message", [
    ("search.epochs=many", "search.epochs must be an integer"),
    ("search.bogus=1", "unknown config key"),
    ("space.ops=[]", "space.ops must be a non-empty list of operation names"),
    ("task.scale=5", "task.scale must be 2, 3 or 4"),
    ("space.cell_sharing=maybe", "must be true or false"),
    ("noequals", "must look like key.sub=value"),
])
def test_bad_overrides(override, message):
    task = "sr" if "scale" in override else "denoise"
    with pytest.raises(HinasError, match=message):
        resolve(task, "tiny", overrides=[override])


@pytest.mark.parametrize("override, message", [
    *((f"{key}={value}", f"{key} must be a finite learning rate > 0, got {shown}")
      for key in ("search.w_lr", "search.a_lr", "train.lr")
      for value, shown in ((".nan", "nan"), (".inf", "inf"), ("0", "0.0"), ("-0.1", "-0.1"))),
    *((f"{key}={value}", f"{key} must be a finite learning rate in [0, {rate}], got {shown}")
      for key, rate in (("search.w_lr_min", "search.w_lr"), ("train.lr_min", "train.lr"))
      for value, shown in ((".nan", "nan"), ("-1e-5", "-1e-05"), ("5", "5.0"))),
    *((f"{job}.grad_clip={value}", f"{job}.grad_clip must be a finite number ≥ 0")
      for job in ("search", "train") for value in ("-1", ".nan", ".inf")),
    *((f"{job}.loss=ssim", f"{job}.loss must be one of mse, mse+ssim, l1, l1+ssim, got 'ssim'")
      for job in ("search", "train")),
    ("search.ssim_weight=.nan", "search.ssim_weight must be a finite number ≥ 0"),
    ("search.w_momentum=1", "search.w_momentum must be in [0, 1)"),
    ("train.weight_decay=-1", "train.weight_decay must be a finite number ≥ 0"),
    ("train.width_multiplier=.inf", "train.width_multiplier must be a finite number > 0"),
    *((f"train.ema={value}", "train.ema must be in [0, 1) (0: off)")
      for value in ("1", "-0.1", ".nan")),
])
def test_every_optimisation_setting_is_validated(override, message):
    with pytest.raises(HinasError) as err:
        resolve("denoise", "tiny", overrides=[override])
    assert message in str(err.value)


def test_the_loss_names_are_those_the_losses_module_builds():
    from hinas.measures.losses import list_losses

    assert sorted(LOSSES) == list_losses()


def test_resolved_config_round_trips(tmp_path):
    cfg = resolve("sr", "cpu", overrides=["task.scale=2"], seed=5)
    save_config(cfg, tmp_path / "config.yaml")
    assert from_dict(load_yaml(tmp_path / "config.yaml")) == cfg


def test_broken_yaml(tmp_path):
    (tmp_path / "c.yaml").write_text("search: [unclosed")
    with pytest.raises(HinasError, match="c.yaml: not valid YAML"):
        resolve("denoise", "tiny", tmp_path / "c.yaml")


def test_config_imports_without_torch():
    code = "import sys, hinas.config; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize("fields,levels", [
    ({"name": "denoise", "sigma": [0.0, 55.0], "sigma_sampling": "uniform"},
     ["denoise sigma=15", "denoise sigma=25", "denoise sigma=50"]),
    ({"name": "denoise", "sigma": [20.0, 30.0], "sigma_sampling": "uniform"},
     ["denoise sigma=25"]),
    ({"name": "denoise", "sigma": [30.0, 45.0], "sigma_sampling": "uniform"},
     ["denoise sigma=37.5"]),  # no standard level in range: the middle
    ({"name": "denoise", "sigma": [15.0, 50.0]}, ["denoise sigma=15", "denoise sigma=50"]),
    ({"name": "jpeg", "quality": [10, 40]}, [f"jpeg q={q}" for q in (10, 20, 30, 40)]),
    ({"name": "jpeg", "quality": [20]}, ["jpeg q=20"]),
    ({"name": "sr", "scale": 2}, ["sr x2"]),
])
def test_held_back_levels_of_a_campaign(fields, levels):
    task = TaskConfig(**fields)
    assert [level.describe() for level in task.held_back_levels()] == levels
