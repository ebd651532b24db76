"""Spatial and temporal geometry: padding to sizes the network takes, and tiles.

Frames are never resampled here. A frame whose sides are not multiples of 16 (or are below 128)
is padded by mirror reflection at the bottom and right, and the result cropped back; a clip of
fewer than 3 frames is extended by temporal reflection. Large frames are cut into overlapping
tiles whose results are cross-faded over the overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def reflect_indices(size: int, length: int) -> torch.Tensor:
    """Indices 0 … ``length``−1 mirrored into [0, ``size``): 0 1 2 … size−1 size−2 … 1 0 1 …

    Works for any ``length``, also beyond twice the size (the reflection repeats).
    """
    if size < 1:
        raise ValueError(f"cannot reflect an axis of size {size}")
    if size == 1:
        return torch.zeros(length, dtype=torch.long)
    period = 2 * (size - 1)
    i = torch.arange(length) % period
    return torch.where(i < size, i, period - i)


def padded_size(size: int, *, multiple: int, minimum: int) -> int:
    """The smallest side ≥ ``size`` and ≥ ``minimum`` that is a multiple of ``multiple``."""
    target = max(size, minimum)
    return -(-target // multiple) * multiple


def pad_reflect(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Mirror-pad the last two axes of ``x`` at the bottom and right to ``height`` × ``width``."""
    h, w = x.shape[-2:]
    if (h, w) == (height, width):
        return x
    rows = reflect_indices(h, height).to(x.device)
    cols = reflect_indices(w, width).to(x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


@dataclass(frozen=True)
class Tile:
    """A rectangle of a frame: rows [top, top + height), columns [left, left + width)."""

    top: int
    left: int
    height: int
    width: int

    @property
    def rows(self) -> slice:
        return slice(self.top, self.top + self.height)

    @property
    def cols(self) -> slice:
        return slice(self.left, self.left + self.width)


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    if tile >= size:
        return [0]
    step = tile - overlap
    starts = list(range(0, size - tile, step))
    return [*starts, size - tile]


def plan_tiles(height: int, width: int, *, tile: int | None, overlap: int) -> list[Tile]:
    """Cover a ``height`` × ``width`` frame with square-ish tiles of side ≤ ``tile``.

    Tiles overlap by at least ``overlap`` pixels; the last tile on each axis is aligned with the
    frame's edge. ``tile=None`` gives one tile, the whole frame.
    """
    if tile is None or (tile >= height and tile >= width):
        return [Tile(0, 0, height, width)]
    if overlap >= tile:
        raise ValueError(f"tile overlap {overlap} must be smaller than the tile {tile}")
    th, tw = min(tile, height), min(tile, width)
    return [
        Tile(top, left, th, tw)
        for top in _starts(height, th, overlap)
        for left in _starts(width, tw, overlap)
    ]


def tile_weights(t: Tile, height: int, width: int, *, overlap: int) -> torch.Tensor:
    """(tile.height, tile.width) blending weights: 1 inside, ramping down across the overlap.

    Edges that lie on the frame's border keep weight 1; inner edges ramp linearly over
    ``overlap`` pixels, so neighbouring tiles cross-fade and no seam is visible.
    """

    def ramp(length: int, start: int, full: int) -> torch.Tensor:
        pos = torch.arange(length, dtype=torch.float32)
        w = torch.ones(length)
        if overlap > 0:
            if start > 0:
                w = torch.minimum(w, (pos + 0.5) / overlap)
            if start + length < full:
                w = torch.minimum(w, (length - pos - 0.5) / overlap)
        return w.clamp(min=1e-3)

    return ramp(t.height, t.top, height)[:, None] * ramp(t.width, t.left, width)[None, :]
