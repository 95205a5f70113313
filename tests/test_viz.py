"""Drawings: every registered operation has a style of its own, derived from the op registry,
and the architecture drawing labels every operation of its space."""

import pytest

from hinas.config import SpaceConfig, TaskConfig
from hinas.runtime.viz import op_legend, op_style, plot_genotype
from hinas.space.genotype import Genotype
from hinas.space.ops import OPS

DRAWN = [n for n in OPS.names() if OPS.get(n).build is not None]
"""Every operation a network can contain (all registered ones but `none`)."""


def test_every_operation_has_a_style_of_its_own():
    styles = {name: op_style(name) for name in DRAWN}
    assert len(set(styles.values())) == len(DRAWN)
    assert {c for c, _ in styles.values()}.isdisjoint({"black", "#000000"})
    assert styles["conv_3x3"] == ("#0072B2", "-") and styles["skip_connect"][1] == ":"


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_the_drawing_labels_every_operation_of_the_space(tmp_path, suffix):
    ops = OPS.names()  # all nine, the dilated separable ones included
    cell = [[(0, "dil_sep_conv_3x3"), (1, "dil_sep_conv_5x5")],
            [(0, "dil_conv_3x3"), (2, "sep_conv_5x5")]]
    genotype = Genotype(TaskConfig(), SpaceConfig(nodes=2, layers=2, width=4, ops=ops), [0, 1],
                        [cell, cell])
    assert [h.get_label() for h in op_legend(ops)] == [op for op in ops if op in DRAWN]
    plot_genotype(genotype, tmp_path / f"arch{suffix}")
    assert (tmp_path / f"arch{suffix}").stat().st_size > 1000
