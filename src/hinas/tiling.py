"""Tiled inference (docs/decisions.md §3): a model runs on tile×tile windows that overlap by
`overlap` pixels, and the outputs are blended with a linear ramp across each overlap.

:func:`tiled_bands` yields the blended output one horizontal band at a time: a band is final as
soon as the next row of tiles cannot touch it, so only about one row of tiles (input and output)
is held at once, whatever the size of the image. Reading the input window by window (`read`) lets
a caller keep the whole image in its compact form (e.g. uint8) and convert each window alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from hinas.errors import HinasError


def check_tiling(tile: int, overlap: int) -> None:
    """Raise HinasError unless `tile` ≥ 0 (0: whole image) and 0 ≤ `overlap` < `tile`."""
    if tile < 0:
        raise HinasError(f"the tile size must be ≥ 0 (0: whole image), got {tile}")
    if tile and not 0 <= overlap < tile:
        raise HinasError(f"tile overlap must be in 0..{tile - 1} for {tile}-pixel tiles, "
                         f"got {overlap}")


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """First pixel of every tile along one side of `length` pixels (the last tile ends flush)."""
    if length <= tile:
        return [0]
    stride = max(1, tile - overlap)
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def _ramp(start: int, size: int, overlap: int, total: int) -> torch.Tensor:
    """1-D blending weights of a tile: ramps up over the overlap, except at image borders."""
    w = torch.ones(size)
    ramp = torch.linspace(0, 1, overlap + 2)[1:-1] if overlap > 0 else torch.ones(0)
    n = min(len(ramp), size)
    if start > 0 and n:
        w[:n] = ramp[:n]
    if start + size < total and n:
        w[size - n:] = torch.minimum(w[size - n:], ramp[:n].flip(0))
    return w


@torch.no_grad()
def tiled_bands(model: nn.Module, read: Callable[[int, int, int, int], torch.Tensor],
                height: int, width: int, scale: int, tile: int, overlap: int
                ) -> Iterator[tuple[int, torch.Tensor]]:
    """Run `model` tile by tile over a `height`×`width` input and yield `(first row, band)`: the
    blended output, 1×C×rows×(width·scale), band after band from the top.

    `read(top, left, h, w)` returns the 1×C×h×w input window (on the model's device). With
    `tile` ≥ both sides the whole image is one tile and the output is exactly `model(input)`.
    """
    rows, cols = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    th, tw = min(tile, height), min(tile, width)
    out = weight = None
    first = 0  # output row of out[:, :, 0]
    for k, top in enumerate(rows):
        end = (top + th) * scale
        for left in cols:
            x = read(top, left, th, tw)
            y = model(x)
            if out is None:
                out = y.new_zeros(1, y.shape[1], 0, width * scale)
                weight = y.new_zeros(1, 1, 0, width * scale)
            grow = end - first - out.shape[2]
            if grow > 0:
                out = torch.cat([out, out.new_zeros(1, out.shape[1], grow, out.shape[3])], 2)
                weight = torch.cat([weight, weight.new_zeros(1, 1, grow, weight.shape[3])], 2)
            wy = _ramp(top * scale, th * scale, overlap * scale, height * scale)
            wx = _ramp(left * scale, tw * scale, overlap * scale, width * scale)
            mask = (wy[:, None] * wx[None, :]).to(y.device)
            r = slice(top * scale - first, end - first)
            c = slice(left * scale, (left + tw) * scale)
            out[:, :, r, c] += y * mask
            weight[:, :, r, c] += mask
        done = rows[k + 1] * scale if k + 1 < len(rows) else end
        n = done - first
        yield first, out[:, :, :n] / weight[:, :, :n]
        out, weight, first = out[:, :, n:], weight[:, :, n:], done
