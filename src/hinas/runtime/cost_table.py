"""The cost model of a search space: what every part of a derived network costs, in one table,
so that a genotype's cost is predicted without building it and the supernet's expected cost under
softmax(α) and softmax(β) is differentiable (docs/cost.md).

A derived network is a sum of parts: the start part, on every layer the two projections into its
cell (from the levels of the two states before it) and the cell's kept operations at the cell's
level, and the end part (by the level of the last layer). A :class:`CostTable` holds the cost of
each part at one input size and width multiplier, either in MACs (counted, any machine) or in
milliseconds of latency (measured on one machine, BatchNorm folded, as inference runs): `stem`,
`tail[k]`, `proj[j][k]` (from level j to level k; the start part counts as level 0),
`ops[op][k]` and `cell[k]`, a cell's own node sums and concatenation at level k (what a cell of
`skip_connect` edges costs).

The table is for one space, task shape, width multiplier, input size and (for latency) machine
class; :meth:`CostTable.check` refuses another one in one line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hinas.config import SpaceConfig, TaskConfig
from hinas.errors import HinasError
from hinas.io import atomic_write_text
from hinas.measures.complexity import count_macs, measure_latency
from hinas.models.cost import model_cost
from hinas.models.fold import fold_batchnorm
from hinas.runtime.execution import machine_class
from hinas.space.blocks import FullResolution, Stem, Tail, resample
from hinas.space.cells import cell_edges, derived_cell
from hinas.space.genotype import Genotype
from hinas.space.ops import OPS, usable_columns

COST_KINDS = {"macs": "G MACs", "latency": "ms"}
"""What a table counts, and its unit."""
LEVELS = 3
FREE_OPS = ("none", "skip_connect")
"""Operations that cost nothing: no edge, or the input itself."""


def space_signature(space: SpaceConfig, task: TaskConfig) -> dict[str, Any]:
    """What a table's figures depend on: the space's cell ops and widths, its level mode and
    start-part scale, and the task's channels and scale."""
    return {"ops": list(space.ops), "nodes": space.nodes, "width": space.width,
            "width_factors": list(space.width_factors), "levels": space.levels,
            "start_scale": space.start_scale, "residual": space.residual,
            "channels": task.channels, "input_channels": task.input_channels,
            "out_scale": task.out_scale}


