"""Baseline architectures (DnCNN, FSRCNN, fixed-width HiNAS variants): registry sweep on odd sizes,
task checks, build options, and training / loading like the searched network."""

import json

import pytest
import torch

import hinas
from hinas.cli import main
from hinas.config import TaskConfig, resolve
from hinas.errors import HinasError
from hinas.jobs.train import build_optimizer, train
from hinas.models.architectures import FSRCNN, MODELS, DnCNN, list_models
from hinas.models.folder import ModelSpec
from tiny_runs import RGB_PHOTOS, tiny_genotype, write_photos

DENOISE = TaskConfig(name="denoise", sigma=[25.0], channels=1)
SR3 = TaskConfig(name="sr", scale=3, channels=3)
SMALL = {"dncnn": {"depth": 4, "width": 8}, "fsrcnn": {"d": 8, "s": 4, "m": 1},
         "hinas-w40": {"width": 4}, "hinas-wm": {"base_width": 2}}


def _spec(arch: str, task: TaskConfig, options: dict | None = None) -> ModelSpec:
    cfg = resolve(task.name, "tiny", task=task.defaults_for())
    genotype = tiny_genotype(task) if MODELS.get(arch).needs_genotype else None
    return ModelSpec.from_config(arch, cfg, genotype, options=options)


@pytest.mark.parametrize("task", [DENOISE, SR3], ids=["denoise", "sr-x3"])
@pytest.mark.parametrize("arch", MODELS.names())
def test_every_architecture_runs_on_odd_sizes_or_refuses_the_task(arch, task):
    tasks = MODELS.get(arch).tasks
    if tasks is not None and task.name not in tasks:
        with pytest.raises(HinasError, match=f"'{arch}' is for the .* task, not '{task.name}'"):
            _spec(arch, task)
        return
    net = _spec(arch, task, SMALL.get(arch)).build()
    x = torch.rand(2, task.channels, 37, 53)
    y = net(x)
    s = task.out_scale
    assert y.shape == (2, task.channels, 37 * s, 53 * s) and torch.isfinite(y).all()
    y.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_registry_holds_the_baselines():
    assert {"dncnn", "fsrcnn", "hinas-w40", "hinas-wm"} <= set(list_models())


def test_dncnn_defaults_are_the_paper_s_17_layers_of_64_channels():
    net = _spec("dncnn", DENOISE).build()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 17 and all(c.out_channels == 64 for c in convs[:-1])
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 15
    # residual: a net predicting zero noise returns its input
    zero = DnCNN(1, depth=3, width=4)
    torch.nn.init.zeros_(zero.body[-1].weight)
    torch.nn.init.zeros_(zero.body[-1].bias)
    x = torch.rand(1, 1, 9, 11)
    assert torch.equal(zero(x), x)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_fsrcnn_output_is_exactly_scale_times_the_input(scale):
    task = TaskConfig(name="sr", scale=scale, channels=1)
    net = _spec("fsrcnn", task).build()
    assert net(torch.rand(1, 1, 13, 7)).shape == (1, 1, 13 * scale, 7 * scale)
    assert _spec("fsrcnn", task).options == {"d": 56, "s": 12, "m": 4, "residual": True}


def test_fixed_width_variants_keep_the_cells_and_set_the_widths():
    searched = _spec("hinas", DENOISE).build()
    w40, wm = _spec("hinas-w40", DENOISE).build(), _spec("hinas-wm", DENOISE).build()
    assert searched.widths == tiny_genotype(DENOISE).widths() == [2, 4]
    assert w40.widths == [40, 40] and wm.widths == [20, 40]
    for net in (w40, wm):
        assert [c.terms for c in net.cells] == [c.terms for c in searched.cells]
        assert net.stem.conv0[0].out_channels == searched.stem.conv0[0].out_channels


def test_unknown_build_option_is_a_clear_error():
    with pytest.raises(HinasError, match="'dncnn' has no option.*layers; known: depth, width"):
        _spec("dncnn", DENOISE, {"layers": 3})
    with pytest.raises(HinasError, match="takes no genotype"):
        ModelSpec.from_config("dncnn", resolve("denoise", "tiny"), tiny_genotype(DENOISE))


def test_baselines_train_and_load_back(tmp_path):
    gray = write_photos(tmp_path / "gray", size=48)
    rgb = write_photos(tmp_path / "rgb", RGB_PHOTOS[:4], size=48)
    cfg = resolve("denoise", "tiny", task={"sigma": [25.0]}, train={"iters": 4, "val_every": 4})
    spec = train(cfg, gray, tmp_path / "dncnn", arch="dncnn", quiet=True, options=SMALL["dncnn"])
    assert spec.meta["iterations"] == 4
    model = hinas.load_model(tmp_path / "dncnn")
    assert isinstance(model, DnCNN) and len(model.body) == 3 * 2 + 2 + 1
    assert json.loads((tmp_path / "dncnn" / "model.json").read_text())["options"] == \
        SMALL["dncnn"]
    cfg = resolve("sr", "tiny", task={"scale": 2}, train={"iters": 4, "val_every": 4})
    train(cfg, rgb, tmp_path / "fsrcnn", arch="fsrcnn", quiet=True, options=SMALL["fsrcnn"])
    assert hinas.load_model(tmp_path / "fsrcnn")(torch.rand(1, 3, 5, 7)).shape == (1, 3, 10, 14)
    with pytest.raises(HinasError, match="'fsrcnn' is for the sr task"):
        train(resolve("denoise", "tiny"), gray, tmp_path / "bad", arch="fsrcnn", quiet=True)


def test_cli_trains_a_fixed_width_variant(tmp_path):
    photos = write_photos(tmp_path / "photos", size=48)
    tiny_genotype(DENOISE).save(tmp_path / "g.json")
    out = tmp_path / "w40"
    assert main(["train", "--arch", "hinas-w40", "--arch-option", "width=3", "--genotype",
                 str(tmp_path / "g.json"), "--data", str(photos), "--out", str(out),
                 "--preset", "tiny", "--iters", "2", "--set", "train.val_every=2",
                 "--quiet"]) == 0
    assert hinas.load_model(out).widths == [3, 3]
    assert main(["train", "--arch", "dncnn", "--data", str(photos), "--out",
                 str(tmp_path / "bad"), "--task", "sr", "--preset", "tiny"]) == 2


def test_fsrcnn_trains_its_deconvolution_at_a_tenth_of_the_rate():
    cfg = resolve("sr", "tiny", task={"scale": 4}, train={"lr": 0.05})
    net = ModelSpec.from_config("fsrcnn", cfg).build()
    groups = build_optimizer(net, cfg.train, "fsrcnn").param_groups
    deconv = {id(p) for p in net.deconv.parameters()}
    assert sorted(g["lr"] for g in groups) == pytest.approx([0.005, 0.05])
    for g in groups:
        assert all((id(p) in deconv) == (g["lr"] < 0.05) for p in g["params"])
    assert MODELS.get("dncnn").lr_multiplier("body.0.weight") == 1.0


def test_fsrcnn_bicubic_residual_option():
    x = torch.rand(1, 3, 6, 5)
    plain, residual = FSRCNN(3, 4), FSRCNN(3, 4, residual=True)
    residual.load_state_dict(plain.state_dict())
    bicubic = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic",
                                              align_corners=False)
    torch.testing.assert_close(residual(x) - plain(x), bicubic)
