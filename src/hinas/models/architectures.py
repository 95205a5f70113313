"""Every trainable restoration architecture, in one registry: `hinas train --arch NAME` trains
any of them the same way (same data, budget, optimiser, model folder; see
:mod:`hinas.models.folder`).

- `hinas`: the compact network a searched genotype describes (:class:`DerivedNet`): one cell per
  layer on the decoded width path, stem and tail from :mod:`hinas.space.blocks`. Layer `l`'s cell
  takes the kept cell of layer `l-1` (or `h_{-1}`) as `s1` and that of layer `l-2` (or the stem
  outputs) as `s0`, each through a 1×1 conv + BN to its node width.
- `dncnn` (denoising): DnCNN (Zhang et al. 2017) — `depth` 3×3 conv layers of `width` channels,
  Conv+ReLU, (depth−2) × Conv+BN+ReLU, Conv; it predicts the noise, output = input − noise.
- `fsrcnn` (super-resolution): FSRCNN (Dong et al. 2016) — 5×5 feature extraction (`d`), 1×1
  shrinking (`s`), `m` 3×3 mapping layers, 1×1 expanding, each followed by PReLU, then a 9×9
  transposed conv of stride ×scale that outputs exactly scale·H × scale·W. As in its paper the
  deconvolution trains at a tenth of the learning rate (10⁻⁴ against 10⁻³ there). `residual`
  adds the bicubic upsampling of the input, so the network learns only the detail bicubic
  misses: new trainings use it (the registered option), because without it FSRCNN ends below
  bicubic within a CPU budget (measured with benchmarks/recipes.py: 26.9 / 24.8 dB against
  bicubic's 28.4 / 26.0 on Set5 / Set14 ×4, and 29.7 / 26.9 with it, same 2.5 CPU-minutes);
  `--arch-option residual=false` trains the published network, and model folders written
  before the option existed load as published.
- `ffdnet` (the no-search control of docs/decisions.md §1.2b): FFDNet's shape (Zhang et al.
  2018) from hinas's own parts — the start part pixel-unshuffles by `start_scale` (2), `depth`
  3×3 convolutions of `width` channels run at that coarser grid (start part, `depth` − 4 conv_3x3
  ops each followed by LeakyReLU, end part), and the end part pixel-shuffles back to the residual.
- `hinas-w40` / `hinas-wm` (paper §4.2.2, Table 3): the cells of a searched genotype at manually
  set widths — every cell at node width `width` (40), or node width `base_width` (20) doubling
  layer by layer (20, 40, 80, …). Stem and tail are the genotype's, as in `hinas`.

Adding an architecture is one `@register_model` function.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hinas.config import MAX_FACTOR, MAX_WIDTH, Config, TaskConfig
from hinas.errors import HinasError
from hinas.registry import Registry
from hinas.space.blocks import FullResolution, Stem, Tail, padded_call, resample
from hinas.space.cells import derived_cell
from hinas.space.genotype import Genotype
from hinas.space.ops import OPS, leaky_relu


class DerivedNet(nn.Module):
    """The compact network a genotype describes: one cell per layer on the decoded width path.

    `widths` overrides the node width of each layer's cell (the fixed-width variants of paper
    Table 3); the stem and tail keep the genotype's level-0 width × `width_multiplier`, for the
    genotype's task or the given `task` (which may add a noise-level map input). With
    resolution levels each projection resamples between its source's level and the cell's, and
    the last cell returns to level 0 (plus the stem's skip) before the tail.
    """

    def __init__(self, genotype: Genotype, width_multiplier: float = 1.0,
                 widths: list[int] | None = None, task: TaskConfig | None = None):
        super().__init__()
        self.genotype, self.width_multiplier = genotype, width_multiplier
        task = genotype.task if task is None else task
        space, n = genotype.space, genotype.space.nodes
        if widths is None:
            widths = genotype.widths(width_multiplier)
        elif len(widths) != space.layers or min(widths) < 1:
            raise HinasError(f"widths {widths}: need {space.layers} positive node widths, one "
                             f"per layer")
        self.widths = list(widths)
        stem_width = n * space.level_width(0, width_multiplier)
        self.stem = Stem(task.input_channels, stem_width, space.start_scale)
        self.scale = task.out_scale
        self.size_multiple = space.size_multiple([0, *genotype.path])
        out_ch, levels = [stem_width, stem_width], [0, 0]
        self.cells, self.proj0, self.proj1 = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for layer, w in enumerate(self.widths):
            here = space.resolution(genotype.path[layer])
            self.proj0.append(resample(out_ch[-2], w, here - levels[-2], True))
            self.proj1.append(resample(out_ch[-1], w, here - levels[-1], True))
            cell = derived_cell(w, genotype.cells[layer])
            self.cells.append(cell)
            out_ch.append(cell.out_channels)
            levels.append(here)
        self.full = (FullResolution([(out_ch[-1], levels[-1])], stem_width, True)
                     if space.levels == "resolution" else None)
        tail_in = stem_width if self.full is not None else out_ch[-1]
        self.tail = Tail(tail_in, stem_width, task, space.residual, space.start_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Restored image from degraded input `x` (N, C, H, W) in [0, 1], any H × W."""
        return padded_call(self._restore, x, self.size_multiple, self.scale)

    def _restore(self, x: torch.Tensor) -> torch.Tensor:
        states = list(self.stem(x))
        for cell, p0, p1 in zip(self.cells, self.proj0, self.proj1, strict=True):
            states.append(cell(p0(states[-2]), p1(states[-1])))
        if self.full is not None:
            return self.tail(self.full(states[-1:], states[1]), x)
        return self.tail(states[-1], x)


@dataclass(frozen=True)
class ModelEntry:
    """A registered architecture: its builder, the config values it takes, whether it needs a
    genotype, the tasks it can restore (None: any), and its training defaults: `lr_multipliers`
    maps a parameter-name prefix (a submodule) to the factor of the learning rate it trains at."""

    name: str
    build: Callable[..., nn.Module]
    options: Callable[[Config], dict[str, Any]]
    needs_genotype: bool
    tasks: tuple[str, ...] | None = None
    lr_multipliers: dict[str, float] = field(default_factory=dict)

    def lr_multiplier(self, parameter: str) -> float:
        """The learning-rate factor of the parameter named `parameter` (1 unless a registered
        prefix matches it)."""
        for prefix, factor in self.lr_multipliers.items():
            if parameter == prefix or parameter.startswith(prefix + "."):
                return factor
        return 1.0

    def check_task(self, task: TaskConfig) -> None:
        """Raise HinasError unless this architecture restores `task`."""
        if self.tasks is not None and task.name not in self.tasks:
            raise HinasError(f"architecture {self.name!r} is for the {' / '.join(self.tasks)} "
                             f"task, not {task.name!r}")

    def check_options(self, options: Any) -> None:
        """Raise HinasError unless `options` maps options the builder takes to sane values:
        a switch true or false, an integer option (a count or a width) in 1..MAX_WIDTH, a real
        one (a factor) finite and in (0, MAX_FACTOR]."""
        if not isinstance(options, dict):
            raise HinasError(f"options must be a mapping, got {options!r}")
        kinds = {n: t for n, t in typing.get_type_hints(self.build).items()
                 if n not in ("task", "genotype", "return")}
        unknown = sorted(set(options) - set(kinds))
        if unknown:
            raise HinasError(f"architecture {self.name!r} has no option(s) {', '.join(unknown)}; "
                             f"known: {', '.join(kinds) or 'none'}")
        for name, value in options.items():
            if kinds[name] is bool:
                ok, limits = isinstance(value, bool), "true or false"
            elif kinds[name] is int:
                ok = isinstance(value, int) and not isinstance(value, bool) \
                    and 1 <= value <= MAX_WIDTH
                limits = f"an integer in 1..{MAX_WIDTH}"
            else:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value) and 0 < value <= MAX_FACTOR
                limits = f"a number in (0, {MAX_FACTOR:g}]"
            if not ok:
                raise HinasError(f"option {name} of {self.name!r} must be {limits}, got {value!r}")

    def build_options(self, cfg: Config, overrides: dict[str, Any] | None = None
                      ) -> dict[str, Any]:
        """The build options under `cfg`, updated with `overrides` (HinasError naming an option
        the builder does not take or a value out of range)."""
        options = {**self.options(cfg), **(overrides or {})}
        self.check_options(options)
        return options


