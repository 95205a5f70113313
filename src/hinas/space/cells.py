"""Cells: the supercell searched over (mixed edges, paper Eq. 1–2) and the derived
cell it becomes; `mixed_edge` is Eq. 1.

A cell is a DAG with two inputs, `s0` (feature of two layers back, c_{k-2}) and `s1` (previous
layer, c_{k-1}), and `N` intermediate nodes. Node `j` sums terms from inputs `0 .. j+1`, where
input 0 is `s0`, input 1 is `s1` and input `2 + i` is node `i`. The cell output concatenates
the `N` nodes.

Both kinds are one class: a supercell has every (input, op) term of every edge and weights each by
softmax(α); a derived cell keeps two (input, op) terms per node and sums them unweighted.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from hinas.config import PRIMITIVES
from hinas.errors import HinasError
from hinas.space.ops import OPS, leaky_relu


def cell_edges(nodes: int) -> list[tuple[int, int]]:
    """The (node, input) pairs of a supercell, in the row order of α."""
    return [(j, inp) for j in range(nodes) for inp in range(2 + j)]


def num_edges(nodes: int) -> int:
    """Number of mixed edges in a supercell of `nodes` nodes (14 for 4 nodes)."""
    return len(cell_edges(nodes))


def mixed_edge(read: Callable[[int], torch.Tensor], ops: list[nn.Module],
               weights: list[torch.Tensor] | None, total: torch.Tensor | None = None
               ) -> torch.Tensor | None:
    """The mixed operation of one edge (paper Eq. 1), Σ_o w_o · o(x), added to `total` (the
    node's running sum; None starts it). `read(k)` gives x as operation k reads it (activated or
    not, see `OpSpec.preact`), when operation k runs; with `weights` None the operations are
    summed unweighted (the kept operations of a derived cell)."""
    for k, op in enumerate(ops):
        y = op(read(k))
        if weights is None:
            total = y if total is None else total + y
        else:
            total = weights[k] * y if total is None else torch.addcmul(total, weights[k], y)
    return total


class Cell(nn.Module):
    """A cell of `len(terms)` nodes whose node `j` sums `terms[j]`, a list of (input, op name).

    `weight_index[j][t]` gives, for a supercell, the (edge row, op column) of α that scales term `t`
    of node `j`; it is None for a derived cell.
    """

    def __init__(self, channels: int, terms: list[list[tuple[int, str]]], affine: bool,
                 weight_index: list[list[tuple[int, int]]] | None = None):
        super().__init__()
        self.channels = channels
        self.terms = [list(node) for node in terms]
        self.weight_index = weight_index
        self.checkpoint = False
        self.act = leaky_relu()
        self.preact = [[OPS.get(op).preact for _, op in node] for node in self.terms]
        self.edges = [_edges(node) for node in self.terms]
        self.ops = nn.ModuleList(
            nn.ModuleList(OPS.get(op).build(channels, affine) for _, op in node)
            for node in self.terms
        )

    @property
    def nodes(self) -> int:
        """Number of intermediate nodes."""
        return len(self.terms)

    @property
    def out_channels(self) -> int:
        """Channels of the cell output (nodes × node width)."""
        return self.nodes * self.channels

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor | None = None,
                active: frozenset[tuple[int, int]] | None = None) -> torch.Tensor:
        """Cell output for inputs `s0`, `s1`; `weights` = softmax(α) of shape [edges, ops].

        `active`, when given, lists the (edge, op) entries of `weights` that are non-zero; the
        other terms are skipped (a sampled one-hot architecture costs only its own ops). With
        `self.checkpoint` set (and gradients on), each node is recomputed in the backward pass
        instead of storing its operations' activations: only node outputs are kept.
        """
        states = [s0, s1]
        acts: dict[int, torch.Tensor] = {}
        for j in range(self.nodes):
            if self.checkpoint and torch.is_grad_enabled():
                node = checkpoint(self._node, j, states, weights, active, None,
                                  use_reentrant=False)
            else:
                node = self._node(j, states, weights, active, acts)
            states.append(node)
        return torch.cat(states[2:], dim=1)

    def _node(self, j: int, states: list[torch.Tensor], weights: torch.Tensor | None,
              active: frozenset[tuple[int, int]] | None,
              acts: dict[int, torch.Tensor] | None) -> torch.Tensor:
        """Node `j` from the states before it; `acts` caches LeakyReLU(state) across nodes
        (None: a fresh cache, as a checkpointed node must recompute everything it saved)."""
        acts = {} if acts is None else acts
        total = None
        for inp, terms in self.edges[j]:
            if active is not None:
                terms = [t for t in terms if self.weight_index[j][t] in active]
            if not terms:
                continue

            def read(k: int, inp: int = inp, terms: list[int] = terms) -> torch.Tensor:
                if not self.preact[j][terms[k]]:
                    return states[inp]
                if inp not in acts:  # one activation per state, shared by every op reading it
                    acts[inp] = self.act(states[inp])
                return acts[inp]

            weights_ = (None if self.weight_index is None
                        else [weights[self.weight_index[j][t]] for t in terms])
            total = mixed_edge(read, [self.ops[j][t] for t in terms], weights_, total)
        return total if total is not None else torch.zeros_like(states[1])


def _edges(node: list[tuple[int, str]]) -> list[tuple[int, list[int]]]:
    """A node's terms grouped into edges: (input, indices of its consecutive terms)."""
    edges: list[tuple[int, list[int]]] = []
    for t, (inp, _) in enumerate(node):
        if edges and edges[-1][0] == inp:
            edges[-1][1].append(t)
        else:
            edges.append((inp, [t]))
    return edges


def supercell(nodes: int, channels: int, op_names: tuple[str, ...] = PRIMITIVES) -> Cell:
    """A supercell with every non-`none` op on every edge; BN non-affine (DARTS convention)."""
    terms: list[list[tuple[int, str]]] = [[] for _ in range(nodes)]
    index: list[list[tuple[int, int]]] = [[] for _ in range(nodes)]
    for row, (j, inp) in enumerate(cell_edges(nodes)):
        for col, op in enumerate(op_names):
            if OPS.get(op).build is not None:
                terms[j].append((inp, op))
                index[j].append((row, col))
    return Cell(channels, terms, affine=False, weight_index=index)


def derived_cell(channels: int, node_edges: list[list[tuple[int, str]]]) -> Cell:
    """A discrete cell from a genotype's per-node (input, op) lists; BN affine."""
    for j, node in enumerate(node_edges):
        for inp, op in node:
            if not 0 <= inp < j + 2:
                raise HinasError(f"node {j} cannot take input {inp} (allowed 0..{j + 1})")
            if OPS.get(op).build is None:
                raise HinasError(f"node {j}: operation {op!r} cannot be part of a derived cell")
    return Cell(channels, node_edges, affine=True)
