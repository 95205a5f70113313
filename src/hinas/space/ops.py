"""Candidate operations of the inner (cell) search space, in one registry (paper §3.1;
docs/decisions.md §1.1).

Every convolutional operation is LeakyReLU → conv → BatchNorm, stride 1, "same" padding. The
LeakyReLU is applied by the cell once per input state and shared by every operation that reads that
state (`OpSpec.preact`), so a mixed edge does not store five copies of the same activation; the
operation modules themselves hold conv → BN. `dil_conv_*` is a full k×k convolution with dilation
2, as the paper describes it; the separable dilated variant of DARTS (what genotype format 1 meant
by `dil_conv_*`) is registered as `dil_sep_conv_*` so old genotypes build what they always built.
`none` is registered so that genotypes and α have a column for it, but it is never instantiated: a
mixed edge skips it instead of multiplying by zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from hinas.errors import HinasError
from hinas.registry import Registry

LEAKY_SLOPE = 0.2


@dataclass(frozen=True)
class OpSpec:
    """A registered operation: its factory `build(channels, affine)`, what input it reads and
    what kind of operation it is.

    `preact` is True when the op consumes LeakyReLU(x) (all convolutional ops), False when it reads
    x itself (skip). `build` is None for `none`, which contributes nothing. `family` (`conv`,
    `separable`, `dilated`, `dilated separable`, `skip`, `none`) and `kernel` (k of k×k, 0 for
    none) say what it is, e.g. to the drawings (:mod:`hinas.runtime.viz`).
    """

    name: str
    build: Callable[[int, bool], nn.Module] | None
    preact: bool
    family: str = ""
    kernel: int = 0


OPS: Registry[OpSpec] = Registry("operation")


def register_op(name: str, preact: bool = True, family: str = "", kernel: int = 0):
    """Register `factory(channels, affine) -> nn.Module` as operation `name` of `family` with a
    `kernel`×`kernel` receptive field."""
    return OPS.register(name, lambda factory: OpSpec(name, factory, preact, family, kernel))


def check_space_ops(ops: list[str] | tuple[str, ...]) -> None:
    """Raise HinasError unless every name of a space's `ops` is a registered operation and at
    least one of them can be part of a network (is not `none`)."""
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        raise HinasError(f"space.ops: unknown operation(s) {unknown}; known: "
                         f"{', '.join(OPS.names())}")
    if not usable_columns(ops):
        raise HinasError("space.ops must hold at least one operation other than 'none'")


def leaky_relu() -> nn.Module:
    """The activation used throughout hinas (LeakyReLU, slope 0.2)."""
    return nn.LeakyReLU(LEAKY_SLOPE)


def conv_bn(c_in: int, c_out: int, kernel: int, affine: bool, dilation: int = 1,
            groups: int = 1) -> list[nn.Module]:
    """Conv (no bias, same padding) followed by BatchNorm, as a list of layers."""
    pad = dilation * (kernel - 1) // 2
    return [
        nn.Conv2d(c_in, c_out, kernel, padding=pad, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(c_out, affine=affine, track_running_stats=affine),
    ]


def _separable(channels: int, kernel: int, dilation: int, affine: bool) -> nn.Module:
    """Depthwise k×k (optionally dilated) then pointwise 1×1, then BN."""
    depthwise = nn.Conv2d(channels, channels, kernel, padding=dilation * (kernel - 1) // 2,
                          dilation=dilation, groups=channels, bias=False)
    return nn.Sequential(depthwise, *conv_bn(channels, channels, 1, affine))


OPS.add("none", OpSpec("none", None, preact=False, family="none"))


@register_op("skip_connect", preact=False, family="skip", kernel=1)
def _skip(channels: int, affine: bool) -> nn.Module:
    return nn.Identity()


@register_op("conv_3x3", family="conv", kernel=3)
def _conv3(channels: int, affine: bool) -> nn.Module:
    return nn.Sequential(*conv_bn(channels, channels, 3, affine))


@register_op("sep_conv_3x3", family="separable", kernel=3)
def _sep3(channels: int, affine: bool) -> nn.Module:
    return _separable(channels, 3, 1, affine)


@register_op("sep_conv_5x5", family="separable", kernel=5)
def _sep5(channels: int, affine: bool) -> nn.Module:
    return _separable(channels, 5, 1, affine)


@register_op("dil_conv_3x3", family="dilated", kernel=3)
def _dil3(channels: int, affine: bool) -> nn.Module:
    return nn.Sequential(*conv_bn(channels, channels, 3, affine, dilation=2))


@register_op("dil_conv_5x5", family="dilated", kernel=5)
def _dil5(channels: int, affine: bool) -> nn.Module:
    return nn.Sequential(*conv_bn(channels, channels, 5, affine, dilation=2))


@register_op("dil_sep_conv_3x3", family="dilated separable", kernel=3)
def _dil_sep3(channels: int, affine: bool) -> nn.Module:
    return _separable(channels, 3, 2, affine)


@register_op("dil_sep_conv_5x5", family="dilated separable", kernel=5)
def _dil_sep5(channels: int, affine: bool) -> nn.Module:
    return _separable(channels, 5, 2, affine)


def usable_columns(ops: list[str] | tuple[str, ...]) -> list[int]:
    """Indices in `ops` of the operations a network can contain (every one but `none`)."""
    return [c for c, op in enumerate(ops) if OPS.get(op).build is not None]


LEGACY_OPS: dict[str, str] = {"dil_conv_3x3": "dil_sep_conv_3x3",
                              "dil_conv_5x5": "dil_sep_conv_5x5"}
"""What `dil_conv_*` meant in genotype format 1 (a separable dilated conv), by today's names."""