MODELS: Registry[ModelEntry] = Registry("architecture")


def register_model(name: str, options: Callable[[Config], dict[str, Any]] = lambda cfg: {},
                   needs_genotype: bool = False, tasks: tuple[str, ...] | None = None,
                   lr_multipliers: dict[str, float] | None = None) -> Callable:
    """Decorator registering `build(task, genotype, **options) -> nn.Module` as architecture
    `name` for `tasks` (None: any); `options(cfg)` picks its build options from a resolved Config
    (saved in model.json); `lr_multipliers` scales the learning rate of named submodules."""
    return MODELS.register(name, lambda build: ModelEntry(
        name, build, options, needs_genotype, tasks, dict(lr_multipliers or {})))


def list_models() -> list[str]:
    """Names of the registered architectures, sorted."""
    return MODELS.names()


@register_model("hinas", options=lambda cfg: {"width_multiplier": cfg.train.width_multiplier},
                needs_genotype=True)
def hinas_net(task: TaskConfig, genotype: Genotype, width_multiplier: float = 1.0) -> nn.Module:
    """The compact network a HiNAS genotype describes, node widths × multiplier
    (docs/decisions.md §1.4)."""
    return DerivedNet(genotype, width_multiplier, task=task)


class DnCNN(nn.Module):
    """DnCNN: a plain conv/BN/ReLU stack that predicts the noise (residual learning)."""

    def __init__(self, channels: int, depth: int = 17, width: int = 64,
                 in_channels: int | None = None):
        super().__init__()
        if depth < 2 or width < 1:
            raise HinasError(f"dncnn needs depth ≥ 2 and width ≥ 1, got {depth} and {width}")
        self.channels, in_channels = channels, in_channels or channels
        self.mapped = in_channels != channels
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1),
                                   nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoised image: the input (its image channels, when a noise-level map follows
        them) minus the predicted noise."""
        return (x[:, :self.channels] if self.mapped else x) - self.body(x)


class FSRCNN(nn.Module):
    """FSRCNN(d, s, m): super-resolution by a transposed convolution at the end."""

    def __init__(self, channels: int, scale: int, d: int = 56, s: int = 12, m: int = 4,
                 residual: bool = False):
        super().__init__()
        self.scale, self.residual = scale, residual
        if min(d, s) < 1 or m < 0:
            raise HinasError(f"fsrcnn needs d, s ≥ 1 and m ≥ 0, got {d}, {s}, {m}")
        layers: list[nn.Module] = [nn.Conv2d(channels, d, 5, padding=2), nn.PReLU(d),
                                   nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        layers += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        # (H-1)·scale − 2·4 + 9 + (scale−1) = scale·H
        self.deconv = nn.ConvTranspose2d(d, channels, 9, stride=scale, padding=4,
                                         output_padding=scale - 1)
        nn.init.normal_(self.deconv.weight, std=0.001)  # as in the paper
        nn.init.zeros_(self.deconv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The scale·H × scale·W image from the low-resolution input."""
        y = self.deconv(self.body(x))
        if self.residual:
            y = y + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return y


