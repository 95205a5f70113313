"""Genotype files: JSON round trip, version and malformed-file errors; derived network."""

import json
import re

import pytest
import torch

from hinas.cli import main
from hinas.config import SpaceConfig, TaskConfig
from hinas.errors import HinasError
from hinas.measures.complexity import count_macs, count_params
from hinas.models.architectures import DerivedNet
from hinas.space.genotype import FORMAT_VERSION, Genotype

CELL = [[(0, "sep_conv_3x3"), (1, "skip_connect")], [(1, "conv_3x3"), (2, "dil_conv_5x5")],
        [(0, "dil_conv_3x3"), (3, "sep_conv_5x5")]]


def make(task=None, path=(0, 1, 1)) -> Genotype:
    return Genotype(task=task or TaskConfig(sigma=[30.0]),
                    space=SpaceConfig(nodes=3, layers=3, width=4), path=list(path),
                    cells=[CELL, CELL, CELL], meta={"strategy": "hinas"})


def test_round_trip(tmp_path):
    g = make()
    g.save(tmp_path / "g.json")
    back = Genotype.load(tmp_path / "g.json")
    assert back.to_dict() == g.to_dict()
    data = json.loads((tmp_path / "g.json").read_text())
    assert data["version"] == FORMAT_VERSION and data["path"] == [0, 1, 1]


def test_newer_version_is_refused(tmp_path):
    data = make().to_dict()
    data["version"] = FORMAT_VERSION + 1
    (tmp_path / "g.json").write_text(json.dumps(data))
    newer = FORMAT_VERSION + 1
    with pytest.raises(HinasError, match=rf"g\.json: genotype format version {newer} is newer"):
        Genotype.load(tmp_path / "g.json")


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("cells"), "lacks cells"),
    (lambda d: d.__setitem__("path", [0, 2, 1]), "cannot be at level 2"),
    (lambda d: d["cells"][0][0].__setitem__(0, [0, "conv_9x9"]), "unusable operation"),
    (lambda d: d["cells"][1][0].__setitem__(0, [4, "conv_3x3"]), "input 4 out of range"),
    (lambda d: d["cells"][2][0].__setitem__(0, [0, "none"]), "unusable operation 'none'"),
    (lambda d: d["space"].__setitem__("bogus", 1), "unknown config key"),
    (lambda d: d.__setitem__("format", "other"), "not a hinas genotype"),
    (lambda d: d.__setitem__("path", "10"), "malformed genotype: path must be a list, got '10'"),
    (lambda d: d.__setitem__("path", [1.5, 0, 1]), "path[0] must be an integer, got 1.5"),
    (lambda d: d.__setitem__("path", [0, "1", 1]), "path[1] must be an integer, got '1'"),
    (lambda d: d["cells"][1][0].__setitem__(0, [True, "conv_3x3"]),
     "cells[1][0][0] input must be an integer, got True"),
    (lambda d: d["cells"][0][2].__setitem__(1, [0]),
     "cells[0][2][1] must be an [input, operation] pair, got [0]"),
    (lambda d: d["cells"][2].__setitem__(0, 7), "cells[2][0] must be a list, got 7"),
    (lambda d: d["cells"][0][0].__setitem__(0, [0, 3]), "operation must be a name, got 3"),
    (lambda d: d.__setitem__("alpha", [[0.1, "x"]]), "alpha must hold numbers only, got 'x'"),
    (lambda d: d.__setitem__("version", True), "no integer 'version'"),
])
def test_malformed_files_get_clear_errors(tmp_path, mutate, message):
    data = make().to_dict()
    mutate(data)
    (tmp_path / "g.json").write_text(json.dumps(data))
    with pytest.raises(HinasError, match=re.escape(message)):
        Genotype.load(tmp_path / "g.json")


def test_broken_json(tmp_path):
    (tmp_path / "g.json").write_text("{not json")
    with pytest.raises(HinasError, match="not valid JSON"):
        Genotype.load(tmp_path / "g.json")


