"""Applying a model to an image, on the 0–255 scale: whole, or tile by tile in bounded memory
(docs/decisions.md §3), with the gray/RGB conversion between an image and a model of other
channels. Used by scoring, restoration and the Python API alike.

Tiles: a model runs on tile×tile windows that overlap by `overlap` pixels, and the outputs are
blended with a linear ramp across each overlap. :func:`tiled_bands` yields the blended output one
horizontal band at a time: a band is final as soon as the next row of tiles cannot touch it, so
only about one row of tiles (input and output) is held at once, whatever the size of the image.
A network that works on a coarser grid (its `size_multiple`: start-part downsampling, resolution
levels) gets tiles, overlaps and tile positions rounded to that multiple, so that every tile sees
the grid the whole image would: away from the tile borders its output is the untiled one.
A noise-map network is told its noise level by :func:`told` before any of this.
Reading the input window by window (`read`) lets a caller keep the whole image in its compact form
(uint8 or uint16) and convert each window alone (:func:`window_reader`, :func:`restore_compact`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from hinas.data.degradations import noise_map
from hinas.data.images import quantise, to_gray, to_rgb
from hinas.errors import HinasError, NonFiniteError
from hinas.tasks import TaskConfig


class NoiseLevelInput(nn.Module):
    """A noise-map network (:class:`hinas.tasks.NoiseTask`) told one noise level, the variance
    `a·x + b`: called on an image alone, it gives the network the image followed by its
    noise-level map (:func:`hinas.data.degradations.noise_map`). The map is computed per pixel
    from the input, so a tile's map is the tile of the image's map and tiling works unchanged.
    `net` may be a module or an ONNX Runtime model."""

    def __init__(self, net, variance: tuple[float, float]):
        super().__init__()
        self.net, self.variance = net, (float(variance[0]), float(variance[1]))
        self.size_multiple = getattr(net, "size_multiple", 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network's output for image `x` (N, C, H, W) in [0, 1]."""
        return self.net(torch.cat([x, noise_map(x, *self.variance)], 1))


def told(model, task: TaskConfig):
    """`model` (built for `task`) ready for images alone: a noise-map network told the noise
    level of `task` at evaluation (:class:`NoiseLevelInput`); any other unchanged."""
    return NoiseLevelInput(model, task.noise_variance()) if task.needs_level else model


def to_tensor(x: np.ndarray, device: str | torch.device) -> torch.Tensor:
    """An HxWxC image on the 0–255 scale as a 1×C×H×W float32 tensor in [0, 1] on `device`."""
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32) / 255.0)
    return t.unsqueeze(0).to(device)


def to_array(y: torch.Tensor) -> np.ndarray:
    """A 1×C×H×W model output as an HxWxC float64 array on the 0–255 scale (not clipped)."""
    return y[0].float().cpu().numpy().transpose(1, 2, 0).astype(np.float64) * 255.0


def check_tiling(tile: int, overlap: int) -> None:
    """Raise HinasError unless `tile` ≥ 0 (0: whole image) and 0 ≤ `overlap` < `tile`."""
    if tile < 0:
        raise HinasError(f"the tile size must be ≥ 0 (0: whole image), got {tile}")
    if tile and not 0 <= overlap < tile:
        raise HinasError(f"tile overlap must be in 0..{tile - 1} for {tile}-pixel tiles, "
                         f"got {overlap}")