class PlainNet(nn.Module):
    """A plain stack of conv_3x3 ops between hinas's start and end parts, at 1/`start_scale`
    resolution (the `ffdnet` control)."""

    def __init__(self, task: TaskConfig, depth: int, width: int, start_scale: int,
                 residual: bool = True):
        super().__init__()
        if depth < 4:
            raise HinasError(f"ffdnet needs depth ≥ 4 (start and end parts), got {depth}")
        self.scale, self.size_multiple = task.out_scale, start_scale
        self.stem = Stem(task.input_channels, width, start_scale)
        self.body = nn.Sequential(*(nn.Sequential(OPS.get("conv_3x3").build(width, True),
                                                  leaky_relu()) for _ in range(depth - 4)))
        self.tail = Tail(width, width, task, residual, start_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Restored image from degraded input `x` (N, C, H, W) in [0, 1], any H × W."""
        return padded_call(self._restore, x, self.size_multiple, self.scale)

    def _restore(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(self.stem(x)[1]), x)


def _multiplier(cfg) -> dict:
    return {"width_multiplier": cfg.train.width_multiplier}


@register_model("dncnn", options=lambda cfg: {"depth": 17, "width": 64}, tasks=("denoise",))
def dncnn(task: TaskConfig, genotype: None, depth: int = 17, width: int = 64) -> nn.Module:
    """DnCNN-S (17 layers, 64 channels by default) for `task.channels`-channel images."""
    return DnCNN(task.channels, depth, width, task.input_channels)


@register_model("fsrcnn", options=lambda cfg: {"d": 56, "s": 12, "m": 4, "residual": True},
                tasks=("sr",), lr_multipliers={"deconv": 0.1})
def fsrcnn(task: TaskConfig, genotype: None, d: int = 56, s: int = 12, m: int = 4,
           residual: bool = False) -> nn.Module:
    """FSRCNN(56, 12, 4) by default, at the task's scale (optionally on a bicubic residual)."""
    return FSRCNN(task.channels, task.scale, d, s, m, residual)


@register_model("ffdnet", options=lambda cfg: {"depth": 10, "width": 48, "start_scale": 2})
def ffdnet(task: TaskConfig, genotype: None, depth: int = 10, width: int = 48,
           start_scale: int = 2) -> nn.Module:
    """The FFDNet-like control: `depth` convolutions of `width` channels at 1/`start_scale`."""
    if start_scale not in (1, 2, 4):
        raise HinasError(f"ffdnet's start_scale must be 1, 2 or 4, got {start_scale}")
    return PlainNet(task, depth, width, start_scale)


@register_model("hinas-w40", options=lambda cfg: {"width": 40, **_multiplier(cfg)},
                needs_genotype=True)
def hinas_fixed_width(task: TaskConfig, genotype: Genotype, width: int = 40,
                      width_multiplier: float = 1.0) -> nn.Module:
    """The genotype's cells, every one at node width `width` (HiNAS-w40)."""
    return DerivedNet(genotype, width_multiplier, widths=[width] * genotype.space.layers,
                      task=task)


@register_model("hinas-wm", options=lambda cfg: {"base_width": 20, **_multiplier(cfg)},
                needs_genotype=True)
def hinas_doubling_width(task: TaskConfig, genotype: Genotype, base_width: int = 20,
                         width_multiplier: float = 1.0) -> nn.Module:
    """The genotype's cells at node width `base_width` doubling layer by layer (HiNAS-wm)."""
    return DerivedNet(genotype, width_multiplier,
                      widths=[base_width * 2 ** layer for layer in range(genotype.space.layers)],
                      task=task)