@dataclass
class CostTable:
    """The cost of every part of a derived network (see the module docstring)."""

    kind: str
    signature: dict[str, Any]
    multiplier: float
    size: list[int]
    """(width, height) of the input the figures are for."""
    machine: str
    """The machine class a latency table was measured on (empty for MACs)."""
    stem: float
    tail: list[float]
    proj: list[list[float]]
    ops: dict[str, list[float]]
    cell: list[float] = field(default_factory=lambda: [0.0] * LEVELS)
    """A cell's own work at each level besides its operations: its node sums and the
    concatenation of its nodes (what a cell of `skip_connect` edges costs)."""
    meta: dict[str, Any] = field(default_factory=dict)

    def set(self, entry: str, key: tuple, value: float) -> None:
        """Set the cost of one part: `stem` (key ()), `tail` (level), `proj` (from, to), `cell`
        (level) or `ops` (op, level)."""
        if entry == "stem":
            self.stem = value
        elif entry == "proj":
            self.proj[key[0]][key[1]] = value
        elif entry == "ops":
            self.ops[key[0]][key[1]] = value
        else:
            getattr(self, entry)[key[0]] = value

    @property
    def unit(self) -> str:
        """`G MACs` or `ms`."""
        return COST_KINDS[self.kind]

    def check(self, space: SpaceConfig, task: TaskConfig, multiplier: float,
              machine: str, source: str) -> None:
        """HinasError naming `source` unless this table is for `space`, `task`, `multiplier`
        and (latency) the machine class `machine`."""
        wanted = space_signature(space, task)
        differ = [k for k in wanted if self.signature.get(k) != wanted[k]]
        if differ:
            raise HinasError(f"{source}: a cost table of another space or task ("
                             + ", ".join(f"{k} {self.signature.get(k)!r} here, not "
                                         f"{wanted[k]!r}" for k in differ)
                             + "); measure one with benchmarks/cost_model.py")
        if not math.isclose(self.multiplier, multiplier):
            raise HinasError(f"{source}: a cost table at width multiplier {self.multiplier:g}, "
                             f"not {multiplier:g}; measure one with benchmarks/cost_model.py")
        if self.kind == "latency" and self.machine != machine:
            raise HinasError(f"{source}: a latency table of another machine ({self.machine}, "
                             f"not {machine}); measure one here with benchmarks/cost_model.py")

    # --- a genotype -------------------------------------------------------------------------

    def predict(self, genotype: Genotype) -> float:
        """The cost of the network `genotype` describes (at this table's multiplier)."""
        return self._network(genotype.space, genotype.path, lambda layer, here: sum(
            self.ops[op][here] for node in genotype.cells[layer] for _, op in node))

    def cheapest(self, space: SpaceConfig) -> float:
        """The cost of the cheapest network of `space`: every kept edge the cheapest op that the
        derivation keeps (any but `none`), on the cheapest width path."""
        from hinas.space.supernet import all_paths

        edges = 2 * space.nodes
        return min(self._network(space, path, lambda _, here: edges * min(
            v[here] for op, v in self.ops.items() if op != "none"))
            for path in all_paths(space.layers))

    def _network(self, space: SpaceConfig, path: list[int],
                 ops_cost: Callable[[int, int], float]) -> float:
        """The cost of a network of `space` on width `path` whose layer l at level k spends
        `ops_cost(l, k)` in its operations. The table's parts are for an input padded to the
        space's coarsest grid, a network pads to its own path's: the sum is scaled by the ratio
        of the two padded areas."""
        levels = [0, 0, *path]
        total = self.stem + self.tail[path[-1]] + sum(
            self.proj[levels[layer]][here] + self.proj[levels[layer + 1]][here]
            + self.cell[here] + ops_cost(layer, here) for layer, here in enumerate(path))
        return total * (self._padded_area(space.size_multiple([0, *path]))
                        / self._padded_area(space.size_multiple(range(LEVELS))))

    def scale(self, factor: float) -> None:
        """Multiply every part's cost by `factor`."""
        self.stem *= factor
        for values in (self.tail, self.cell, *self.proj, *self.ops.values()):
            values[:] = [v * factor for v in values]

    def _padded_area(self, multiple: int) -> int:
        w, h = self.size
        return (-(-h // multiple) * multiple) * (-(-w // multiple) * multiple)

    # --- the supernet -----------------------------------------------------------------------

    def expected(self, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """The expected cost of the derived network under softmax(α) `alpha` ([layers or 1,
        edges, ops]) and softmax(β) `beta` ([layers, 3, 3], 0 where a move does not exist),
        differentiable in both: the width path is a Markov chain of β's moves from level 0, an
        edge's op is drawn from its weights without `none` (which the derivation never keeps),
        and node j keeps each of its 2 + j inputs with probability 2 / (2 + j)."""
        ops = self.signature["ops"]
        usable = usable_columns(ops)
        op_cost = torch.tensor([self.ops[ops[c]] for c in usable], dtype=alpha.dtype)
        weights = alpha[..., usable]
        weights = weights / weights.sum(-1, keepdim=True)
        keep = torch.tensor([2.0 / (2 + j) for j, _ in cell_edges(self.signature["nodes"])],
                            dtype=alpha.dtype)
        cells = torch.einsum("e,reo,ok->rk", keep, weights, op_cost)  # [rows, level]
        cells = cells + torch.tensor(self.cell, dtype=alpha.dtype)
        proj = torch.tensor(self.proj, dtype=alpha.dtype)
        previous = torch.zeros(LEVELS, dtype=alpha.dtype)  # P(level j one state back)
        previous[0] = 1.0  # the start part
        pair_before = torch.diag(previous)  # P(level i two states back, level j one state back)
        total = self.stem + torch.zeros((), dtype=alpha.dtype)
        for layer in range(beta.shape[0]):
            moves = torch.zeros(LEVELS, LEVELS, dtype=alpha.dtype)  # P(level k | level j before)
            for j in range(LEVELS):
                for m in range(3):
                    if 0 <= j + m - 1 < LEVELS:
                        moves[j, j + m - 1] = beta[layer, j, m]
            here = previous @ moves
            total = total + here @ cells[layer if cells.shape[0] > 1 else 0]
            total = total + (previous[:, None] * moves * proj).sum()  # from state l-1
            total = total + (pair_before @ moves * proj).sum()  # from state l-2
            pair_before, previous = previous[:, None] * moves, here
        return total + previous @ torch.tensor(self.tail, dtype=alpha.dtype)

    # --- files ------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the table as JSON, atomically."""
        atomic_write_text(path, json.dumps({"format": "hinas-cost-table", **asdict(self)},
                                           indent=1) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> CostTable:
        """A table written by :meth:`save` (HinasError naming the file otherwise)."""
        try:
            data = json.loads(Path(path).read_text())
            if data.pop("format") != "hinas-cost-table" or data["kind"] not in COST_KINDS:
                raise ValueError("not a hinas cost table")
            return cls(**data)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise HinasError(f"{path}: not a readable cost table ({err})") from None


class _WithInput(nn.Module):
    """An end part called on features alone (the network input it adds back held fixed)."""

    def __init__(self, full: nn.Module | None, tail: Tail, x: torch.Tensor, skip: torch.Tensor):
        super().__init__()
        self.full, self.tail = full, tail
        self.register_buffer("x", x)
        self.register_buffer("skip", skip)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.full is not None:
            features = self.full([features], self.skip)
        return self.tail(features, self.x)


class _TwoInputs(nn.Module):
    """A cell called on one tensor holding its two inputs (its first and second half)."""

    def __init__(self, cell: nn.Module):
        super().__init__()
        self.cell = cell

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cell(*x.chunk(2, 1))


def table_parts(space: SpaceConfig, task: TaskConfig, multiplier: float, size: tuple[int, int]
                ) -> list[tuple[str, tuple, nn.Module, torch.Tensor]]:
    """Every part of the table as (entry, key, module, its input): the modules a derived
    network of `space` at `multiplier` is built from, each with an input of its size for a
    `size` = (width, height) image (padded to the space's coarsest grid)."""
    w, h = size
    m = space.size_multiple(range(LEVELS))
    h, w = -(-h // m) * m, -(-w // m) * m
    n = space.nodes
    widths = [space.level_width(k, multiplier) for k in range(LEVELS)]
    stem_width = n * widths[0]

    def grid(level: int) -> tuple[int, int]:
        f = space.start_scale * 2 ** space.resolution(level)
        return h // f, w // f

    def features(channels: int, level: int) -> torch.Tensor:
        return torch.rand(1, channels, *grid(level))

    x = torch.rand(1, task.input_channels, h, w)
    parts: list[tuple[str, tuple, nn.Module, torch.Tensor]] = [
        ("stem", (), Stem(task.input_channels, stem_width, space.start_scale), x)]
    for k in range(LEVELS):
        full = (FullResolution([(n * widths[k], space.resolution(k))], stem_width, True)
                if space.levels == "resolution" else None)
        tail = Tail(stem_width if full is not None else n * widths[k], stem_width, task,
                    space.residual, space.start_scale)
        parts.append(("tail", (k,), _WithInput(full, tail, x, features(stem_width, 0)),
                      features(n * widths[k], k)))
    for j in range(LEVELS):
        for k in range(LEVELS):
            steps = space.resolution(k) - space.resolution(j)
            parts.append(("proj", (j, k), resample(n * widths[j], widths[k], steps, True),
                          features(n * widths[j], j)))
    for k in range(LEVELS):
        skips = [[(0, "skip_connect"), (1, "skip_connect")] for _ in range(n)]
        parts.append(("cell", (k,), _TwoInputs(derived_cell(widths[k], skips)),
                      features(2 * widths[k], k)))
    for op in space.ops:
        if op in FREE_OPS:
            continue
        for k in range(LEVELS):
            parts.append(("ops", (op, k), OPS.get(op).build(widths[k], True),
                          features(widths[k], k)))
    return parts


def measure_table(space: SpaceConfig, task: TaskConfig, multiplier: float,
                  size: tuple[int, int], kind: str, device: str = "cpu", repeats: int = 5,
                  in_place: int = 8) -> CostTable:
    """The cost table of `space` for `task` at width `multiplier` and input `size` (width,
    height): MACs counted (G), or latency measured on `device` with its machine class recorded
    (ms, BatchNorm folded as inference runs: every part timed alone, median of `repeats`, then
    each part that `in_place` random networks hold timed inside them instead,
    :func:`timed_in_place`)."""
    if kind not in COST_KINDS:
        raise HinasError(f"cost kind must be one of {', '.join(COST_KINDS)}, got {kind!r}")
    with one_thread():
        machine = machine_class(device) if kind == "latency" else ""
    table = CostTable(kind, space_signature(space, task), float(multiplier), list(size),
                      machine, 0.0, [0.0] * LEVELS, [[0.0] * LEVELS for _ in range(LEVELS)],
                      {op: [0.0] * LEVELS for op in space.ops})
    for entry, key, module, x in table_parts(space, task, multiplier, size):
        module = module.eval()
        if kind == "macs":
            value = count_macs(module, x.shape[1], x.shape[2], x.shape[3]) / 1e9 \
                if any(True for _ in module.parameters()) else 0.0
        else:
            with one_thread():
                value = measure_latency(fold_batchnorm(module).to(device), x.to(device),
                                        repeats=repeats) * 1e3
        table.set(entry, key, value)
    if kind == "latency":
        for (entry, *key), value in timed_in_place(space, task, multiplier, size, device,
                                                   in_place).items():
            table.set(entry, tuple(key), value)
        calibrate(table, space, task, device, 2 * in_place, repeats)
    return table


def calibrate(table: CostTable, space: SpaceConfig, task: TaskConfig, device: str,
              networks: int, repeats: int, seed: int = 0) -> None:
    """Scale `table` to the whole-network latency of `networks` random derived networks (their
    own draw, not the in-place one): one factor, the ratio of their measured to their predicted
    total, for what timing parts one by one leaves out (hook overhead, the allocator, cache
    effects between parts). Recorded in `table.meta["calibration"]`."""
    import numpy as np

    from hinas.space.supernet import sample_arch

    rng = np.random.default_rng([seed, 29])
    predicted, measured = [], []
    for _ in range(networks):
        genotype = sample_arch(space, task, rng).genotype
        predicted.append(table.predict(genotype))
        measured.append(measure_genotype(genotype, table.multiplier, table.size, "latency",
                                         repeats, device))
    scale = sum(measured) / sum(predicted)
    before = float(np.mean([abs(p / m - 1) for p, m in zip(predicted, measured, strict=True)]))
    table.scale(scale)
    table.meta["calibration"] = {"networks": networks, "scale": round(scale, 4),
                                 "error_before": round(before, 4)}


def timed_in_place(space: SpaceConfig, task: TaskConfig, multiplier: float,
                   size: tuple[int, int], device: str, networks: int, repeats: int = 3,
                   seed: int = 0) -> dict[tuple, float]:
    """Milliseconds of every part as it runs inside `networks` random derived networks of the
    space (folded, one thread, timed by forward hooks; the median over repeats and
    occurrences): what a part costs where its input comes from the part before it. A cell's
    entry is its time less its operations'."""
    import numpy as np

    from hinas.models.architectures import DerivedNet
    from hinas.space.supernet import sample_arch

    w, h = size
    x = torch.rand(1, task.input_channels, h, w, device=device)
    times: dict[tuple, list[float]] = {}
    rng = np.random.default_rng([seed, 17])
    for _ in range(networks):
        genotype = sample_arch(space, task, rng).genotype
        net = fold_batchnorm(DerivedNet(genotype, multiplier, task=task).eval()).to(device)
        levels = [0, 0, *genotype.path]
        parts: dict[nn.Module, tuple] = {net.stem: ("stem",),
                                         net.tail: ("tail", genotype.path[-1])}
        if net.full is not None:  # a resolution network's end part: its return, then the tail
            parts[net.full] = ("return",)
        ops_of: dict[nn.Module, list[nn.Module]] = {}
        for layer, (cell, p0, p1) in enumerate(zip(net.cells, net.proj0, net.proj1,
                                                   strict=True)):
            here = genotype.path[layer]
            parts[p0] = ("proj", levels[layer], here)
            parts[p1] = ("proj", levels[layer + 1], here)
            parts[cell] = ("cell", here)
            ops_of[cell] = []
            for node, modules in zip(cell.terms, cell.ops, strict=True):
                for (_, op), module in zip(node, modules, strict=True):
                    if op not in FREE_OPS:
                        parts[module] = ("ops", op, here)
                        ops_of[cell].append(module)
        observed = _hook_times(net, x, parts, repeats)
        if net.full is not None:
            observed[net.tail] += observed.pop(net.full)
        for module, value in observed.items():
            value -= sum(observed[m] for m in ops_of.get(module, []))
            times.setdefault(parts[module], []).append(value)
    return {key: float(np.median(values)) for key, values in times.items()}


@torch.no_grad()
def _hook_times(net: nn.Module, x: torch.Tensor, parts: dict[nn.Module, tuple], repeats: int
                ) -> dict[nn.Module, float]:
    """Median milliseconds of each module of `parts` in `repeats` forward passes of `net` (one
    untimed pass first), on one thread; a module run twice in a pass counts the sum."""
    import statistics
    import time

    started: dict[int, float] = {}
    spent: dict[nn.Module, float] = {}

    def before(module, _args):
        started[id(module)] = time.perf_counter()

    def after(module, _args, _out):
        spent[module] = spent.get(module, 0.0) + time.perf_counter() - started[id(module)]

    hooks = [h for m in parts for h in (m.register_forward_pre_hook(before),
                                         m.register_forward_hook(after))]
    runs: dict[nn.Module, list[float]] = {}
    try:
        with one_thread():
            for k in range(repeats + 1):
                spent.clear()
                net(x)
                if k:
                    for module, seconds in spent.items():
                        runs.setdefault(module, []).append(seconds * 1e3)
    finally:
        for hook in hooks:
            hook.remove()
    return {module: statistics.median(v) for module, v in runs.items()}


def measure_genotype(genotype: Genotype, multiplier: float, size: tuple[int, int] | list[int],
                     kind: str, repeats: int = 5, device: str = "cpu") -> float:
    """The cost of the network `genotype` describes at width `multiplier` on a `size` (width,
    height) input, measured: MACs counted (G), or the folded network's latency on one thread of
    this machine (ms; :func:`hinas.models.cost.model_cost`)."""
    from hinas.models.architectures import DerivedNet

    net = DerivedNet(genotype, multiplier).eval().to(device)
    with one_thread():
        cost = model_cost(net, genotype.task, tuple(size), repeats if kind == "latency" else 0)
    return cost.macs / 1e9 if kind == "macs" else cost.latency_s * 1e3


@contextmanager
def one_thread():
    """Torch on one thread inside the block: latencies are per thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