def tile_starts(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """First pixel of every tile along one side of `length` pixels, each a multiple of `multiple`
    (`tile` and `overlap` are multiples of it); the last tile ends flush with the side, and is
    up to `multiple` − 1 pixels longer than `tile` when the side is not a multiple."""
    if length <= tile:
        return [0]
    stride = max(multiple, tile - overlap)
    starts = list(range(0, length - tile, stride))
    last = (length - tile) // multiple * multiple
    return [*starts, last] if not starts or last > starts[-1] else starts


def aligned_tiling(tile: int, overlap: int, multiple: int) -> tuple[int, int]:
    """`tile` and `overlap` rounded up to multiples of a network's `multiple` (the overlap
    staying below the tile)."""
    def up(n: int) -> int:
        return -(-n // multiple) * multiple

    tile, overlap = up(tile), up(overlap)
    return (tile if overlap < tile else overlap + multiple), overlap


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
    Tiles follow the model's `size_multiple` (:func:`aligned_tiling`).
    """
    multiple = getattr(model, "size_multiple", 1)
    tile, overlap = aligned_tiling(tile, overlap, multiple)
    rows = tile_starts(height, tile, overlap, multiple)
    cols = tile_starts(width, tile, overlap, multiple)

    def size(starts: list[int], k: int, length: int) -> int:
        return length - starts[k] if k == len(starts) - 1 else tile

    out = weight = None
    first = 0  # output row of out[:, :, 0]
    for k, top in enumerate(rows):
        th = size(rows, k, height)
        end = (top + th) * scale
        for j, left in enumerate(cols):
            tw = size(cols, j, width)
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


@torch.no_grad()
def restore_array(model: nn.Module, lq: np.ndarray, scale: int, device: str | torch.device,
                  tile: int = 0, overlap: int = 32) -> np.ndarray:
    """Run `model` on one HxWxC image on the 0–255 scale; returns the float 0–255 output.

    With `tile` > 0 the input is cut into tile×tile windows overlapping by `overlap` pixels, and
    the outputs are blended with a linear ramp across each overlap (bounded memory).
    """
    check_tiling(tile, overlap)
    x = to_tensor(lq, device)
    if tile <= 0 or (lq.shape[0] <= tile and lq.shape[1] <= tile):
        y = model(x)
    else:
        y = torch.cat([band for _, band in tiled_bands(
            model, lambda top, left, h, w: x[:, :, top:top + h, left:left + w], *lq.shape[:2],
            scale, tile, overlap)], dim=2)
    return to_array(y)


def run_on_channels(restore: Callable[[np.ndarray], np.ndarray], lq: np.ndarray,
                    channels: int) -> np.ndarray:
    """Output of `restore` (a method on `channels`-channel images) for `lq`: a gray image through
    an RGB method goes in as three equal channels and its output comes back as gray (601 luma)."""
    c = lq.shape[2]
    if c == channels:
        return restore(lq)
    if c == 1 and channels == 3:
        return to_gray(restore(to_rgb(lq)))
    raise HinasError(f"a {c}-channel image cannot go through a {channels}-channel method "
                     f"(convert it to gray first)")


def window_reader(image: np.ndarray, depth: int, channels: int, device: str | torch.device):
    """`read(top, left, h, w)` for :func:`tiled_bands`: a window of `image` on the
    0–255 scale (16-bit values divided by 257), an RGB window as its 601 luma for a gray model,
    a gray one as three equal channels for an RGB model, as a 1×C×h×w float32 tensor in [0, 1]."""

    def read(top: int, left: int, h: int, w: int) -> torch.Tensor:
        x = image[top:top + h, left:left + w].astype(np.float64)
        if depth == 16:
            x /= 257.0
        if x.shape[2] == 3 and channels == 1:
            x = to_gray(x)
        elif x.shape[2] == 1 and channels == 3:
            x = to_rgb(x)
        return to_tensor(x, device)

    return read


def restore_compact(model: torch.nn.Module, image: np.ndarray, depth: int, channels: int,
                  scale: int, tile: int, overlap: int, device: str | torch.device
                  ) -> np.ndarray:
    """The restored image at the input's bit depth (uint8 or uint16), gray if `image` is gray,
    built band by band (:func:`tiled_bands`): besides the input and the output,
    memory holds about one row of tiles (`tile` = 0: the whole image as one tile)."""
    h, w, have = image.shape
    gray_out = have == 1 or channels == 1
    out = np.empty((h * scale, w * scale, 1 if gray_out else 3),
                   np.uint8 if depth == 8 else np.uint16)
    read = window_reader(image, depth, channels, device)
    for first, band in tiled_bands(model, read, h, w, scale, tile or max(h, w), overlap):
        y = to_array(band)
        if not np.isfinite(y).all():
            raise NonFiniteError("the restored image holds non-finite values (NaN or inf)")
        if y.shape[2] == 3 and gray_out:
            y = to_gray(y)
        out[first:first + y.shape[0]] = quantise(y / 255.0, depth)
    return out


def check_channels(have: int, channels: int, convert: bool, source: str, option: str) -> None:
    """Raise HinasError naming `source` and the `option` that converts when an image of `have`
    channels goes to a `channels`-channel model without `convert`."""
    if have != channels and not convert:
        kinds = {1: "gray", 3: "RGB"}
        raise HinasError(f"{source}: {kinds[have]} image, but the model restores "
                         f"{kinds[channels]} images; pass {option} to convert it")


def match_channels(arr: np.ndarray, channels: int, convert: bool, source: str,
                   option: str) -> np.ndarray:
    """`arr` (HxWxC) ready for a `channels`-channel model: unchanged when the channels agree;
    with `convert`, an RGB image becomes its 601 luma and a gray one stays gray (the model's
    caller repeats it, see `run_on_channels`); else a HinasError naming `source` and the `option`
    that converts."""
    check_channels(arr.shape[2], channels, convert, source, option)
    return to_gray(arr) if arr.shape[2] == 3 and channels == 1 else arr
