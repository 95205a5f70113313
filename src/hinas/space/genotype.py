"""The discrete architecture found by a search, and its versioned JSON file
(docs/decisions.md §1.4).

A genotype holds everything needed to build, train and export the network: the task (denoise σ or
SR scale, channels), the space (N nodes, L layers, W, width factors, residual learning), the width
level of every layer (`path`), every layer's cell as per-node lists of `[input, op]` (input 0 is
`s0` = c_{k-2}, 1 is `s1` = c_{k-1}, 2 + j is node j), and the α/β values they were derived from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hinas import __version__
from hinas.config import SpaceConfig, TaskConfig, build_dataclass
from hinas.errors import HinasError, warn
from hinas.io import atomic_write_text, read_json
from hinas.space.ops import LEGACY_OPS, OPS

FORMAT_VERSION = 2
"""2: `dil_conv_*` is a full dilated convolution (format 1 meant a separable one)."""
INPUT_NAMES = ("c_{k-2}", "c_{k-1}")


def layer_levels(layer: int) -> tuple[int, ...]:
    """Width levels present at `layer` of the outer space: 0 and 1 at layer 0, 0, 1 and 2 after
    (-1 and -2 are the stem: level 0 only)."""
    if layer < 0:
        return (0,)
    return (0, 1) if layer == 0 else (0, 1, 2)


def input_name(index: int) -> str:
    """Human name of a cell input index: c_{k-2}, c_{k-1}, then node 0, node 1, ..."""
    return INPUT_NAMES[index] if index < 2 else f"node {index - 2}"


@dataclass
class Genotype:
    """A searched architecture: cell per layer + width level per layer (+ provenance)."""

    task: TaskConfig
    space: SpaceConfig
    path: list[int]
    cells: list[list[list[tuple[int, str]]]]
    alpha: list | None = None
    beta: list | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise HinasError when the architecture is not buildable."""
        self.task.validate()
        self.space.validate()
        if not isinstance(self.meta, dict):
            raise HinasError("meta must be a mapping")
        n, layers = self.space.nodes, self.space.layers
        if len(self.path) != layers:
            raise HinasError(f"path has {len(self.path)} levels for {layers} layers")
        previous = 0
        for layer, level in enumerate(self.path):
            if level not in layer_levels(layer) or abs(level - previous) > 1:
                raise HinasError(f"path {self.path}: layer {layer} cannot be at level {level}")
            previous = level
        if len(self.cells) != layers:
            raise HinasError(f"{len(self.cells)} cells for {layers} layers")
        for layer, cell in enumerate(self.cells):
            if len(cell) != n:
                raise HinasError(f"layer {layer}: cell has {len(cell)} nodes, expected {n}")
            for j, node in enumerate(cell):
                for inp, op in node:
                    if not 0 <= inp < j + 2:
                        raise HinasError(f"layer {layer} node {j}: input {inp} out of range")
                    if op not in OPS or OPS.get(op).build is None:
                        raise HinasError(f"layer {layer} node {j}: unusable operation {op!r}")

    def check_space(self, space: SpaceConfig, source: str = "genotype") -> None:
        """Raise HinasError naming `source` unless this genotype's levels and start part are
        those of `space` (a network of one level mode is not an architecture of the other)."""
        mine = (self.space.levels, self.space.start_scale)
        if mine != (space.levels, space.start_scale):
            raise HinasError(f"{source}: genotype of a space with {mine[0]} levels and start "
                             f"scale {mine[1]}, not of this {space.levels}-level space with "
                             f"start scale {space.start_scale}")

    def widths(self, multiplier: float = 1.0) -> list[int]:
        """Node width of each layer's cell."""
        return [self.space.level_width(level, multiplier) for level in self.path]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, with the format version and a legend for the cell inputs."""
        return {
            "format": "hinas-genotype",
            "version": FORMAT_VERSION,
            "hinas_version": __version__,
            "task": asdict(self.task),
            "space": asdict(self.space),
            "path": list(self.path),
            "cells": [[[[inp, op] for inp, op in node] for node in cell] for cell in self.cells],
            "inputs_legend": "input 0 = c_{k-2} (layer l-2), 1 = c_{k-1} (layer l-1), "
                             "2+j = node j",
            "alpha": self.alpha,
            "beta": self.beta,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "genotype") -> Genotype:
        """Parse and validate a genotype dict; errors name `source`."""
        if not isinstance(data, dict) or data.get("format") != "hinas-genotype":
            raise HinasError(f"{source}: not a hinas genotype file")
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise HinasError(f"{source}: genotype has no integer 'version'")
        if version > FORMAT_VERSION:
            raise HinasError(f"{source}: genotype format version {version} is newer than this "
                             f"hinas ({__version__}) reads (≤ {FORMAT_VERSION}); upgrade hinas")
        missing = [k for k in ("task", "space", "path", "cells") if k not in data]
        if missing:
            raise HinasError(f"{source}: genotype lacks {', '.join(missing)}")
        try:
            cells = _cells(data["cells"])
            if version == 1:
                data, cells = _upgrade_v1(data, cells, source)
            return cls(
                task=build_dataclass(TaskConfig, data["task"], "task"),
                space=build_dataclass(SpaceConfig, data["space"], "space"),
                path=[_integer(v, f"path[{i}]") for i, v in enumerate(_list(data["path"],
                                                                             "path"))],
                cells=cells,
                alpha=_numbers(data.get("alpha"), "alpha"),
                beta=_numbers(data.get("beta"), "beta"),
                meta=data.get("meta") or {},
            )
        except HinasError as err:
            raise HinasError(f"{source}: {err}") from None

    def save(self, path: str | Path) -> None:
        """Write the genotype as indented JSON, atomically."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Genotype:
        """Read a genotype JSON file with a one-line error for a missing or malformed file."""
        return cls.from_dict(read_json(path, "genotype"), str(path))


