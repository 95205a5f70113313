"""Resolution levels and start-part downsampling: every level mode builds (supernet and derived
network, both merge forms) for every task shape and any input size; a derived network folds,
tiles and exports like a width-level one; older genotypes build what they always built."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from hinas.cli import main
from hinas.config import LEVEL_MODES, START_SCALES, SpaceConfig, TaskConfig
from hinas.data.images import save_image
from hinas.errors import HinasError
from hinas.models.architectures import DerivedNet
from hinas.models.fold import fold_batchnorm
from hinas.runtime.inference import restore_array, tile_starts
from hinas.space.derive import derive_genotype
from hinas.space.genotype import Genotype
from hinas.space.supernet import Supernet, all_paths, sample_arch
from tiny_runs import write_photos

ROOT = Path(__file__).resolve().parents[1]
TASKS = [TaskConfig(), TaskConfig(name="sr", scale=3, channels=3)]
SIZES = [(3, 5), (17, 30), (32, 32)]


def space(levels: str, start_scale: int, **kw) -> SpaceConfig:
    return SpaceConfig(nodes=2, layers=3, width=2, levels=levels, start_scale=start_scale, **kw)


def genotype(levels: str, start_scale: int, task: TaskConfig, path: list[int],
             seed: int = 0) -> Genotype:
    drawn = sample_arch(space(levels, start_scale), task, np.random.default_rng(seed)).genotype
    return dataclasses.replace(drawn, path=path)


@pytest.mark.parametrize("levels", LEVEL_MODES)
@pytest.mark.parametrize("start_scale", START_SCALES)
@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_every_mode_restores_any_size(levels, start_scale, task):
    for sharing in (True, False):
        net = Supernet(space(levels, start_scale, cell_sharing=sharing), task).eval()
        for h, w in SIZES:
            y = net(torch.rand(2, task.channels, h, w))
            assert y.shape == (2, task.channels, h * task.out_scale, w * task.out_scale)
    for path in all_paths(3):
        derived = DerivedNet(genotype(levels, start_scale, task, path), 1.5).eval()
        for h, w in SIZES:
            y = derived(torch.rand(1, task.channels, h, w))
            assert y.shape == (1, task.channels, h * task.out_scale, w * task.out_scale)
            assert torch.isfinite(y).all()


def test_resolution_levels_run_coarser_and_cost_less():
    task = TaskConfig()
    calls = {}

    def shape_of(name):
        def hook(_module, _inputs, out):
            calls[name] = tuple(out.shape[-2:])
        return hook

    net = DerivedNet(genotype("resolution", 2, task, [1, 2, 1]), 1.0).eval()
    assert net.size_multiple == 8
    for k, cell in enumerate(net.cells):
        cell.register_forward_hook(shape_of(k))
    net(torch.rand(1, 1, 64, 48))
    # start part at 1/2, then levels 1, 2, 1 at 1/4, 1/8, 1/4 of the input
    assert calls == {0: (16, 12), 1: (8, 6), 2: (16, 12)}
    width = DerivedNet(genotype("width", 1, task, [1, 2, 1]), 1.0)
    assert width.size_multiple == 1
    macs = [_macs(m) for m in (net, width)]
    assert macs[0] < macs[1] / 4


def _macs(net):
    from hinas.measures.complexity import count_macs
    return count_macs(net, 1, 64, 64)


@pytest.mark.parametrize("levels,start_scale", [("resolution", 1), ("width", 2),
                                                ("resolution", 2)])
def test_folding_and_tiling_match_the_network(levels, start_scale):
    torch.manual_seed(0)
    net = DerivedNet(genotype(levels, start_scale, TaskConfig(), [0, 1, 2]), 2.0)
    net.train()
    for _ in range(3):  # BatchNorm statistics away from their initial values
        net(torch.rand(4, 1, 32, 32))
    net.eval()
    x = torch.rand(1, 1, 45, 70)
    with torch.no_grad():
        assert torch.allclose(fold_batchnorm(net)(x), net(x), atol=1e-5)
    image = data.camera()[100:190, 200:333, None].astype(np.float64)
    folded = fold_batchnorm(net)
    whole = restore_array(folded, image, 1, "cpu")
    # one tile (its size rounded up to the grid covers the image): the untiled output
    one = restore_array(folded, image, 1, "cpu", tile=131, overlap=8)
    assert np.abs(one - whole).max() < 1e-5 * 255
    # tiles on the network's grid blend without visible seams (0-255 scale); the same tiles
    # placed off the grid (a wrapper hiding the network's size_multiple) do not
    tiled = restore_array(folded, image, 1, "cpu", tile=96, overlap=48)
    off_grid = restore_array(_OffGrid(folded), image, 1, "cpu", tile=96, overlap=48)
    assert np.abs(tiled - whole).max() < 1.0
    assert np.abs(off_grid - whole).max() > 5 * np.abs(tiled - whole).max()


class _OffGrid(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def test_tile_starts_follow_the_grid():
    assert tile_starts(70, 24, 8, 8) == [0, 16, 32, 40]  # the last tile: 40..70
    assert all(s % 8 == 0 for s in tile_starts(1001, 64, 16, 8))
    assert tile_starts(70, 24, 6) == [0, 18, 36, 46]  # unchanged for a full-resolution net


def test_derived_genotype_of_a_resolution_supernet_round_trips(tmp_path):
    task = TaskConfig()
    net = Supernet(space("resolution", 2), task)
    with torch.no_grad():
        net.beta[1, 0, 2] = 3.0  # layer 1: from level 0, move up to level 1
    found = derive_genotype(net)
    assert found.space.levels == "resolution" and found.space.start_scale == 2
    found.save(tmp_path / "g.json")
    again = Genotype.load(tmp_path / "g.json")
    assert again.space == found.space and again.path == found.path
    a, b = DerivedNet(found, 2.0), DerivedNet(again, 2.0)
    assert a.state_dict().keys() == b.state_dict().keys()


def test_genotypes_older_than_levels_build_width_networks():
    files = sorted((ROOT / "benchmarks" / "results" / "genotypes").glob("*.json"))
    files = [f for f in files if json.loads(f.read_text()).get("format") == "hinas-genotype"
             and "levels" not in json.loads(f.read_text())["space"]]  # written before levels
    assert len(files) >= 8
    for f in files:
        g = Genotype.load(f)
        assert g.space.levels == "width" and g.space.start_scale == 1
        assert DerivedNet(g, 1.0).size_multiple == 1


def test_bad_level_settings_are_refused():
    with pytest.raises(HinasError, match="space.levels must be one of"):
        SpaceConfig(levels="depth").validate()
    with pytest.raises(HinasError, match="space.start_scale must be one of"):
        SpaceConfig(start_scale=3).validate()


def test_onnx_export_of_a_resolution_network(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from hinas.models.export import OnnxModel, export_onnx

    net = DerivedNet(genotype("resolution", 2, TaskConfig(), [1, 2, 2]), 1.0).eval()
    path = export_onnx(net, tmp_path / "m.onnx", 1)
    runtime = OnnxModel(path)
    assert runtime.size_multiple == 8
    x = torch.rand(1, 1, 37, 51)
    with torch.no_grad():
        assert torch.allclose(runtime(x), fold_batchnorm(net)(x), atol=1e-4)


def test_a_genotype_of_the_other_level_mode_is_refused():
    g = genotype("width", 1, TaskConfig(), [0, 1, 2])
    with pytest.raises(HinasError, match=r"^g\.json: genotype of a space with width levels"):
        g.check_space(space("resolution", 1), "g.json")
    g.check_space(space("width", 1), "g.json")


@pytest.mark.parametrize("task_args,ext", [(["--task", "denoise", "--sigma", "25"], "den"),
                                           (["--task", "sr", "--scale", "2"], "sr2"),
                                           (["--task", "jpeg", "--quality", "20"], "jpeg")])
def test_resolution_levels_end_to_end(tmp_path, task_args, ext):
    """Search (Viterbi width path, then the width one-shot scoring), train, evaluate and restore
    in the resolution-level space with start-part downsampling, from the command line."""
    channels = ["--channels", "1"]
    photos = write_photos(tmp_path / "photos", size=64)
    search, trained = tmp_path / "search", tmp_path / "train"
    sets = ["--set", "space.levels=resolution", "--set", "space.start_scale=2",
            "--set", "search.width=oneshot"]
    assert main(["search", *task_args, *channels, "--data", str(photos), "--out", str(search),
                 "--preset", "tiny", "--quiet", *sets]) == 0
    g = Genotype.load(search / "genotype.json")
    assert (g.space.levels, g.space.start_scale) == ("resolution", 2)
    assert main(["train", *task_args, *channels, "--genotype", str(search / "genotype.json"),
                 "--data", str(photos), "--out", str(trained), "--preset", "tiny",
                 "--quiet"]) == 0
    assert main(["eval", "--model", str(trained), "--data", str(photos), "--quiet",
                 "--json", str(tmp_path / "eval.json")]) == 0
    assert json.loads((tmp_path / "eval.json").read_text())["mean"]["psnr"] > 10
    odd = tmp_path / "odd"
    odd.mkdir()
    save_image(odd / "odd.png", np.random.default_rng(0).integers(0, 255, (37, 23, 1),
                                                                   dtype=np.uint8))
    assert main(["restore", "--model", str(trained), str(odd / "odd.png"), "-o",
                 str(tmp_path / "out"), "--quiet"]) == 0
    scale = 2 if ext == "sr2" else 1
    with Image.open(tmp_path / "out" / "odd.png") as im:
        assert im.size == (23 * scale, 37 * scale)
