"""Searching under a cost budget (`search.max_macs`, `search.max_latency`; docs/cost.md): the
budget's cost table, the A-step's penalty on the supernet's expected cost above the budget, and
the hard constraint at selection that makes the derived genotype fit.

The penalty steers α and β towards networks that fit (`search.cost_weight` × the relative excess of
the expected cost, :meth:`hinas.runtime.cost_table.CostTable.expected`); the constraint guarantees
it: a genotype over the budget takes the best-scoring width path on which it can fit, and on it its
kept operations are swapped, one at a time, for cheaper ones where that costs the least softmax(α)
weight per unit of cost saved, until it fits. A genotype below `search.budget_fill` of the budget
is filled the other way: operations swapped for costlier ones, the most α weight gained (least
lost) per unit of cost added first, while it still fits, until it reaches that share or no swap
fits. A budget is what the network may spend, and a search that leaves most of it unused, as one
whose α is still near uniform does with `skip_connect` edges, competes with networks of the same
cost at a smaller one (docs/cost.md). Its edges (which inputs each node takes) are kept. A
budget below the cheapest network of the space is refused before any work.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from hinas.config import Config
from hinas.errors import HinasError
from hinas.runtime.cost_table import CostTable, measure_genotype, measure_table, one_thread
from hinas.runtime.execution import machine_class
from hinas.space.cells import cell_edges
from hinas.space.derive import path_scores
from hinas.space.genotype import Genotype
from hinas.space.supernet import all_paths

KINDS = {"macs": "max_macs", "latency": "max_latency"}
"""Each kind of budget and its `search` key."""


def shipped_tables() -> list[Path]:
    """The cost tables shipped with hinas (latency tables of the machines they were measured
    on)."""
    folder = resources.files("hinas").joinpath("cost_tables")
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".json")) \
        if folder.is_dir() else []


def cost_table(cfg: Config, kind: str, quiet: bool = True) -> CostTable:
    """The `kind` cost table of `cfg`'s space and task at `train.width_multiplier` and the task's
    cost size: MACs counted now; latency from a shipped table of this space and machine class,
    else measured now on this machine, one thread (never one of another space or machine)."""
    size = tuple(cfg.task.cost_size)
    multiplier = cfg.train.width_multiplier
    if kind == "latency":
        with one_thread():
            machine = machine_class("cpu")
        for path in shipped_tables():
            table = CostTable.load(path)
            try:
                table.check(cfg.space, cfg.task, multiplier, machine, str(path))
            except HinasError:
                continue
            if table.kind == kind and list(table.size) == list(size):
                return table
        if not quiet:
            print(f"hinas: measuring a latency table of this space on {machine}",
                  file=sys.stderr, flush=True)
    return measure_table(cfg.space, cfg.task, multiplier, size, kind)


@dataclass
class Budget:
    """A cost budget of a search: its limit (in the unit of its table, whose kind it is)."""

    limit: float
    table: CostTable
    weight: float
    fill: float = 0.0

    def penalty(self, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """`weight` × the relative excess of the expected cost over the limit (0 below it)."""
        return self.weight * torch.relu(self.table.expected(alpha, beta) / self.limit - 1)

    def fits(self, genotype: Genotype) -> bool:
        """Whether `genotype`'s predicted cost is within the limit."""
        return self.table.predict(genotype) <= self.limit

    def settle(self, genotype: Genotype, prior: str, quiet: bool) -> Genotype:
        """`genotype` fitted to this budget (:meth:`fit`, said on stderr unless `quiet`), its
        predicted and measured cost recorded in its meta (`cost`)."""
        fitted = self.fit(genotype, prior)
        if (fitted.cells != genotype.cells or fitted.path != genotype.path) and not quiet:
            change = ("was over {}; fitted by its width path and cheaper operations"
                      if not self.fits(genotype) else
                      f"used under {self.fill:.0%} of {{}}; filled with costlier operations")
            print(f"hinas: the selected genotype {change.format(self.describe())}",
                  file=sys.stderr, flush=True)
        measured = measure_genotype(fitted, self.table.multiplier, self.table.size,
                                    self.table.kind)
        fitted.meta = {**fitted.meta, "cost": self.record(fitted, measured)}
        return fitted

    def fit(self, genotype: Genotype, prior: str) -> Genotype:
        """`genotype` made to fit and to use `fill` of the budget (see the module docstring);
        unchanged when it does both."""
        if self.fits(genotype):
            return self._swap(genotype, costlier=True)
        beta = np.array(genotype.beta) if genotype.beta else None
        paths = ([p for _, p in path_scores(beta, prior, best=len(all_paths(len(genotype.path))))]
                 if beta is not None else [genotype.path])
        paths += [p for p in all_paths(len(genotype.path)) if p not in paths]
        for path in paths:
            fitted = self._swap(dataclasses.replace(genotype, path=path), costlier=False)
            if self.fits(fitted):
                return fitted
        raise HinasError(f"no network of the space fits {self.describe()}")

    def _done(self, genotype: Genotype, costlier: bool) -> bool:
        """Whether swapping is over: filled to `fill` of the limit, or fitting it."""
        if costlier:
            return self.table.predict(genotype) >= self.fill * self.limit
        return self.fits(genotype)

    def _swap(self, genotype: Genotype, costlier: bool) -> Genotype:
        """Kept operations swapped one at a time, least α weight lost per unit of cost changed
        first: for cheaper ones until the genotype fits, or (`costlier`) for costlier ones
        that keep it within the limit until it uses `fill` of it; until done or no swap is
        left."""
        ops = self.table.ops
        rows = {edge: r for r, edge in enumerate(cell_edges(genotype.space.nodes))}
        alpha = np.array(genotype.alpha) if genotype.alpha else None
        cells = [[list(node) for node in cell] for cell in genotype.cells]
        current = dataclasses.replace(genotype, cells=cells)
        sign, overflows = (-1 if costlier else 1), set()
        while not self._done(current, costlier):
            best, spare = None, self.limit - self.table.predict(current)
            for layer, cell in enumerate(cells):
                level = current.path[layer]
                weights = None if alpha is None else alpha[layer if alpha.shape[0] > 1 else 0]
                for j, node in enumerate(cell):
                    for e, (inp, op) in enumerate(node):
                        for other in ops:
                            change = sign * (ops[op][level] - ops[other][level])
                            if other == "none" or change <= 0 or (costlier and change > spare) \
                                    or (layer, j, e, other) in overflows:
                                continue
                            lost = 0.0 if weights is None else float(
                                weights[rows[(j, inp)], genotype.space.ops.index(op)]
                                - weights[rows[(j, inp)], genotype.space.ops.index(other)])
                            ratio = lost / change
                            if best is None or ratio < best[0]:
                                best = (ratio, layer, j, e, inp, op, other)
            if best is None:
                break
            _, layer, j, e, inp, op, other = best
            cells[layer][j][e] = (inp, other)
            current = dataclasses.replace(genotype, cells=cells)
            if costlier and not self.fits(current):  # the padding scale made it overflow
                cells[layer][j][e] = (inp, op)
                overflows.add((layer, j, e, other))
                current = dataclasses.replace(genotype, cells=cells)
        return dataclasses.replace(current, cells=[[list(map(tuple, node)) for node in cell]
                                                   for cell in cells])

    def describe(self) -> str:
        """`a budget of 2.5 G MACs`."""
        return f"a budget of {self.limit:g} {self.table.unit}"

    def record(self, genotype: Genotype, measured: float) -> dict:
        """What a genotype's meta says of its cost."""
        return {"kind": self.table.kind, "unit": self.table.unit, "budget": self.limit,
                "predicted": round(self.table.predict(genotype), 4),
                "measured": round(measured, 4), "size": list(self.table.size),
                "width_multiplier": self.table.multiplier, "machine": self.table.machine}


