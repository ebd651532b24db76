"""The network run on one window in tiles, cross-faded back into whole frames.

A window too large for the memory budget runs the network (:meth:`RRTN.restore`) on
overlapping tiles of its frames, masks, flows and spatial features (:mod:`.geometry` plans them),
``at_once`` tiles as one batch; each tile's result is weighted by its cross-fade weights and the
sums normalised. One tile is the whole frame, run as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from rrtn_plugin.engine.geometry import Tile, tile_weights
from rrtn_plugin.model import RRTN


def tile_weight_maps(
    tiles: Sequence[Tile], height: int, width: int, *, overlap: int, device: torch.device
) -> list[torch.Tensor]:
    """Each tile's (h, w) cross-fade weights on ``device``; none for a single tile."""
    if len(tiles) <= 1:
        return []
    return [tile_weights(t, height, width, overlap=overlap).to(device) for t in tiles]


def restore_tiled(
    model: RRTN,
    lq: torch.Tensor,
    mask: torch.Tensor,
    forward: torch.Tensor,
    backward: torch.Tensor,
    spatial: list[torch.Tensor],
    *,
    tiles: Sequence[Tile],
    weights: Sequence[torch.Tensor],
    at_once: int,
    on_step: Callable[[], None],
) -> torch.Tensor:
    """(1, n, 1, Hp, Wp) window → (n, 1, Hp, Wp) restored, ``at_once`` tiles at a time
    (batched along N).

    Args:
        lq, mask: (1, n, C, Hp, Wp) frames and (1, n, 1, Hp, Wp) noise masks.
        forward, backward: (1, n − 1, 2, Hp, Wp) flows (see :meth:`RRTN.restore`).
        spatial: the n (1, F, Hp, Wp) spatial features.
        tiles, weights: the tiles and their cross-fade weights (:func:`tile_weight_maps`).
        on_step: called after every step of the network (cancellation).
    """
    _, n, c, hp, wp = lq.shape
    if len(tiles) == 1:
        return model.restore(
            lq,
            noise_mask=mask,
            flows_forward=forward,
            flows_backward=backward,
            spatial=spatial,
            on_step=on_step,
        )[0].float()
    out = torch.zeros(n, c, hp, wp, device=lq.device)
    weight_sum = torch.zeros(1, 1, hp, wp, device=lq.device)
    for first in range(0, len(tiles), at_once):
        batch = list(tiles[first : first + at_once])
        restored = model.restore(
            crops(lq, batch),
            noise_mask=crops(mask, batch),
            flows_forward=crops(forward, batch),
            flows_backward=crops(backward, batch),
            spatial=[crops(f, batch) for f in spatial],
            on_step=on_step,
        )
        for tile, result, weight in zip(
            batch, restored, weights[first : first + at_once], strict=True
        ):
            region = (..., tile.rows, tile.cols)
            out[region] += result.float() * weight
            weight_sum[region] += weight
    return out / weight_sum


def crops(x: torch.Tensor, tiles: Sequence[Tile]) -> torch.Tensor:
    """(1, …, H, W) → (len(tiles), …, h, w): the tiles of ``x`` as one batch."""
    return torch.cat([x[..., tile.rows, tile.cols] for tile in tiles])
