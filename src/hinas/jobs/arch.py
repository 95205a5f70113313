"""Genotype tools behind `hinas arch`: a human-readable summary of a genotype (layers, levels,
widths, cell edges, parameters, MACs), and random genotypes of a given size (that of another
genotype's network, :func:`random_like`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hinas.config import DEFAULT_PRESET, SpaceConfig, TaskConfig, from_dict, load_yaml, resolve
from hinas.errors import HinasError
from hinas.measures.complexity import count_macs, count_params
from hinas.models.architectures import DerivedNet
from hinas.runtime.budget import cost_text
from hinas.runtime.cost_table import measure_genotype
from hinas.space.genotype import Genotype, input_name
from hinas.space.supernet import sample_arch

SUMMARY_SIZE = (321, 481)
"""(height, width) at which MACs are reported: a BSDS500 image."""


def genotype_to_show(target: str | Path, multiplier: float | None = None
                     ) -> tuple[Genotype, float, str]:
    """The genotype of `target` (a genotype.json, or a search or training run folder), the
    node-width multiplier its network is trained at, and where that multiplier comes from.

    The multiplier is `multiplier` when given; else the one the run folder records (model.json of
    a trained model, else the run's config.yaml); else the training multiplier of the default
    preset, which `hinas train` would use.
    """
    target = Path(target)
    folder = target if target.is_dir() else target.parent
    genotype = Genotype.load(folder / "genotype.json" if target.is_dir() else target)
    if multiplier is not None:
        return genotype, multiplier, "--width-multiplier"
    if (folder / "model.json").exists():
        from hinas.models.folder import ModelSpec
        options = ModelSpec.load(folder).options
        if "width_multiplier" in options:
            return genotype, options["width_multiplier"], str(folder / "model.json")
    if (folder / "config.yaml").exists():
        cfg = from_dict(load_yaml(folder / "config.yaml"))
        return genotype, cfg.train.width_multiplier, str(folder / "config.yaml")
    cfg = resolve(genotype.task.name, DEFAULT_PRESET)
    source = f"train.width_multiplier of the {DEFAULT_PRESET} preset"
    return genotype, cfg.train.width_multiplier, source


def describe_genotype(genotype: Genotype, width_multiplier: float = 1.0) -> str:
    """Multi-line text describing the genotype and the cost of the network it builds."""
    task, space = genotype.task, genotype.space
    net = DerivedNet(genotype, width_multiplier)
    h, w = SUMMARY_SIZE
    macs = count_macs(net, task.input_channels, h, w)
    lines = [
        f"task: {task.describe()}, {task.channels} channel(s), residual={space.residual}",
        f"space: L={space.layers} layers, N={space.nodes} nodes, W={space.width}, "
        f"width factors {space.width_factors}, width multiplier {width_multiplier:g}",
        f"levels: {space.levels}"
        + (f", start part downsampled ×{space.start_scale}" if space.start_scale > 1 else "")
        + (f"; inputs padded to a multiple of {net.size_multiple}"
           if net.size_multiple > 1 else ""),
        f"width path (levels): {genotype.path}",
    ]
    for layer, (level, width) in enumerate(zip(genotype.path, genotype.widths(width_multiplier),
                                               strict=True)):
        at = (f" at 1/{space.start_scale * 2 ** space.resolution(level)} resolution"
              if space.start_scale * 2 ** space.resolution(level) > 1 else "")
        lines.append(f"layer {layer}: level {level}{at}, node width {width}, "
                     f"cell output {space.nodes * width} channels")
        for j, node in enumerate(genotype.cells[layer]):
            terms = " + ".join(f"{op}({input_name(inp)})" for inp, op in node)
            lines.append(f"  node {j} = {terms}")
    lines.append(f"parameters: {count_params(net):,} ({count_params(net) / 1e6:.4f} M)")
    lines.append(f"MACs at {w}x{h} input: {macs / 1e9:.3f} G")
    cw, ch = task.cost_size
    latency = measure_genotype(genotype, width_multiplier, (cw, ch), "latency")
    lines.append(f"latency at {cw}x{ch} input, folded, one thread of this machine: "
                 f"{latency:.1f} ms")
    if "cost" in genotype.meta:
        lines.append(f"searched under a budget: {cost_text(genotype.meta['cost'])}")
    return "\n".join(lines)


def random_genotype(space: SpaceConfig, task: TaskConfig, rng: np.random.Generator,
                    target_params: int | None = None, tolerance: float = 0.15,
                    width_multiplier: float = 1.0, tries: int = 2000) -> Genotype:
    """A genotype drawn uniformly from the space (as `sample_arch`); with `target_params`, redrawn
    until the network it builds at `width_multiplier` has within ±`tolerance` of that many
    parameters (a clear error after `tries` draws)."""
    for attempt in range(1, tries + 1):
        genotype = sample_arch(space, task, rng).genotype
        params = count_params(DerivedNet(genotype, width_multiplier))
        if target_params is None or abs(params - target_params) <= tolerance * target_params:
            genotype.meta.update(params=params, draws=attempt)
            return genotype
    raise HinasError(f"no random genotype within ±{tolerance:.0%} of {target_params:,} "
                     f"parameters in {tries} draws; widen the tolerance")


def random_like(like: str | Path, seed: int = 0, tolerance: float = 0.15,
                multiplier: float | None = None, tries: int = 2000, any_size: bool = False
                ) -> tuple[Genotype, float, str]:
    """`hinas arch random`: a genotype drawn from the task and space of `like` (a genotype.json
    or run folder, :func:`genotype_to_show`) with the seed `seed`, by default within ±`tolerance`
    of the parameter count of `like`'s own network at its width multiplier (`any_size`: no
    window); its `meta` records the seed, `like` and the target. Returns the genotype, the width
    multiplier and where that multiplier comes from."""
    genotype, multiplier, source = genotype_to_show(like, multiplier)
    target = None if any_size else count_params(DerivedNet(genotype, multiplier))
    try:
        drawn = random_genotype(genotype.space, genotype.task, np.random.default_rng(seed),
                                target, tolerance, multiplier, tries)
    except HinasError as err:
        raise HinasError(f"{like}: {err}") from None
    drawn.meta.update(seed=seed, like=str(like), target_params=target)
    return drawn, multiplier, source