def cost_text(cost: dict) -> str:
    """A genotype's recorded cost in words: `0.0639 G MACs predicted, 0.0639 measured, within
    a budget of 0.1 (width multiplier 1, 481x321 input)`."""
    return (f"{cost['predicted']:.4g} {cost['unit']} predicted, {cost['measured']:.4g} measured, "
            f"within a budget of {cost['budget']:g} (width multiplier "
            f"{cost['width_multiplier']:g}, {cost['size'][0]}x{cost['size'][1]} input)")


def search_budget(cfg: Config, quiet: bool = True) -> Budget | None:
    """The budget of a search config (None without one); HinasError when even the cheapest
    network of the space is over it."""
    s = cfg.search
    kind = next((k for k, key in KINDS.items() if getattr(s, key) > 0), None)
    if kind is None:
        return None
    budget = Budget(getattr(s, KINDS[kind]), cost_table(cfg, kind, quiet), s.cost_weight,
                    s.budget_fill)
    cheapest = budget.table.cheapest(cfg.space)
    if cheapest > budget.limit:
        option = "--max-macs" if kind == "macs" else "--max-latency"
        raise HinasError(f"{option} {budget.limit:g}: below the cheapest network of the space, "
                         f"{cheapest:.4g} {budget.table.unit} at width multiplier "
                         f"{budget.table.multiplier:g} on a {budget.table.size[0]}×"
                         f"{budget.table.size[1]} input")
    return budget
