"""CLI basics: --version, --help, `arch show` text and plot, one-line errors."""

import subprocess
import sys

import pytest
from PIL import Image

from hinas import __version__
from hinas.cli import main
from hinas.config import SpaceConfig, TaskConfig
from hinas.genotype import Genotype

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


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_arch_show_prints_and_draws(genotype_file, tmp_path, capsys, suffix):
    plot = tmp_path / f"arch{suffix}"
    assert main(["arch", "show", str(genotype_file), "--plot", str(plot)]) == 0
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
