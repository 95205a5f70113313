"""Operation registry: every op keeps the shape, is LeakyReLU → conv → BN, and errors are clear."""

import pytest
import torch
from torch import nn

from hinas.config import PRIMITIVES
from hinas.errors import HinasError
from hinas.space.ops import OPS, register_op


@pytest.mark.parametrize("name", OPS.names())
@pytest.mark.parametrize("channels", [1, 6])
def test_every_op_preserves_shape(name, channels):
    if OPS.get(name).build is None:  # `none`: a column of α, never built (skipped in the sum)
        assert (name, OPS.get(name).family) == ("none", "none")
        return
    op = OPS.get(name).build(channels, True)
    x = torch.randn(2, channels, 13, 17, requires_grad=True)
    y = op(x)
    assert y.shape == x.shape
    y.sum().backward()  # differentiable end to end


def test_paper_candidates_registered():
    assert set(PRIMITIVES) <= set(OPS.names())
    assert len(PRIMITIVES) == 7
    assert OPS.get("none").build is None  # never instantiated: skipped in the mixed sum


@pytest.mark.parametrize("name", [n for n in OPS.names() if OPS.get(n).preact])
def test_conv_ops_read_activated_input_and_end_in_bn(name):
    spec = OPS.get(name)
    layers = list(spec.build(4, True).modules())
    assert isinstance(layers[-1], nn.BatchNorm2d)
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    assert all(c.stride == (1, 1) for c in convs)
    assert convs[0].kernel_size == (spec.kernel, spec.kernel)  # what the op says it is
    assert convs[0].dilation == ((2, 2) if spec.family.startswith("dilated") else (1, 1))
    assert (convs[0].groups > 1) == ("separable" in spec.family)


def test_skip_reads_raw_input():
    assert not OPS.get("skip_connect").preact
    x = torch.randn(1, 3, 5, 5)
    assert torch.equal(OPS.get("skip_connect").build(3, True)(x), x)


def test_unknown_op_is_a_clear_error():
    with pytest.raises(HinasError, match="unknown operation 'conv_7x7'.*conv_3x3"):
        OPS.get("conv_7x7")


def test_registry_is_open_to_new_ops():
    name = "test_avg_pool_3x3"
    register_op(name, preact=False)(lambda c, affine: nn.AvgPool2d(3, 1, 1))
    try:
        from hinas.space.cells import supercell

        cell = supercell(2, 4, ("none", "skip_connect", name))
        out = cell(torch.randn(1, 4, 9, 9), torch.randn(1, 4, 9, 9), torch.rand(5, 3))
        assert out.shape == (1, 8, 9, 9)
        with pytest.raises(ValueError, match="already registered"):
            register_op(name)(lambda c, a: nn.Identity())
    finally:
        OPS.remove(name)


@pytest.mark.parametrize("name,kernel", [("dil_conv_3x3", 3), ("dil_conv_5x5", 5)])
def test_dilated_convs_are_full_convolutions_with_dilation_2(name, kernel):
    convs = [m for m in OPS.get(name).build(4, True).modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1
    assert convs[0].groups == 1 and convs[0].dilation == (2, 2)
    assert convs[0].weight.shape == (4, 4, kernel, kernel)
    legacy = [m for m in OPS.get(name.replace("dil_", "dil_sep_")).build(4, True).modules()
              if isinstance(m, nn.Conv2d)]
    assert [c.groups for c in legacy] == [4, 1]  # depthwise (dilated) then pointwise
