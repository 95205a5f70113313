"""Configs: presets resolve per task, overrides are typed and validated, unknown keys rejected."""

import subprocess
import sys

import pytest

from hinas.config import PRESETS, from_dict, load_yaml, parse_override, resolve, save_config
from hinas.errors import HinasError


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("task", ["denoise", "sr"])
def test_every_preset_resolves(preset, task):
    cfg = resolve(task, preset)
    assert cfg.task.name == task and cfg.preset == preset


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