def _shown(value: Any) -> str:
    """`value` as an error message quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _list(value: Any, field: str) -> list:
    """`value` if it is a list; HinasError naming genotype field `field` otherwise."""
    if not isinstance(value, list):
        raise HinasError(f"malformed genotype: {field} must be a list, got {_shown(value)}")
    return value


def _integer(value: Any, field: str) -> int:
    """`value` if it is an integer (not a bool, a float or a string: nothing is coerced);
    HinasError naming genotype field `field` otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise HinasError(f"malformed genotype: {field} must be an integer, got {_shown(value)}")


def _edge(value: Any, field: str) -> tuple[int, str]:
    """An edge `[input, op]` of a cell node as `(input, op)`; HinasError naming `field`."""
    if not isinstance(value, list) or len(value) != 2:
        raise HinasError(f"malformed genotype: {field} must be an [input, operation] pair, got "
                         f"{_shown(value)}")
    inp, op = value
    if not isinstance(op, str):
        raise HinasError(f"malformed genotype: {field} operation must be a name, got "
                         f"{_shown(op)}")
    return _integer(inp, f"{field} input"), op


def _numbers(value: Any, field: str) -> list | None:
    """`value` if it is None or a nested list of numbers (α or β); HinasError naming `field`."""
    def check(item: Any) -> None:
        if isinstance(item, list):
            for x in item:
                check(x)
        elif isinstance(item, bool) or not isinstance(item, (int, float)):
            raise HinasError(f"malformed genotype: {field} must hold numbers only, got "
                             f"{_shown(item)}")

    if value is not None:
        check(_list(value, field))
    return value


def _cells(value: Any) -> list[list[list[tuple[int, str]]]]:
    """The `cells` field: per layer, per node, its `[input, op]` edges as `(input, op)`;
    HinasError naming the first malformed entry."""
    return [[[_edge(edge, f"cells[{layer}][{j}][{k}]")
              for k, edge in enumerate(_list(node, f"cells[{layer}][{j}]"))]
             for j, node in enumerate(_list(cell, f"cells[{layer}]"))]
            for layer, cell in enumerate(_list(value, "cells"))]


def _upgrade_v1(data: dict, cells: list, source: str) -> tuple[dict, list]:
    """A format-1 genotype (and its parsed `cells`) with its separable `dil_conv_*` renamed to
    `dil_sep_conv_*`, so that it builds exactly the network it described; says so once on
    stderr."""
    def rename(op: Any) -> Any:
        return LEGACY_OPS.get(op, op) if isinstance(op, str) else op

    cells = [[[(inp, rename(op)) for inp, op in node] for node in cell] for cell in cells]
    space = dict(data["space"]) if isinstance(data["space"], dict) else data["space"]
    if isinstance(space, dict) and isinstance(space.get("ops"), list):
        space["ops"] = [rename(op) for op in space["ops"]]
    if any(op in LEGACY_OPS.values() for cell in cells for node in cell for _, op in node):
        warn(f"{source}: genotype format 1; its dil_conv ops were separable and are built as "
             "dil_sep_conv (the network it described)")
    meta = dict(data.get("meta") or {})
    meta["upgraded_from_version"] = 1
    return {**data, "space": space, "meta": meta}, cells
