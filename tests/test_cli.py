"""CLI basics: --version, --help, `arch show` text and plot, one-line errors."""

import subprocess
import sys

import pytest
from PIL import Image

from hinas import __version__
from hinas.cli import main
from hinas.config import SpaceConfig, TaskConfig, resolve, save_config
from hinas.space.genotype import Genotype

CELL = [[(0, "sep_conv_3x3"), (1, "skip_connect")], [(0, "conv_3x3"), (2, "dil_conv_5x5")]]


@pytest.fixture
def genotype_file(tmp_path):
    g = Genotype(TaskConfig(), SpaceConfig(nodes=2, layers=2, width=4), [1, 2], [CELL, CELL])
    g.save(tmp_path / "genotype.json")
    return tmp_path / "genotype.json"


def test_version_and_help():
    out = subprocess.run([sys.executable, "-m", "hinas.cli", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == f"hinas {__version__}"
    out = subprocess.run([sys.executable, "-m", "hinas.cli", "--help"], capture_output=True,
                         text=True, check=True)
    assert "search" in out.stdout and "arch" in out.stdout


@pytest.mark.parametrize("command", ["arch show", "search", "train", "eval", "restore", "demo"])
def test_help_shows_defaults_and_an_example(command, capsys):
    with pytest.raises(SystemExit):
        main([*command.split(), "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "example: hinas " + command in text
    if command in ("search", "train"):
        assert "one of tiny, cpu, paper (default: cpu)" in text
    if command in ("eval", "restore"):
        assert "tile overlap in pixels (default: 32)" in text


def test_arch_show_uses_the_train_width_multiplier(genotype_file, tmp_path, capsys):
    assert main(["arch", "show", str(genotype_file)]) == 0  # no run folder: the default preset
    text = capsys.readouterr().out
    assert "layer 1: level 2, node width 32" in text
    assert "width multiplier 2 from train.width_multiplier of the cpu preset" in text
    assert f"next: hinas train --genotype {genotype_file} --data DIR --out RUNDIR" in text
    save_config(resolve("denoise", "tiny"), tmp_path / "config.yaml")  # a search run folder
    assert main(["arch", "show", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "layer 1: level 2, node width 16" in text
    assert f"width multiplier 1 from {tmp_path / 'config.yaml'}" in text


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_arch_show_prints_and_draws(genotype_file, tmp_path, capsys, suffix):
    plot = tmp_path / f"arch{suffix}"
    assert main(["arch", "show", str(genotype_file), "--plot", str(plot),
                 "--width-multiplier", "1"]) == 0
    text = capsys.readouterr().out
    assert "width path (levels): [1, 2]" in text
    assert "node 1 = conv_3x3(c_{k-2}) + dil_conv_5x5(node 0)" in text
    assert "layer 1: level 2, node width 16" in text
    assert "parameters:" in text and "MACs at 481x321" in text
    if suffix == ".png":
        assert Image.open(plot).size[0] > 400
    else:
        assert plot.read_text().lstrip().startswith("<?xml")


def test_arch_show_missing_file(tmp_path, capsys):
    assert main(["arch", "show", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hinas: error: ") and "none.json: cannot read genotype" in err
    assert len(err.strip().splitlines()) == 1
