"""Human-readable summary of a genotype: layers, levels, widths, cell edges, parameters, MACs."""

from __future__ import annotations

from hinas.complexity import count_macs, count_params
from hinas.genotype import Genotype, input_name
from hinas.network import DerivedNet

SUMMARY_SIZE = (321, 481)
"""(height, width) at which MACs are reported: a BSDS500 image."""


def describe_genotype(genotype: Genotype, width_multiplier: float = 1.0) -> str:
    """Multi-line text describing the genotype and the cost of the network it builds."""
    task, space = genotype.task, genotype.space
    net = DerivedNet(genotype, width_multiplier)
    h, w = SUMMARY_SIZE
    macs = count_macs(net, task.channels, h, w)
    lines = [
        f"task: {task.describe()}, {task.channels} channel(s), residual={space.residual}",
        f"space: L={space.layers} layers, N={space.nodes} nodes, W={space.width}, "
        f"width factors {space.width_factors}, width multiplier {width_multiplier:g}",
        f"width path (levels): {genotype.path}",
    ]
    for layer, (level, width) in enumerate(zip(genotype.path, genotype.widths(width_multiplier),
                                               strict=True)):
        lines.append(f"layer {layer}: level {level}, node width {width}, "
                     f"cell output {space.nodes * width} channels")
        for j, node in enumerate(genotype.cells[layer]):
            terms = " + ".join(f"{op}({input_name(inp)})" for inp, op in node)
            lines.append(f"  node {j} = {terms}")
    lines.append(f"parameters: {count_params(net):,} ({count_params(net) / 1e6:.4f} M)")
    lines.append(f"MACs at {w}x{h} input: {macs / 1e9:.3f} G")
    return "\n".join(lines)