@pytest.mark.parametrize("task", [TaskConfig(channels=1), TaskConfig(channels=3),
                                  TaskConfig("sr", scale=3, channels=3)])
def test_derived_net_runs_on_any_size_and_counts_params(task):
    g = make(task)
    net = DerivedNet(g, width_multiplier=2.0).eval()
    x = torch.rand(1, task.channels, 41, 29)
    y = net(x)
    assert y.shape == (1, task.channels, 41 * task.out_scale, 29 * task.out_scale)
    buffers = {name for name, _ in net.named_buffers()}
    assert count_params(net) == sum(t.numel() for name, t in net.state_dict().items()
                                    if name not in buffers)
    assert count_macs(net, task.channels, 41, 29) > 0
    assert g.widths(2.0) == [8, 16, 16]


def test_derived_net_has_affine_bn():
    net = DerivedNet(make())
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(bn.affine and bn.track_running_stats for bn in bns)


def test_macs_scale_with_area():
    net = DerivedNet(make())
    assert count_macs(net, 1, 64, 64) * 4 == count_macs(net, 1, 128, 128)


def test_saved_files_get_normal_permissions(tmp_path):
    import os
    import stat

    make().save(tmp_path / "g.json")
    mode = stat.S_IMODE(os.stat(tmp_path / "g.json").st_mode)
    assert mode == 0o666 & ~_current_umask()


def _current_umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_format_1_genotype_builds_the_separable_dilated_convs_it_described(tmp_path, capsys):
    data = make().to_dict()
    data["version"] = 1
    (tmp_path / "old.json").write_text(json.dumps(data))
    old = Genotype.load(tmp_path / "old.json")
    assert "old.json: genotype format 1" in capsys.readouterr().err
    ops = [op for node in old.cells[0] for _, op in node]
    assert "dil_sep_conv_5x5" in ops and "dil_sep_conv_3x3" in ops and "dil_conv_5x5" not in ops
    assert "dil_sep_conv_3x3" in old.space.ops and old.meta["upgraded_from_version"] == 1
    new = make()
    assert count_params(DerivedNet(old)) < count_params(DerivedNet(new))  # separable is smaller
    old.save(tmp_path / "again.json")  # saved in the current format, still the same network
    again = Genotype.load(tmp_path / "again.json")
    assert again.cells == old.cells and capsys.readouterr().err == ""


@pytest.mark.parametrize("key, value, problem", [
    ("width", 10**9, "space.width must be in 1..2048"),
    ("width", -4, "space.width must be in 1..2048"),
    ("layers", 0, "space.layers must be in 1..64"),
    ("nodes", 10**6, "space.nodes must be in 1..16"),
    ("width_factors", [1, 2, 1e300], "space.width_factors must be 3 numbers"),
])
def test_loaded_space_values_are_capped(tmp_path, capsys, key, value, problem):
    from tiny_runs import tiny_genotype

    data = tiny_genotype(TaskConfig(sigma=[25.0])).to_dict()
    data["space"][key] = value
    path = tmp_path / "g.json"
    path.write_text(json.dumps(data))
    assert main(["arch", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: {problem}" in err


def test_deeply_nested_json_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "g.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["arch", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"hinas: error: {path}: not a genotype (JSON nested too deeply)\n"


@pytest.mark.parametrize("command", [["arch", "show"], ["train", "--data", ".", "--out", "r",
                                                        "--quiet", "--genotype"]])
def test_an_integer_of_5000_digits_is_a_one_line_error(tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    text = json.dumps(make().to_dict()).replace('"width": 4', '"width": ' + "9" * 5000)
    (tmp_path / "g.json").write_text(text)
    assert main([*command, "g.json"]) == 2
    err = capsys.readouterr().err
    assert err == "hinas: error: g.json: not a genotype (a number of more than 4300 digits)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json"]
